/**
 * `quorate-loadgen`: load, faults and a linearizability check against a quorate cluster.
 * Exit status: 0 ok; 1 a check or --max-error-rate failed, or the run failed; 2 bad usage.
 */
import { CommanderError } from 'commander';
import { checkRun } from './check.js';
import { cleanUpOnSignals, main } from './main.js';
import { buildProgram, type LoadgenOptions, LoadgenUsageError, resolveOptions } from './options.js';

const program = buildProgram().exitOverride();
let opts: LoadgenOptions;
try {
  // `pnpm loadgen -- --flags` passes a literal `--` first.
  const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
  program.parse(argv, { from: 'user' });
  opts = resolveOptions(program.opts());
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
  } else if (err instanceof LoadgenUsageError) {
    process.stderr.write(`quorate-loadgen: ${err.message}\n`);
  } else {
    throw err;
  }
  process.stderr.write('run quorate-loadgen --help for the options\n');
  process.exit(2);
}
cleanUpOnSignals();
try {
  const { exitCode } = await main(opts, checkRun);
  process.exit(exitCode);
} catch (err) {
  process.stderr.write(`quorate-loadgen: ${(err as Error).message}\n`);
  process.exit(1);
}
