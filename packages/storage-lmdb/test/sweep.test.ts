/**
 * Compacted entries of the LMDB log layout (`log: 'lmdb'`, and every group of an
 * `LmdbGroupStore`) are deleted after the compaction, a bounded number per write
 * transaction so that the event loop turns between them: deleting a whole interval's
 * entries in one transaction held the loop of a node for 90-390 ms (a leader that long
 * silent loses its followers). What is checked here is the outcome — every compacted
 * entry goes, in several transactions, whatever compactions and snapshots come meanwhile —
 * read from the store's own LMDB files.
 */
import type { Entry } from '@quorate/raft';
import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { LmdbGroupStore } from '../src/index.js';
import { openStore, tempDir } from './helpers.js';

const conf = { voters: ['n1'], learners: [], votersOutgoing: [] };
const data = new Uint8Array(32).fill(7);
const entries = (from: number, n: number): Entry[] =>
  Array.from({ length: n }, (_, i) => ({ index: from + i, term: 1, type: 0, data }));

/** Wait (deadline 20 s) until `count()` is `want`. */
async function until(count: () => number, want: number, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (count() !== want) {
    if (Date.now() > deadline) throw new Error(`${what}: ${count()} entries stored, expected ${want}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the LMDB log's sweep of compacted entries", () => {
  it('deletes them all, in more than one write transaction, and keeps the rest readable', async () => {
    using dir = tempDir();
    const s = await openStore(dir.path, { log: 'lmdb' });
    await s.persist({
      snapshot: null,
      entries: entries(1, 20_000),
      hardState: { term: 1, vote: 'n1', commit: 0 },
    });
    const env = open({ path: dir.path, maxDbs: 8, readOnly: true });
    try {
      const log = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
      expect(log.getKeysCount()).toBe(20_000);
      const txn0 = env.getStats() as { lastTxnId: number };
      await s.compact(19_000, { index: 19_000, term: 1, conf });
      await until(() => log.getKeysCount(), 1_000, 'after compacting to 19,000');
      // 19,000 deletions at most 2,048 per transaction: at least 10 transactions.
      expect((env.getStats() as { lastTxnId: number }).lastTxnId - txn0.lastTxnId).toBeGreaterThanOrEqual(10);
      expect(s.firstIndex()).toBe(19_001);
      expect(s.entries(19_001, 20_001).map((e) => e.index)).toEqual(
        entries(19_001, 1_000).map((e) => e.index),
      );

      // Compactions while a sweep runs are swept by it; a snapshot's base too.
      await s.persist({ snapshot: null, entries: entries(20_001, 20_000), hardState: null });
      await Promise.all([
        s.compact(25_000, { index: 25_000, term: 1, conf }),
        s.compact(39_000, { index: 39_000, term: 1, conf }),
      ]);
      await until(() => log.getKeysCount(), 1_000, 'after compacting to 39,000');
      await s.persist({
        snapshot: { index: 45_000, term: 2, conf },
        entries: [{ index: 45_001, term: 2, type: 0, data }],
        hardState: { term: 2, vote: 'n1', commit: 45_000 },
      });
      await until(() => log.getKeysCount(), 1, 'after a snapshot at 45,000');
      expect(s.firstIndex()).toBe(45_001);
      expect(s.lastIndex()).toBe(45_001);
    } finally {
      await env.close();
      await s.close();
    }
  });

  it('leaves what a close cut short to the next open, which finds the log as compacted', async () => {
    using dir = tempDir();
    let s = await openStore(dir.path, { log: 'lmdb' });
    await s.persist({
      snapshot: null,
      entries: entries(1, 30_000),
      hardState: { term: 1, vote: 'n1', commit: 0 },
    });
    await s.compact(29_990, { index: 29_990, term: 1, conf });
    await s.close(); // the sweep has at most begun
    s = await openStore(dir.path);
    expect(s.firstIndex()).toBe(29_991);
    expect(s.entries(29_991, 30_001)).toHaveLength(10);
    await s.close();
    const env = open({ path: dir.path, maxDbs: 8, readOnly: true });
    expect(env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' }).getKeysCount()).toBe(10);
    await env.close();
  });

  it('does the same for one group of an LmdbGroupStore, leaving the other groups alone', async () => {
    using dir = tempDir();
    const store = await LmdbGroupStore.open({ dir: dir.path, clusterId: 'c1', nodeId: 'n1' });
    const env = open({ path: dir.path, maxDbs: 8, readOnly: true });
    try {
      const glog = env.openDB<Buffer, [number, number]>({ name: 'glog', encoding: 'binary' });
      const count = (g: number) => glog.getKeysCount({ start: [g, 0], end: [g + 1, 0] });
      const [a, b] = [store.group(3), store.group(4)];
      for (const g of [a, b]) {
        await g.persist({
          snapshot: null,
          entries: entries(1, 15_000),
          hardState: { term: 1, vote: 'n1', commit: 0 },
        });
      }
      const txn0 = env.getStats() as { lastTxnId: number };
      await a.compact(14_000, { index: 14_000, term: 1, conf });
      await until(() => count(3), 1_000, 'group 3 after compacting to 14,000');
      expect((env.getStats() as { lastTxnId: number }).lastTxnId - txn0.lastTxnId).toBeGreaterThanOrEqual(7);
      expect(count(4)).toBe(15_000);
      await b.persist({
        snapshot: { index: 20_000, term: 2, conf },
        entries: [],
        hardState: { term: 2, vote: 'n1', commit: 20_000 },
      });
      await until(() => count(4), 0, 'group 4 after a snapshot at 20,000');
      expect(b.firstIndex()).toBe(20_001);
      expect(a.entries(14_001, 15_001)).toHaveLength(1_000);
    } finally {
      await env.close();
      await store.close();
    }
  });
});
