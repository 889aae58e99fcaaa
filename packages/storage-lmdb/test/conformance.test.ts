import { type StorageFactory, type StorageHandle, storageConformanceCases } from '@quorate/raft/testing';
import { describe, it } from 'vitest';
import type { LmdbStorage } from '../src/index.js';
import { openStore, tempDir } from './helpers.js';

/** The same cases the in-memory stores pass (packages/raft/test/storage-conformance.test.ts). */
const dirs = new Map<StorageHandle['storage'], { path: string; remove(): void }>();

const lmdb: StorageFactory = {
  async create() {
    const dir = tempDir();
    const storage = await openStore(dir.path);
    dirs.set(storage, dir);
    return { storage, snapshots: storage.snapshots };
  },
  async reopen(h) {
    const dir = dirs.get(h.storage)!;
    dirs.delete(h.storage);
    const storage = await openStore(dir.path);
    dirs.set(storage, dir);
    return { storage, snapshots: storage.snapshots };
  },
  async dispose(h) {
    await (h.storage as LmdbStorage).close();
    dirs.get(h.storage)?.remove();
    dirs.delete(h.storage);
  },
};

describe('storage conformance: LmdbStorage + LmdbSnapshotStore', () => {
  for (const c of storageConformanceCases) it(c.name, () => c.run(lmdb));
});
