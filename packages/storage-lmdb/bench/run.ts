/**
 * `pnpm --filter @quorate/storage-lmdb bench`: durable appends through LmdbStorage beside
 * raw `lmdb` puts doing the same work (the same entries and a hard-state record in one
 * transaction per batch, one batch in flight, the same sync setting) in the same run.
 *
 * For each entry size x batch size x durability, ours and raw alternate for ROUNDS rounds
 * of about ROUND_MS each (or ROUND_BYTES, whichever comes first); the medians are shown.
 * With fsync on, commits/s is the fsync rate: the physical limit is that rate times the
 * batch size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Entry, EntryType } from '@quorate/raft';
import { open } from 'lmdb';
import { LmdbStorage } from '../src/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUND_BYTES = 48 << 20;
const ENTRY_SIZES = [256, 16 * 1024];
const BATCHES = [1, 16, 100, 256];

interface Rate {
  entries: number;
  commits: number;
  seconds: number;
  bytes: number;
}

function makeBatch(first: number, n: number, size: number, payload: Uint8Array): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    index: first + i,
    term: 1,
    type: EntryType.Normal,
    data: payload.subarray(0, size),
  }));
}

async function runOurs(size: number, batch: number, sync: boolean, payload: Uint8Array): Promise<Rate> {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-bench-'));
  const s = await LmdbStorage.open({ dir, clusterId: 'bench', nodeId: 'n1', unsafeNoSync: !sync });
  try {
    let next = 1;
    let commits = 0;
    const t0 = performance.now();
    const deadline = t0 + ROUND_MS;
    while (performance.now() < deadline && (next - 1) * size < ROUND_BYTES) {
      const entries = makeBatch(next, batch, size, payload);
      next += batch;
      commits++;
      await s.persist({ snapshot: null, entries, hardState: { term: 1, vote: 'n1', commit: next - 1 } });
    }
    const seconds = (performance.now() - t0) / 1000;
    return { entries: next - 1, commits, seconds, bytes: (next - 1) * size };
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runRaw(size: number, batch: number, sync: boolean, payload: Uint8Array): Promise<Rate> {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-bench-raw-'));
  const env = open({ path: dir, noSubdir: false, maxDbs: 4, overlappingSync: false, noSync: !sync });
  const log = env.openDB<Uint8Array, number>({ name: 'log', encoding: 'binary' });
  const kv = env.openDB<unknown, string>({ name: 'state', encoding: 'msgpack' });
  try {
    let next = 1;
    let commits = 0;
    const t0 = performance.now();
    const deadline = t0 + ROUND_MS;
    while (performance.now() < deadline && (next - 1) * size < ROUND_BYTES) {
      const entries = makeBatch(next, batch, size, payload);
      next += batch;
      commits++;
      const commit = next - 1;
      await env.transaction(() => {
        for (const e of entries) log.put(e.index, e.data);
        kv.put('hard', { term: 1, vote: 'n1', commit });
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    return { entries: next - 1, commits, seconds, bytes: (next - 1) * size };
  } finally {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number): string =>
  x >= 100_000 ? `${(x / 1000).toFixed(0)}k` : x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0);

const payload = new Uint8Array(16 * 1024).map((_, i) => (i * 131) & 0xff);
const rows: string[][] = [
  [
    'entry',
    'batch',
    'sync',
    'ours ent/s',
    'raw ent/s',
    'ours commits/s',
    'raw commits/s',
    'ours MB/s',
    'raw MB/s',
    'ours/raw',
  ],
];
console.log(
  `LmdbStorage vs raw lmdb; median of ${ROUNDS} rounds of ~${ROUND_MS} ms each (node ${process.version})\n`,
);
for (const sync of [true, false]) {
  for (const size of ENTRY_SIZES) {
    for (const batch of BATCHES) {
      const ours: Rate[] = [];
      const raw: Rate[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        ours.push(await runOurs(size, batch, sync, payload));
        raw.push(await runRaw(size, batch, sync, payload));
      }
      const rate = (xs: Rate[], f: (x: Rate) => number) => median(xs.map((x) => f(x) / x.seconds));
      const oe = rate(ours, (x) => x.entries);
      const re = rate(raw, (x) => x.entries);
      rows.push([
        size >= 1024 ? `${size / 1024} KiB` : `${size} B`,
        String(batch),
        sync ? 'fsync' : 'unsafeNoSync',
        fmt(oe),
        fmt(re),
        fmt(rate(ours, (x) => x.commits)),
        fmt(rate(raw, (x) => x.commits)),
        (rate(ours, (x) => x.bytes) / 1e6).toFixed(1),
        (rate(raw, (x) => x.bytes) / 1e6).toFixed(1),
        (oe / re).toFixed(2),
      ]);
      console.log(rows.at(-1)!.join('  '));
    }
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`\n${rows.map((r) => r.map((x, c) => x.padStart(widths[c]!)).join('  ')).join('\n')}`);
