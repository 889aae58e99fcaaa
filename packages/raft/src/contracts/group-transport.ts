import type { Heartbeat, HeartbeatResponse, Message, NodeId, SnapshotRequest } from '../types.js';

/**
 * A Raft group's number within a multi-group host (`@quorate/multiraft`). Chosen by the
 * application, the same on every member: an unsigned 32-bit integer.
 */
export type GroupId = number;

/** The largest group id the wire format carries. */
export const MAX_GROUP_ID = 0xffff_ffff;

/**
 * The most heartbeats (and answers) one `beats` host message carries: 1024 of them fit,
 * envelope and all, in the smallest frame a network transport may be configured with.
 */
export const MAX_BEATS = 1024;

/**
 * Messages between hosts, about the host itself or one group's timing. None of them is a
 * Raft message and none can change what a group commits: they only decide when groups
 * tick.
 * - `alive`: one per peer per liveness interval (coalesced for every group). `incarnation`
 *   changes when the sender's process restarts.
 * - `quiesce`: the leader of `group` in `term` stops ticking and heartbeating; everything
 *   up to `commit` is committed and held by the receiver. The receiver steps the heartbeat
 *   the leader would have sent and stops ticking the group too.
 * - `wake`: a member of `group` asks the sender's peer to resume ticking it.
 * - `beats`: the `heartbeat` and `heartbeatResponse` messages several groups sent the
 *   receiver in one turn of the sender's event loop, in send order, as one message (the
 *   exception to "none of them is a Raft message": each item is one, and the receiver
 *   handles it exactly as if it had come alone through `onMessage`). Every item's `from`
 *   is the sender and its `to` the receiver. At most 1024 items (the wire format refuses
 *   more: 1024 heartbeats fit in the smallest frame a transport may be configured with).
 */
export type HostMessage =
  | { readonly type: 'alive'; readonly incarnation: number }
  | { readonly type: 'quiesce'; readonly group: GroupId; readonly term: number; readonly commit: number }
  | { readonly type: 'wake'; readonly group: GroupId }
  | { readonly type: 'beats'; readonly items: readonly GroupBeat[] };

/** One item of a `beats` host message: a group's heartbeat or answer to one. */
export interface GroupBeat {
  readonly group: GroupId;
  readonly msg: Heartbeat | HeartbeatResponse;
}

/** Callbacks a group transport delivers to; `@quorate/multiraft`'s host implements them. */
export interface GroupTransportHandler {
  /** A Raft message for `group`. Same rules as `TransportHandler.onMessage`. Must not throw. */
  onMessage(group: GroupId, msg: Message): void;
  /** A host message from the authenticated peer `from`. Must not throw. */
  onHostMessage(from: NodeId, msg: HostMessage): void;
  /** Delivery to `peer` failed (connection refused, queue full, timed out). */
  onUnreachable?(peer: NodeId): void;
  /** A snapshot for `group`, with its data: as `TransportHandler.onSnapshot`. */
  onSnapshot?(group: GroupId, msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void>;
}

/**
 * Carries the messages of many Raft groups between hosts over one connection per peer.
 * The contract of `Transport` holds for every group (best effort, never throws, bounded
 * per-peer queues, order kept per connection); the group id travels with each message.
 * A transport of this kind must refuse peers that speak the single-group protocol, and
 * they it, with a clear error (the network transports do it in the handshake).
 */
export interface GroupTransport {
  start(handler: GroupTransportHandler): Promise<void>;
  send(group: GroupId, msg: Message): void;
  sendHost(to: NodeId, msg: HostMessage): void;
  /** Optional: stream a group's snapshot (see `SnapshotTransport`). */
  sendSnapshot?(group: GroupId, msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void>;
  close(): Promise<void>;
}
