/**
 * `storageStats()` (read by `@quorate/metrics` as a `StorageStatsSource`): `writes` counts
 * persisted batches, `syncs` the durable writes that carried them (fsynced LMDB commits, or
 * `O_DSYNC` writes of the write-ahead log). Batches queued together share one, so `syncs`
 * is not `writes`.
 */
import { EntryType } from '@quorate/raft';
import { afterEach, describe, expect, it } from 'vitest';
import type { LmdbStorage } from '../src/index.js';
import { openStore, tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function store(extra = {}): Promise<LmdbStorage> {
  const d = tempDir();
  cleanups.push(d.remove);
  const s = await openStore(d.path, extra);
  cleanups.push(() => s.close());
  return s;
}

const data = new Uint8Array(100);
const batch = (index: number, commit = index) => ({
  snapshot: null,
  entries: [{ index, term: 1, type: EntryType.Normal, data }],
  hardState: { term: 1, vote: 'n1', commit },
});
/**
 * Stored bytes of one entry of `data`: in LMDB, the 14-byte header and the payload; in
 * the write-ahead log, the 8-byte record header, the 18-byte entry header and the payload.
 */
const storedIn = (s: LmdbStorage) => (s.logLayout === 'wal' ? 26 : 14) + data.byteLength;

describe.each(['wal', 'lmdb'] as const)('storageStats, log in %s', (log) => {
  it('counts one sync per fsynced commit: batches LMDB groups into one commit count once', async () => {
    const s = await store({ log });
    const stored = storedIn(s);
    expect(s.storageStats()).toEqual({ writes: 0, syncs: 0, bytesWritten: 0 });
    // One at a time: each batch is its own commit.
    for (let i = 1; i <= 3; i++) await s.persist(batch(i));
    expect(s.storageStats()).toEqual({ writes: 3, syncs: 3, bytesWritten: 3 * stored });
    // 20 queued together: fewer commits than batches, at least one.
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.persist(batch(4 + i))));
    const { writes, syncs, bytesWritten } = s.storageStats();
    expect(writes).toBe(23);
    expect(bytesWritten).toBe(23 * stored);
    expect(syncs).toBeGreaterThan(3);
    expect(syncs).toBeLessThan(23);
    expect(s.lastIndex()).toBe(23);
  });

  it('a deferred commit-only batch and compaction are not writes; unsafeNoSync never syncs', async () => {
    const s = await store({ log });
    const stored = storedIn(s);
    await s.persist(batch(1, 0));
    await s.persist({
      snapshot: null,
      entries: [],
      hardState: { term: 1, vote: 'n1', commit: 1 },
      mustSync: false,
    });
    await s.compact(1, { index: 1, term: 1, conf: { voters: ['n1'], learners: [], votersOutgoing: [] } });
    expect(s.storageStats()).toEqual({ writes: 1, syncs: 1, bytesWritten: stored });

    const fast = await store({ log, unsafeNoSync: true });
    await fast.persist(batch(1));
    await Promise.all([fast.persist(batch(2)), fast.persist(batch(3))]);
    expect(fast.storageStats()).toEqual({ writes: 3, syncs: 0, bytesWritten: 3 * stored });
  });
});
