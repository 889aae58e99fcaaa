/**
 * `quorate-nemesis` (`pnpm nemesis -- …`): many checked nemesis runs, each a fresh
 * cluster with a fresh seed, and a summary: runs, faults by kind, operations checked,
 * violations, lost writes, time to one leader after a heal. Exit 1 if any run failed.
 */

import { writeFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { checkRun } from './check.js';
import { cleanUpOnSignals, main } from './main.js';
import { FAMILIES } from './nemesis/nemesis.js';
import { buildProgram, LoadgenUsageError, resolveOptions } from './options.js';

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const program = new Command('quorate-nemesis')
  .description('Repeat checked nemesis runs against fresh local clusters and summarise them.')
  .option('--runs <n>', 'how many runs', positive, 10)
  .option('--duration <d>', 'length of each run', '30s')
  .option('--faults <families>', `fault families, comma-separated, or all (${FAMILIES.join(', ')})`, 'all')
  .option('--history <file>', 'keep each run\'s history as <file> with ".run<k>" before its extension')
  .option('--seed <n>', 'seed of the first run (run k uses seed + k); default: from the clock')
  .option('--spawn <n>', 'members per cluster', positive, 3)
  .option('--mode <mode>', 'workload (see quorate-loadgen --mode)', 'cas')
  .option('--keys <k>', 'distinct keys', positive, 3)
  .option('--num-clients <c>', 'concurrent clients', positive, 8)
  .option('--groups <n>', 'Raft groups each cluster shards its keys over (docs/sharding.md)', positive, 1)
  .option('--json <file>', "write the summary and every run's report as JSON")
  .exitOverride();

let o: Record<string, unknown>;
try {
  const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
  program.parse(argv, { from: 'user' });
  o = program.opts();
} catch (err) {
  if (err instanceof CommanderError && err.code === 'commander.helpDisplayed') process.exit(0);
  process.exit(2);
}

cleanUpOnSignals();
const base = o.seed !== undefined ? Number(o.seed) : Date.now() % 1_000_000;
const runs = o.runs as number;
const historyOf = (k: number) => {
  const h = o.history as string | undefined;
  if (!h) return [];
  const dot = h.lastIndexOf('.');
  return [
    '--history',
    dot > h.lastIndexOf('/') ? `${h.slice(0, dot)}.run${k}${h.slice(dot)}` : `${h}.run${k}`,
  ];
};

type Row = {
  run: number;
  seed: number;
  ok: boolean;
  ops: number;
  linearizable: boolean | 'unknown' | null;
  lostWrites: number;
  faults: { kind: string; leaderAfterHealMs: number | null; proof: string | null }[];
  failures: string[];
  error?: string;
};
const rows: Row[] = [];
const reports: unknown[] = [];
process.stderr.write(
  `quorate-nemesis: ${runs} runs of ${o.duration}, faults ${o.faults}, seeds ${base}..${base + runs - 1}\n`,
);
for (let k = 0; k < runs; k++) {
  const seed = base + k;
  const argv = [
    '--spawn',
    String(o.spawn),
    '--duration',
    String(o.duration),
    '--nemesis',
    String(o.faults),
    '--mode',
    String(o.mode),
    '--keys',
    String(o.keys),
    '--num-clients',
    String(o.numClients),
    ...((o.groups as number) > 1 ? ['--groups', String(o.groups)] : []),
    '--seed',
    String(seed),
    '--check',
    '--quiet',
    ...historyOf(k),
  ];
  const row: Row = {
    run: k,
    seed,
    ok: false,
    ops: 0,
    linearizable: null,
    lostWrites: 0,
    faults: [],
    failures: [],
  };
  try {
    const opts = resolveOptions(buildProgram().exitOverride().parse(argv, { from: 'user' }).opts());
    // The table of each run goes to stdout as usual; keep this tool's own output readable.
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    let result: Awaited<ReturnType<typeof main>>;
    try {
      result = await main(opts, checkRun);
    } finally {
      process.stdout.write = write;
    }
    const r = result.report;
    reports.push(r);
    row.ops = r.check?.checkedOps ?? 0;
    row.linearizable = r.check?.linearizable ?? null;
    row.lostWrites = r.check?.lostWrites ?? 0;
    row.faults = (r.nemesis?.faults ?? []).map((f) => ({
      kind: f.kind,
      leaderAfterHealMs: f.leaderAfterHealMs,
      proof: f.proof,
    }));
    row.failures = [...(r.nemesis?.failures ?? [])];
    if (r.check?.detail && r.check.linearizable !== true) row.failures.push(r.check.detail);
    row.ok = result.exitCode === 0;
  } catch (err) {
    if (err instanceof LoadgenUsageError) {
      process.stderr.write(`quorate-nemesis: ${err.message}\n`);
      process.exit(2);
    }
    row.error = (err as Error).message;
  }
  rows.push(row);
  process.stdout.write(
    `run ${String(k + 1).padStart(3)}/${runs}  seed ${seed}  ${row.ok ? 'ok  ' : 'FAIL'}  ops ${String(row.ops).padStart(7)}  linearizable ${row.linearizable}  lost ${row.lostWrites}  faults ${row.faults.map((f) => f.kind).join(',') || 'none'}\n`,
  );
  for (const f of row.failures) process.stdout.write(`    ${f}\n`);
  if (row.error) process.stdout.write(`    run failed: ${row.error}\n`);
}

const faults = rows.flatMap((r) => r.faults);
const byKind = new Map<string, number>();
for (const f of faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
const heal = faults
  .map((f) => f.leaderAfterHealMs)
  .filter((x): x is number => x !== null)
  .sort((a, b) => a - b);
const q = (p: number) => (heal.length ? heal[Math.min(heal.length - 1, Math.floor(p * heal.length))]! : null);
const summary = {
  runs: rows.length,
  failedRuns: rows.filter((r) => !r.ok).length,
  seeds: [base, base + runs - 1],
  faults: faults.length,
  faultsByKind: Object.fromEntries([...byKind].sort()),
  faultsWithoutProof: faults.filter((f) => !f.proof).length,
  operationsChecked: rows.reduce((a, r) => a + r.ops, 0),
  violations: rows.filter((r) => r.linearizable === false).length,
  unknown: rows.filter((r) => r.linearizable === 'unknown').length,
  lostWrites: rows.reduce((a, r) => a + r.lostWrites, 0),
  leaderAfterHealMs: { n: heal.length, p50: q(0.5), p99: q(0.99), max: heal.at(-1) ?? null },
  noLeaderAfterHeal: faults.filter((f) => f.leaderAfterHealMs === null).length,
};
process.stdout.write(`\nsummary\n${JSON.stringify(summary, null, 2)}\n`);
if (o.json) await writeFile(String(o.json), `${JSON.stringify({ summary, rows, reports }, null, 2)}\n`);
process.exit(summary.failedRuns > 0 ? 1 : 0);
