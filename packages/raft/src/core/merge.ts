/**
 * Group commit: several ready batches taken while the disk was busy become one write.
 * The result is what persisting them one after another would leave on disk.
 */
import type { PersistBatch } from '../contracts/storage.js';
import type { Entry, HardState, SnapshotMeta } from '../types.js';
import type { Ready } from './ready.js';

export interface MergedBatch extends PersistBatch {
  /** Whether any of the merged batches needed an fsync. */
  readonly mustSync: boolean;
}

export function mergeReadies(readies: readonly Ready[]): MergedBatch {
  let snapshot: SnapshotMeta | null = null;
  let entries: Entry[] = [];
  let hardState: HardState | null = null;
  let mustSync = false;
  for (const rd of readies) {
    if (!rd.mustPersist) continue;
    if (rd.mustSync) mustSync = true;
    if (rd.snapshot) {
      snapshot = rd.snapshot;
      entries = [];
    }
    const es = rd.entries;
    if (es.length > 0) {
      const from = es[0]!.index;
      if (entries.length === 0 || from <= entries[0]!.index) {
        entries = es.slice();
      } else {
        // Later entries replace everything from their first index on.
        entries.length = Math.min(entries.length, from - entries[0]!.index);
        for (const e of es) entries.push(e);
      }
    }
    if (rd.hardState) hardState = rd.hardState;
  }
  return { snapshot, entries, hardState, mustSync };
}
