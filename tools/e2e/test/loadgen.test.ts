/**
 * `quorate-loadgen` as users run it: a real process that spawns its own cluster of real
 * node processes, injects faults, writes its reports and checks its history.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runNode } from './helpers.js';

const require = createRequire(import.meta.url);
const loadgenBin = join(
  dirname(require.resolve('@quorate/loadgen/package.json')),
  'bin',
  'quorate-loadgen.js',
);
const checkerBin = join(dirname(require.resolve('@quorate/checker/package.json')), 'bin', 'quorate-check.js');
const dir = mkdtempSync(join(tmpdir(), 'quorate-loadgen-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the CLI to completion; it stops the cluster it spawned before it exits. */
const loadgen = (args: string[], timeoutMs = 120_000) =>
  runNode([loadgenBin, '--quiet', ...args], { timeoutMs });

interface JsonReport {
  ops: number;
  errors: number;
  errorRate: number;
  throughput: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  errorsByKind: Record<string, number>;
  faults: { kind: string; at: number; gapMs: number | null }[];
  check?: { linearizable: boolean | null; lostWrites: number };
}

it('the report counts add up to the operations issued, in the table, the JSON and the history', async () => {
  const json = join(dir, 'counts.json');
  const history = join(dir, 'counts.jsonl');
  const r = await loadgen([
    '--spawn',
    '3',
    '--num-clients',
    '4',
    '--reqs-per-client',
    '50',
    '--mode',
    'mixed',
    '--json',
    json,
    '--history',
    history,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(readFileSync(json, 'utf8')) as JsonReport;
  expect(report.ops).toBe(200);
  expect(Object.values(report.errorsByKind).reduce((a, b) => a + b, 0)).toBe(report.errors);
  expect(report.errorRate).toBeCloseTo(report.errors / report.ops);
  expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p99);
  expect(report.latencyMs.p99).toBeLessThanOrEqual(report.latencyMs.max);
  const events = readFileSync(history, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; process: number });
  expect(events.filter((e) => e.type === 'invoke')).toHaveLength(200);
  expect(events.filter((e) => e.type !== 'invoke')).toHaveLength(200);
  expect(new Set(events.map((e) => e.process)).size).toBe(4);
  expect(r.stdout).toMatch(/operations\s+200\b/);
});

it('kill -9 of the leader mid-run: the failover gap is reported and the history checks out', async () => {
  const json = join(dir, 'kill.json');
  const history = join(dir, 'kill.jsonl');
  const r = await loadgen([
    '--spawn',
    '3',
    '--num-clients',
    '8',
    '--duration',
    '9s',
    '--mode',
    'mixed',
    '--keys',
    '100',
    '--kill-leader-every',
    '3s',
    '--restart-after',
    '1s',
    '--check',
    '--history',
    history,
    '--json',
    json,
    '--max-error-rate',
    '0.05',
  ]);
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(readFileSync(json, 'utf8')) as JsonReport;
  const kills = report.faults.filter((f) => f.kind === 'kill-leader');
  expect(kills.length).toBeGreaterThanOrEqual(1);
  for (const k of kills) expect(k.gapMs).not.toBeNull();
  expect(report.check?.linearizable).toBe(true);
  expect(report.check?.lostWrites).toBe(0);
});

for (const [fault, wire] of [
  ['--kill-leader-every', 'binary'],
  ['--pause-leader-every', 'binary'],
  ['--kill-leader-every', 'http'],
] as const) {
  it(`compare-and-set on 3 keys by 16 clients, ${fault} 4s, --wire ${wire}: linearizable, nothing lost, no error surfaced`, async () => {
    // Few keys and many writers make any false definite error visible to the checker:
    // a write reported failed that took effect shows up as a read of an unwritten value.
    const json = join(dir, `cas${fault}${wire}.json`);
    const r = await loadgen([
      '--wire',
      wire,
      '--spawn',
      '3',
      '--num-clients',
      '16',
      // Faults come every 4 s after the previous one was injected, none in the last 2 s:
      // 16 s leaves room for two even when finding the leader is slow on a loaded machine.
      '--duration',
      '16s',
      '--mode',
      'cas',
      '--keys',
      '3',
      fault,
      '4s',
      ...(fault === '--kill-leader-every' ? ['--restart-after', '1s'] : ['--pause-for', '3s']),
      '--check',
      '--history',
      join(dir, `cas${fault}${wire}.jsonl`),
      '--json',
      json,
    ]);
    const report = JSON.parse(readFileSync(json, 'utf8')) as JsonReport;
    expect(report.faults.length, r.stderr).toBeGreaterThanOrEqual(2);
    expect(report.check?.linearizable, r.stderr).toBe(true);
    expect(report.check?.lostWrites).toBe(0);
    // Within its 10 s deadline the client rides through every election.
    expect(report.errorsByKind).toEqual({});
    if (fault === '--pause-leader-every') {
      // Writes went on at the new leader while the old one was still stopped: clients did
      // not wait out their attempt timeout on the silent one.
      for (const f of report.faults) expect(f.gapMs, JSON.stringify(report.faults)).toBeLessThan(3000);
    }
    expect(r.code, r.stderr).toBe(0);
  });
}

it('the checker passes the recorded history of that run, and fails it once one read is corrupted', () => {
  // The history the kill-leader run above recorded, as independent tools would read it.
  const file = join(dir, 'kill.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const check = (path: string) =>
    spawnSync(process.execPath, [checkerBin, path], { encoding: 'utf8', timeout: 60_000 });
  const clean = check(file);
  expect(clean.status, clean.stderr).toBe(0);
  // One acknowledged read now returns a value nobody ever wrote.
  const events = lines.map((l) => JSON.parse(l) as { type: string; f: string; value: unknown });
  const at = events.findIndex((e) => e.type === 'ok' && e.f === 'get' && typeof e.value === 'string');
  expect(at).toBeGreaterThan(-1);
  events[at]!.value = 'a value no client ever wrote';
  const bad = join(dir, 'kill-corrupted.jsonl');
  writeFileSync(bad, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  const r = check(bad);
  expect(r.status).toBe(1);
  expect(r.stdout).toMatch(/NOT linearizable/);
});

it('transactions, puts and gets on 4 keys, --kill-leader-every 4s: linearizable, nothing lost, no error surfaced', async () => {
  // Transfers (if one key still holds what was last seen, write two keys), atomic reads of
  // two keys, plain puts and gets: the checker searches the 4 keys as one group.
  const json = join(dir, 'txn.json');
  const r = await loadgen([
    '--spawn',
    '3',
    '--num-clients',
    '16',
    // As above: room for two kills on a loaded machine.
    '--duration',
    '16s',
    '--mode',
    'txn',
    '--keys',
    '4',
    '--value-size',
    '16',
    '--kill-leader-every',
    '4s',
    '--restart-after',
    '1s',
    '--check',
    '--history',
    join(dir, 'txn.jsonl'),
    '--json',
    json,
  ]);
  const report = JSON.parse(readFileSync(json, 'utf8')) as JsonReport;
  expect(report.faults.length, r.stderr).toBeGreaterThanOrEqual(2);
  expect(report.check?.linearizable, r.stderr).toBe(true);
  expect(report.check?.lostWrites).toBe(0);
  expect(report.errorsByKind).toEqual({});
  expect(r.code, r.stderr).toBe(0);
});

it('a planted non-atomic transaction in that recorded history makes the checker fail', () => {
  type Ev = { process: number; type: string; f: string; key: string; value: unknown; time: number | string };
  const file = join(dir, 'txn.jsonl');
  const events = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Ev);
  const check = (path: string) =>
    spawnSync(process.execPath, [checkerBin, path], { encoding: 'utf8', timeout: 60_000 });
  const clean = check(file);
  expect(clean.status, clean.stdout + clean.stderr).toBe(0);
  // A transfer that wrote keys a and b, and a put of b acknowledged before it began: b's
  // value then is gone once the transfer is done (every value written is unique).
  type Put = { op: string; key: string; value?: string };
  const invokes = new Map<number, Ev>();
  let planted: { a: string; x: string; b: string; old: string; after: bigint } | null = null;
  const putsDone: { key: string; value: string; at: bigint }[] = [];
  for (const e of events) {
    if (e.type === 'invoke') {
      invokes.set(e.process, e);
      continue;
    }
    const inv = invokes.get(e.process)!;
    if (e.type === 'ok' && e.f === 'put')
      putsDone.push({ key: e.key, value: e.value as string, at: BigInt(e.time) });
    if (planted || e.type !== 'ok' || e.f !== 'txn' || !(e.value as { succeeded: boolean }).succeeded)
      continue;
    const steps = (inv.value as { success: Put[] }).success;
    if (steps.length !== 2 || steps.some((s) => s.op !== 'put')) continue;
    const [sa, sb] = steps as [Put, Put];
    const before = putsDone.filter((p) => p.key === sb.key && p.at < BigInt(inv.time)).at(-1);
    if (before) planted = { a: sa.key, x: sa.value!, b: sb.key, old: before.value, after: BigInt(e.time) };
  }
  expect(planted, 'a transfer preceded by a put of its second key').not.toBeNull();
  // A read of both keys right after the transfer completed that sees only half of it.
  const p = planted!;
  // (a loop, not Math.max(...): the history can hold more events than the call stack has room for)
  const proc = events.reduce((m, e) => Math.max(m, e.process), 0) + 1;
  const spec = {
    compare: [],
    success: [
      { op: 'get', key: p.a },
      { op: 'get', key: p.b },
    ],
    failure: [],
  };
  const torn = [
    { process: proc, type: 'invoke', f: 'txn', key: p.a, value: spec, time: String(p.after + 1n) },
    {
      process: proc,
      type: 'ok',
      f: 'txn',
      key: p.a,
      value: { succeeded: true, reads: [p.x, p.old] },
      time: String(p.after + 2n),
    },
  ];
  const bad = join(dir, 'txn-torn.jsonl');
  writeFileSync(bad, [...events, ...torn].map((e) => JSON.stringify(e)).join('\n') + '\n');
  const r = check(bad);
  expect(r.status, r.stdout + r.stderr).toBe(1);
  expect(r.stdout).toMatch(/NOT linearizable/);
  // The report names the planted read as the first operation no order explains.
  expect(r.stdout).toContain(
    `explains process ${proc}'s txn true held: [get ${p.a} -> ${JSON.stringify(p.x)}; get ${p.b} -> ${JSON.stringify(p.old)}]`,
  );
});

it('bad usage exits 2 and says what was wrong', async () => {
  const bad = await loadgen(['--spawn', '3', '--num-clients', '0', '--duration', '1s']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--num-clients.*must be an integer from 1/);
  const noTarget = await loadgen(['--duration', '1s']);
  expect(noTarget.code).toBe(2);
  expect(noTarget.stderr).toMatch(/give --server-list <urls> or --spawn <n>/);
});
