/**
 * The data Raft moves around: log entries, the persistent ("hard") state, cluster
 * configuration, snapshot metadata and the messages peers exchange.
 *
 * Everything here is plain data: no classes, no methods, so that a codec can carry it
 * over any wire and a storage engine can keep it in any format.
 */

/** A member's identity. Chosen by the operator (`n1`, `db-eu-2`); compared with `===`. */
export type NodeId = string;

/** Entry kinds. `Normal` carries application data (empty data: the leader's no-op). */
export const EntryType = {
  Normal: 0,
  /** A membership change; the payload is an encoded {@link ConfChange}. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/**
 * One slot of the replicated log. `index` starts at 1 and is dense; `term` is the
 * leader's term when the entry was created. Within one log, (index, term) identifies an
 * entry's whole prefix (the Log Matching property, Raft paper §5.3).
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/**
 * The state a node must persist before it sends any message that depends on it
 * (Raft paper Figure 2, "Persistent state on all servers"; `commit` is kept too so a
 * restarted node can apply without waiting for the leader).
 */
export interface HardState {
  readonly term: number;
  /** The candidate this node voted for in `term`, or `null`. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });

/**
 * Cluster membership. `voters` decide elections and commits. `learners` receive the log
 * but do not vote. While a joint-consensus change is under way (thesis §4.3),
 * `votersOutgoing` holds the old voter set and both majorities are needed.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
}

/**
 * A membership change carried by an entry of type {@link EntryType.ConfChange}: one
 * member at a time (see `core/confchange.ts` for why). `meta` travels with it untouched,
 * for the host (a new member's addresses, say).
 */
export interface ConfChange {
  readonly kind: 'addLearner' | 'addVoter' | 'remove';
  readonly node: NodeId;
  readonly meta?: Readonly<Record<string, string>>;
}

/**
 * Describes a snapshot: the state machine after applying every entry up to `index`
 * (whose term was `term`) under membership `conf`. The data itself lives in a snapshot
 * store and is streamed separately; the core only ever handles this metadata.
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

// ---------------------------------------------------------------------------------
// Messages. Every message carries the sender's term; the core decides on it first.

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** AppendEntries (paper §5.3); with no entries it still carries commit and probes the log. */
export interface AppendRequest extends MessageBase {
  readonly type: 'append';
  /** Index and term of the entry just before `entries`. */
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends MessageBase {
  readonly type: 'appendResponse';
  readonly reject: boolean;
  /**
   * On success: the highest index known to match the leader's log.
   * On rejection: the `prevIndex` that did not match (lets the leader drop stale rejections).
   */
  readonly index: number;
  /**
   * On rejection, the follower's guess of where the logs may agree: the largest index
   * `<= index` whose term is `<= hintTerm`, so the leader can skip a whole term per
   * round trip (fast backtracking, thesis §3.5 / etcd's `findConflictByTerm`).
   */
  readonly hintIndex: number;
  readonly hintTerm: number;
}

export interface VoteRequest extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set by a node campaigning on `timeoutNow`: voters waive leader stickiness for it. */
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
}

export interface Heartbeat extends MessageBase {
  readonly type: 'heartbeat';
  /** min(follower's match, leader's commit): never past what the follower is known to hold. */
  readonly commit: number;
  /** A read-index round this heartbeat confirms leadership for, or 0. */
  readonly readRound: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeatResponse';
  readonly readRound: number;
}

/** Tells a follower to install the leader's snapshot; the data is streamed by the host. */
export interface SnapshotRequest extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: SnapshotMeta;
}

/** Sent by a leader handing over leadership: campaign now, skipping PreVote. */
export interface TimeoutNow extends MessageBase {
  readonly type: 'timeoutNow';
}

/** A follower asks the leader for a read index on behalf of its clients. */
export interface ReadIndexRequest extends MessageBase {
  readonly type: 'readIndex';
  readonly requestId: number;
}

export interface ReadIndexResponse extends MessageBase {
  readonly type: 'readIndexResponse';
  readonly requestId: number;
  /** The commit index to wait for, or 0 with `reject` when the leader could not serve it. */
  readonly index: number;
  readonly reject: boolean;
}

export type Message =
  | AppendRequest
  | AppendResponse
  | VoteRequest
  | VoteResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

export type MessageType = Message['type'];

/** All message types, for codecs and validators. */
export const messageTypes: readonly MessageType[] = Object.freeze([
  'append',
  'appendResponse',
  'vote',
  'preVote',
  'voteResponse',
  'preVoteResponse',
  'heartbeat',
  'heartbeatResponse',
  'snapshot',
  'timeoutNow',
  'readIndex',
  'readIndexResponse',
]);

/** The approximate number of bytes an entry occupies, for size limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 24;
}
