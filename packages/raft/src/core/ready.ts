import type { Entry, HardState, Message, NodeId, Role, SnapshotMeta } from '../types.js';
import type { ProgressState } from './progress.js';

/** The answer to a `readIndex` request: serve the read once applied >= `index`. */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
  /** Leadership was lost (or the leader refused) before the read was confirmed: retry. */
  readonly failed: boolean;
}

/**
 * One batch of work for the host, produced by `RaftCore.ready()`.
 *
 * The host's contract, which is what keeps Raft safe (see the runtime for the
 * reference implementation):
 * 1. Send `messages` at once. None of them depends on this batch being durable: they are
 *    a leader's appends and heartbeats (its own durable append runs in parallel, thesis
 *    §10.2.1), requests for votes, and answers that promise nothing.
 * 2. Persist `snapshot`, `entries` and `hardState` in one atomic write (skip it when
 *    `mustPersist` is false), durably when `mustSync`. Batches become durable in the
 *    order they were produced; the next batch may be taken before this one is durable.
 * 3. Once this batch **and every earlier one** are durable, call
 *    `core.persisted(ready)` and then send `messagesAfterPersist`: vote grants and
 *    append acknowledgements, which promise that something is on disk.
 * 4. If `snapshot` is set, restore the state machine from it before applying anything
 *    later. Apply `committedEntries` in order (they are already durable here, so this may
 *    overlap with step 2 of later batches), then call `core.applied(lastIndex)`.
 * 5. Answer `readStates`: each read may be served once applied >= its index.
 */
export interface Ready {
  readonly seq: number;
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** Whether there is anything to write. */
  readonly mustPersist: boolean;
  /** Whether the write must be durable before it counts (false: only the commit index moved). */
  readonly mustSync: boolean;
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly inflight: number;
  readonly isLearner: boolean;
}

export interface CoreStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly persistedIndex: number;
  readonly leadTransferee: NodeId | null;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** The leader's view of every member; `null` on a non-leader. */
  readonly progress: Readonly<Record<NodeId, ProgressStatus>> | null;
}
