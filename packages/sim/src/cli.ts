#!/usr/bin/env node
/**
 * `pnpm sim -- --seeds N [--steps M] [--seed S] [--nodes K] [--verbose]`
 *
 * Runs seeds S, S+1, ... (default S = 1, N = 100) of real `RaftNode` clusters and ends
 * with the line `sim: N seeds, V violations`; a single seed also prints `digest: <hex>`,
 * a hash of its whole event trace. Exit status 1 when any seed failed.
 */
import { parseArgs } from 'node:util';
import { formatFailure, runSeeds, summarize } from './run.js';

const argv = process.argv.slice(2);
if (argv[0] === '--') argv.shift();
const { values } = parseArgs({
  args: argv,
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    steps: { type: 'string' },
    nodes: { type: 'string' },
    quiet: { type: 'string' },
    groups: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

if (values.help) {
  console.log(`usage: pnpm sim -- [--seeds N] [--seed S] [--steps M] [--nodes K] [--quiet Q] [--verbose]
  --seeds N   how many seeds to run (default 100; 1 when --seed is given alone)
  --seed S    first seed (default 1)
  --steps M   steps of 10 ms virtual time per seed (default 2000)
  --nodes K   cluster size (default: 3, 5 or 7 by seed)
  --quiet Q   final fault-free steps in which liveness is checked (default 500)
  --groups G  multi-group mode: every node a @quorate/multiraft host of G groups (quiescence on)`);
  process.exit(0);
}

const int = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`sim: --${name} must be a non-negative integer (got ${JSON.stringify(v)})`);
    process.exit(2);
  }
  return n;
};

const first = int(values.seed, 'seed') ?? 1;
const count = int(values.seeds, 'seeds') ?? (values.seed !== undefined ? 1 : 100);
const steps = int(values.steps, 'steps');
const nodes = int(values.nodes, 'nodes');
const quietSteps = int(values.quiet, 'quiet');
if (nodes !== undefined && nodes < 1) {
  console.error('sim: --nodes must be at least 1');
  process.exit(2);
}

const groups = int(values.groups, 'groups');
if (groups !== undefined && groups > 0) {
  const { simulateGroups, formatGroupFailure } = await import('./groups.js');
  const t0 = performance.now();
  let violations = 0;
  for (let seed = first; seed < first + count; seed++) {
    const r = await simulateGroups({
      seed,
      groups,
      steps,
      quietSteps,
      ...(nodes !== undefined ? { hosts: nodes } : {}),
    });
    violations += r.violations.length;
    if (r.violations.length > 0) console.log(formatGroupFailure(r));
    else if (values.verbose) console.log(`seed ${seed}: ok (${JSON.stringify(r.stats)}, digest ${r.digest})`);
    if (count === 1) console.log(`digest: ${r.digest}`);
  }
  console.log(`elapsed: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`sim: ${count} seeds x ${groups} groups, ${violations} violations`);
  process.exit(violations > 0 ? 1 : 0);
}

const extra = `${nodes !== undefined ? ` --nodes ${nodes}` : ''}${quietSteps !== undefined ? ` --quiet ${quietSteps}` : ''}`;
let done = 0;
const summary = await runSeeds(first, count, { steps, nodes, quietSteps }, (r) => {
  done++;
  if (r.violations.length > 0) console.log(formatFailure(r, extra));
  else if (values.verbose) {
    console.log(
      `seed ${r.seed}: ok (${r.nodes} nodes, ${r.stats.elections} elections, max term ${r.stats.maxTerm}, ${r.stats.committed} committed, ${r.stats.opsChecked} client operations linearizable, digest ${r.digest})`,
    );
  }
  // One seed: its digest identifies the run (the same seed must print the same digest).
  if (count === 1) console.log(`digest: ${r.digest}`);
  if (!values.verbose && process.stdout.isTTY && done % 50 === 0) process.stderr.write(`\r${done}/${count}`);
});
if (process.stdout.isTTY && !values.verbose) process.stderr.write('\r');
for (const line of summarize(summary.results)) console.log(line);
console.log(`elapsed: ${(summary.elapsedMs / 1000).toFixed(1)} s`);
console.log(`sim: ${summary.seeds} seeds, ${summary.violations} violations`);
process.exit(summary.violations > 0 ? 1 : 0);
