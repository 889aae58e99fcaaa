import { type StorageFactory, type StorageHandle, storageConformanceCases } from '@quorate/raft/testing';
import { describe, expect, it } from 'vitest';
import { LmdbGroupStore, LmdbStorage } from '../src/index.js';
import { tempDir } from './helpers.js';

/** Every case the single-group stores pass, on one group's view of a shared store. */
const stores = new Map<
  StorageHandle['storage'],
  { store: LmdbGroupStore; dir: { path: string; remove(): void } }
>();
let nextGroup = 0;

const grouped: StorageFactory = {
  async create() {
    const dir = tempDir();
    const store = await LmdbGroupStore.open({ dir: dir.path, clusterId: 'c1', nodeId: 'n1' });
    // Another group writes beside the one under test: their keys must never mix.
    const other = store.group(7);
    await other.persist({
      snapshot: null,
      entries: [{ index: 1, term: 1, type: 0, data: new Uint8Array([9]) }],
      hardState: { term: 1, vote: null, commit: 0 },
    });
    const storage = store.group(nextGroup++ % 5);
    stores.set(storage, { store, dir });
    return { storage, snapshots: storage.snapshots };
  },
  async reopen(h) {
    const { store, dir } = stores.get(h.storage)!;
    stores.delete(h.storage);
    const group = (h.storage as ReturnType<LmdbGroupStore['group']>).group;
    await store.close();
    const again = await LmdbGroupStore.open({ dir: dir.path, clusterId: 'c1', nodeId: 'n1' });
    const storage = again.group(group);
    stores.set(storage, { store: again, dir });
    return { storage, snapshots: storage.snapshots };
  },
  async dispose(h) {
    const s = stores.get(h.storage);
    stores.delete(h.storage);
    await s?.store.close();
    s?.dir.remove();
  },
};

describe('storage conformance: one group of an LmdbGroupStore', () => {
  for (const c of storageConformanceCases) it(c.name, () => c.run(grouped));
});

describe('LmdbGroupStore', () => {
  it('makes the batches of many groups persisted in one turn one durable commit', async () => {
    using dir = tempDir();
    const store = await LmdbGroupStore.open({ dir: dir.path, clusterId: 'c1', nodeId: 'n1' });
    const groups = Array.from({ length: 200 }, (_, g) => store.group(g));
    for (let round = 1; round <= 5; round++) {
      // One turn: every group persists a batch, as their ready loops do after one tick.
      await Promise.all(
        groups.map((log) =>
          log.persist({
            snapshot: null,
            entries: [{ index: round, term: 1, type: 0, data: new Uint8Array(64) }],
            hardState: { term: 1, vote: 'n1', commit: round - 1 },
          }),
        ),
      );
    }
    const s = store.storageStats();
    console.log(`200 groups x 5 turns: ${s.batches} batches in ${s.commits} LMDB commits`);
    expect(s.batches).toBe(1000);
    expect(s.commits).toBeLessThanOrEqual(10);
    expect(store.groups()).toHaveLength(200);
    await store.close();
    const again = await LmdbGroupStore.open({ dir: dir.path, clusterId: 'c1', nodeId: 'n1' });
    expect(again.group(123).lastIndex()).toBe(5);
    expect(again.group(123).entries(1, 6)).toHaveLength(5);
    await again.close();
  });

  it('refuses a single-group directory, and LmdbStorage refuses a multi-group one', async () => {
    using a = tempDir();
    const single = await LmdbStorage.open({ dir: a.path, clusterId: 'c1', nodeId: 'n1' });
    await single.close();
    await expect(LmdbGroupStore.open({ dir: a.path, clusterId: 'c1', nodeId: 'n1' })).rejects.toThrow(
      /not a multi-group store/,
    );
    using b = tempDir();
    const multi = await LmdbGroupStore.open({ dir: b.path, clusterId: 'c1', nodeId: 'n1' });
    await multi.close();
    await expect(LmdbStorage.open({ dir: b.path, clusterId: 'c1', nodeId: 'n1' })).rejects.toThrow(
      /not a quorate store/,
    );
  });
});
