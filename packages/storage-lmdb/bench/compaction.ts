/**
 * `pnpm --filter @quorate/storage-lmdb bench:compaction [-- --store PATH]`: how long a
 * compaction holds the event loop, per log layout and number of entries compacted. A
 * node's heartbeats go out on the same loop: a leader that holds it past its followers'
 * election timeout (150-300 ms by default) is replaced.
 *
 * For each layout and size: a store is filled with that many entries of 300 B (batches
 * of 1,000), then compacted to all but the last 10; the longest gap between the turns of
 * a 2 ms interval timer is taken from the compaction call until 2 s after it resolved
 * (what the store deletes afterwards included). Median and max of REPS runs.
 *
 * `--store PATH` loads the store from another build (its `dist/index.js`), to compare.
 * A build that knows no `log` option makes the LMDB layout whatever is asked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EntryType } from '@quorate/raft';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: { store: { type: 'string' }, reps: { type: 'string', default: '3' } },
});
const REPS = Number(args.reps);
const SIZES = [10_000, 100_000];
const LAYOUTS = ['wal', 'lmdb'] as const;

interface Store {
  persist(b: unknown): Promise<void>;
  compact(index: number, meta: unknown): Promise<void>;
  close(): Promise<void>;
}
const mod = (await import(args.store ? resolve(args.store) : '../src/index.js')) as {
  LmdbStorage: { open(o: Record<string, unknown>): Promise<Store> };
};

const conf = { voters: ['n1'], learners: [], votersOutgoing: [] };
const data = new Uint8Array(300).fill(7);

async function once(layout: (typeof LAYOUTS)[number], n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-compaction-'));
  try {
    const s = await mod.LmdbStorage.open({ dir, clusterId: 'c1', nodeId: 'n1', log: layout });
    for (let first = 1; first <= n; first += 1000) {
      await s.persist({
        snapshot: null,
        entries: Array.from({ length: 1000 }, (_, i) => ({
          index: first + i,
          term: 1,
          type: EntryType.Normal,
          data,
        })),
        hardState: first === 1 ? { term: 1, vote: 'n1', commit: 0 } : null,
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 2);
    last = performance.now();
    await s.compact(n - 10, { index: n - 10, term: 1, conf });
    await new Promise((r) => setTimeout(r, 2000));
    clearInterval(timer);
    await s.close();
    return longest;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`store: ${args.store ?? 'this build'}; ${REPS} runs each`);
console.log('| log layout | entries compacted | longest event-loop stall, ms: median (max) |');
console.log('|---|---|---|');
for (const layout of LAYOUTS) {
  for (const n of SIZES) {
    const runs: number[] = [];
    for (let r = 0; r < REPS; r++) runs.push(await once(layout, n));
    runs.sort((a, b) => a - b);
    const median = runs[Math.floor(runs.length / 2)]!;
    console.log(
      `| ${layout} | ${n.toLocaleString('en')} | ${median.toFixed(0)} (${runs.at(-1)!.toFixed(0)}) |`,
    );
  }
}
