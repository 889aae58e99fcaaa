/**
 * Changes of the replicated state, for watchers: every put and delete of a key, and every
 * change of a lease's holder, grouped by the log index of the entry that made them (one
 * entry, one batch), in apply order. Recent batches are kept in memory, bounded by count
 * and bytes, so a watcher can resume from an index; what fell out of that window (or lies
 * before the snapshot this node started from) is "compacted": resuming there is refused
 * with the oldest index still available.
 */

import type { PartitionChange } from './partitions.js';

export type Change =
  | PartitionChange
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array; readonly version: number }
  | { readonly type: 'delete'; readonly key: string }
  | {
      readonly type: 'lease';
      readonly name: string;
      /** The new holder, or null when the lease was released or expired. */
      readonly holder: string | null;
      readonly token: number | null;
    };

export interface ChangeBatch {
  readonly index: number;
  readonly changes: readonly Change[];
}

/** How much history a hub keeps unless told otherwise. */
export const WATCH_HISTORY_DEFAULTS = Object.freeze({ maxEvents: 100_000, maxBytes: 64 << 20 });

export interface WatchHubOptions {
  /** Changes kept for resuming watchers. Default 100,000. */
  maxEvents?: number;
  /** Bytes of keys and values kept, at most. Default 64 MiB. */
  maxBytes?: number;
}

const sizeOf = (c: Change): number =>
  64 +
  (c.type === 'lease'
    ? c.name.length + (c.holder?.length ?? 0)
    : c.type === 'partition'
      ? c.set.length + 16 * c.eligible.length
      : c.key.length + (c.type === 'put' ? c.value.byteLength : 0));

export class WatchHub {
  private readonly kept: { batch: ChangeBatch; bytes: number }[] = [];
  private head = 0;
  private events = 0;
  private bytes = 0;
  /** Every change at an index at or above this one is kept (or there was none). */
  private firstAvailable = 1;
  private pending: Change[] = [];
  private readonly listeners = new Set<(b: ChangeBatch) => void>();
  private readonly maxEvents: number;
  private readonly maxBytes: number;

  constructor(opts: WatchHubOptions = {}) {
    this.maxEvents = opts.maxEvents ?? WATCH_HISTORY_DEFAULTS.maxEvents;
    this.maxBytes = opts.maxBytes ?? WATCH_HISTORY_DEFAULTS.maxBytes;
  }

  /** The state machine reports one change of the entry it is applying. */
  change(c: Change): void {
    this.pending.push(c);
  }

  /** The entry at `index` is applied: its changes become one batch. */
  applied(index: number): void {
    if (this.pending.length === 0) return;
    const batch: ChangeBatch = { index, changes: this.pending };
    this.pending = [];
    let bytes = 0;
    for (const c of batch.changes) bytes += sizeOf(c);
    this.kept.push({ batch, bytes });
    this.events += batch.changes.length;
    this.bytes += bytes;
    while (this.kept.length - this.head > 1 && (this.events > this.maxEvents || this.bytes > this.maxBytes)) {
      const old = this.kept[this.head++]!;
      this.events -= old.batch.changes.length;
      this.bytes -= old.bytes;
      this.firstAvailable = old.batch.index + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.kept.length) {
      this.kept.splice(0, this.head);
      this.head = 0;
    }
    // A watcher's failure must never reach the state machine (a throw there stops the node).
    for (const fn of this.listeners) {
      try {
        fn(batch);
      } catch {
        this.listeners.delete(fn);
      }
    }
  }

  /** The state was replaced by a snapshot at `index`: nothing before it can be replayed. */
  reset(index: number): void {
    this.kept.length = 0;
    this.head = 0;
    this.events = 0;
    this.bytes = 0;
    this.pending = [];
    this.firstAvailable = index + 1;
  }

  /** The oldest index a watcher may resume from. */
  get oldestIndex(): number {
    return this.firstAvailable;
  }

  /** Kept batches at or after `fromIndex`, or null when changes there were compacted away. */
  since(fromIndex: number): ChangeBatch[] | null {
    if (fromIndex < this.firstAvailable) return null;
    const out: ChangeBatch[] = [];
    for (let i = this.head; i < this.kept.length; i++) {
      const b = this.kept[i]!.batch;
      if (b.index >= fromIndex) out.push(b);
    }
    return out;
  }

  subscribe(fn: (b: ChangeBatch) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get watchers(): number {
    return this.listeners.size;
  }
}
