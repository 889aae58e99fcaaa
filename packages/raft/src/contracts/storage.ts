import type { ConfState, Entry, HardState, SnapshotMeta } from '../types.js';

/**
 * What a node finds in its storage when it starts.
 */
export interface InitialState {
  readonly hardState: HardState;
  /**
   * The membership as of the latest snapshot (or bootstrap). Membership changes that
   * sit in the log after it are replayed by the core as they are read.
   */
  readonly conf: ConfState;
}

/**
 * The read side of a log store, used by the core on its hot path.
 *
 * Contract:
 * - Reads are **synchronous** and must be cheap: serve them from memory or from a
 *   memory-mapped store (the in-memory and LMDB stores both do). The core never awaits.
 * - Indexes are dense. The log holds entries `[firstIndex(), lastIndex()]`; everything
 *   before `firstIndex()` has been compacted into the snapshot described by `snapshot()`.
 *   An empty log has `lastIndex() === firstIndex() - 1`.
 * - `term(i)` answers for `i` in `[firstIndex() - 1, lastIndex()]` (the term at
 *   `firstIndex() - 1` is the snapshot's term; index 0 has term 0). Outside that range it
 *   throws {@link CompactedError} (below) or {@link UnavailableError} (above).
 * - Returned arrays and entries belong to the caller to read, never to mutate; the store
 *   must not mutate them afterwards either.
 * - Reads reflect every `persist` that has resolved. While a `persist` is in flight the
 *   core does not read the indexes it touches, so either view is acceptable.
 */
export interface LogReader {
  initialState(): InitialState;
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number;
  /**
   * Entries `[lo, hi)`, stopping early once their total {@link entrySize} passes
   * `maxBytes` — but always at least one entry when `lo < hi`, so progress is possible
   * with any limit. Requires `firstIndex() <= lo <= hi <= lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** The snapshot the log was last compacted to (index 0, term 0 for a fresh store). */
  snapshot(): SnapshotMeta;
}

/**
 * One durable write, produced by the core's `ready()` (see `Ready`).
 * Applied in this order, atomically: snapshot, then entries, then hard state.
 */
export interface PersistBatch {
  /** Replace the log by this snapshot: drop every entry, the log restarts at `index + 1`. */
  readonly snapshot: SnapshotMeta | null;
  /**
   * Contiguous entries. `entries[0].index` may be at most `lastIndex() + 1`; every
   * stored entry at or after it is discarded first (a conflicting suffix).
   */
  readonly entries: readonly Entry[];
  /** The new hard state, or `null` when it did not change. */
  readonly hardState: HardState | null;
  /**
   * `false` when only the commit index moved: losing this batch in a crash is safe, so a
   * store may skip the fsync. Absent means `true`.
   */
  readonly mustSync?: boolean;
}

/**
 * A durable log and hard-state store.
 *
 * Durability: `persist` resolves only when the batch would survive a crash of the
 * process and of the machine (fsync), unless the store was explicitly configured not to.
 * Ordering: the runtime may call `persist` again before the previous call resolves; the
 * store must make batches durable in call order and resolve them in call order.
 * Failure: a rejected `persist` is fatal for the node, which stops: the outcome on disk
 * is unknown and continuing could break promises already made to peers.
 */
export interface LogStorage extends LogReader {
  persist(batch: PersistBatch): Promise<void>;
  /**
   * Discard entries up to and including `index`, now that `snapshot` (saved in the
   * snapshot store, `snapshot.index >= index`) covers them. Afterwards
   * `firstIndex() === index + 1`, `term(index)` still answers, and `snapshot()` returns
   * `snapshot`. Entries between `index` and `snapshot.index` stay, for slow followers.
   */
  compact(index: number, snapshot: SnapshotMeta): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where snapshot data lives: chunks, written as a stream and committed atomically, so a
 * multi-hundred-MB state machine never sits in one buffer and a crash mid-write leaves
 * the previous snapshot intact.
 */
export interface SnapshotStore {
  /** The latest committed snapshot's metadata, or null. Synchronous. */
  latest(): SnapshotMeta | null;
  /** Start writing a snapshot; nothing is visible until `commit`. */
  create(meta: SnapshotMeta): Promise<SnapshotWriter>;
  /** The data of the latest committed snapshot (which must match `meta`), in chunks. */
  read(meta: SnapshotMeta): AsyncIterable<Uint8Array>;
}

export interface SnapshotWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Make the snapshot durable and the latest, replacing the previous one atomically. */
  commit(): Promise<void>;
  /** Drop what was written. */
  abort(): Promise<void>;
}
