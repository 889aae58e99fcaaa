import type { Entry, SnapshotMeta } from '../types.js';

/**
 * The application's replicated state.
 *
 * Contract:
 * - `apply` receives every committed entry of type `Normal` exactly once per process
 *   lifetime, in log order. Entries with empty data are the leader's no-ops; a state
 *   machine may ignore them.
 * - `apply` must be deterministic: the same entries in the same order produce the same
 *   state and results on every replica. No clocks, no randomness, no I/O whose result
 *   changes the state.
 * - The returned value (or promise) is handed to the proposer of the entry on this node.
 *   A throw is not a result: it stops the node, because replicas would otherwise diverge.
 */
export interface StateMachine<TResult = unknown> {
  apply(entry: Entry): TResult | Promise<TResult>;
  /**
   * Optional: the whole state as of the last applied entry, as a stream of chunks. The
   * state may keep changing while the stream is consumed (apply goes on), so take a
   * consistent view first (copy-on-write, an immutable structure, ...) and keep the
   * synchronous part short: it pauses writes. The runtime asks for one chunk per turn of
   * the event loop, which heartbeats share: producing a chunk should take a millisecond
   * or so (tens of KiB), never a large part of the election timeout.
   */
  snapshot?(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Optional: replace the whole state with a snapshot's data. */
  restore?(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void>;
}
