import { describe, it } from 'vitest';
import { MemorySnapshotStore, MemoryStorage } from '../src/index.js';
import { type StorageFactory, storageConformanceCases } from '../src/testing/index.js';

/** The in-memory stores run the same suite as every durable one. */
const memory: StorageFactory = {
  create: () => ({ storage: new MemoryStorage(), snapshots: new MemorySnapshotStore() }),
  reopen: (h) => ({ storage: (h.storage as MemoryStorage).reopen(), snapshots: h.snapshots }),
};

describe('storage conformance: MemoryStorage + MemorySnapshotStore', () => {
  for (const c of storageConformanceCases) it(c.name, () => c.run(memory));
});
