#!/usr/bin/env node
/**
 * `quorate-check history.jsonl [--final final.json] [--json] [--budget N]`
 *
 * Exit status: 0 linearizable (and nothing lost); 1 a violation or a lost write; 2 the
 * answer is unknown (a key ran out of budget), or the input or the usage is wrong.
 */
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { checkHistory } from './check.js';
import { isCheckerError } from './errors.js';
import { parseHistory } from './history.js';
import { type FinalStates, findLostWrites } from './lost.js';

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const program = new Command('quorate-check')
  .description(
    'Check that a key-value history (Jepsen-style JSON Lines) is linearizable, and that no acknowledged write is lost.',
  )
  .argument('<history>', 'the history file: one JSON event per line (invoke, then ok / fail / info)')
  .option(
    '--final <file>',
    'final states read back after the run: {"replica": {"key": "value" | null, ...}, ...}',
  )
  .option('--budget <steps>', 'search steps per key before its answer is unknown', positive)
  .option('--json', 'print the result as JSON')
  .exitOverride();

async function main(): Promise<number> {
  try {
    program.parse(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' ? 0 : 2;
    throw err;
  }
  const [file] = program.args as [string];
  const o = program.opts<{ final?: string; budget?: number; json?: boolean }>();
  let finals: FinalStates | null = null;
  if (o.final) {
    try {
      const doc = JSON.parse(await readFile(o.final, 'utf8')) as Record<
        string,
        Record<string, string | null>
      >;
      finals = new Map(Object.entries(doc).map(([r, kv]) => [r, new Map(Object.entries(kv))]));
    } catch (err) {
      process.stderr.write(
        `quorate-check: ${o.final}: not a final-state document (${(err as Error).message})\n`,
      );
      return 2;
    }
  }
  const parsed = await parseHistory(file);
  const result = await checkHistory(parsed, o.budget ? { budget: o.budget } : {});
  const lost = finals ? findLostWrites(parsed.ops, finals) : [];
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ...result, lostWrites: lost }, null, 2)}\n`);
  } else {
    process.stdout.write(
      `${file}: ${result.ops} operations on ${result.keys} keys${result.groups > 0 ? ` (${result.groups} group(s) tied by transactions)` : ''}, checked in ${result.ms.toFixed(0)} ms: ` +
        `${result.linearizable === true ? 'linearizable' : result.linearizable === false ? 'NOT linearizable' : 'unknown (budget exhausted)'}\n`,
    );
    for (const f of result.failures) {
      process.stdout.write(`  key ${JSON.stringify(f.key)}: ${f.reason}\n`);
      for (const op of f.window) {
        process.stdout.write(
          `    process ${op.process}: ${op.text} [${op.fromMs.toFixed(3)} ms .. ${op.toMs === null ? '?' : op.toMs.toFixed(3)} ms] (line ${op.invokeLine})\n`,
        );
      }
    }
    if (result.unknownKeys.length > 0)
      process.stdout.write(`  out of budget: ${result.unknownKeys.join(', ')}\n`);
    if (finals) process.stdout.write(`  lost writes: ${lost.length}\n`);
    for (const l of lost.slice(0, 20)) {
      process.stdout.write(
        `    key ${JSON.stringify(l.key)} on ${l.replica}: process ${l.process} wrote ${JSON.stringify(l.wrote)}, found ${JSON.stringify(l.found)}\n`,
      );
    }
  }
  if (result.linearizable === false || lost.length > 0) return 1;
  return result.linearizable === true ? 0 : 2;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `quorate-check: ${isCheckerError(err) ? err.message : String((err as Error)?.stack ?? err)}\n`,
    );
    process.exit(2);
  },
);
