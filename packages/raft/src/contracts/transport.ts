import type { Message, NodeId, SnapshotRequest } from '../types.js';

/** Callbacks a transport delivers to; the runtime implements them. */
export interface TransportHandler {
  /**
   * A message from a peer. Only messages that passed validation and whose sender
   * authenticated as `msg.from` may be delivered. Must not throw.
   */
  onMessage(msg: Message): void;
  /**
   * The transport could not deliver to `peer` (connection refused, queue full, peer
   * timed out). The core then stops pipelining to it and probes instead.
   */
  onUnreachable?(peer: NodeId): void;
  /**
   * A snapshot from the leader, with its data. Resolve once the data is stored (the
   * runtime then steps `msg` into the core); reject to refuse it. Transports that
   * implement `SnapshotTransport` call this instead of `onMessage` for `snapshot`
   * messages; `RaftNode` ignores a `snapshot` message handed to `onMessage` (it comes
   * without its data).
   */
  onSnapshot?(msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void>;
}

/**
 * Carries messages between members.
 *
 * Contract:
 * - `send` never throws and never blocks: it queues and returns. Delivery is best effort:
 *   messages may be lost, duplicated or, across reconnects, reordered; Raft copes. A
 *   transport must never invent or alter a message.
 * - Messages from one sender to one receiver over one connection arrive in send order.
 * - Per-peer queues are bounded, so one slow or dead peer cannot grow memory or delay
 *   the others; what overflows is dropped and reported through `onUnreachable`.
 * - `close` stops accepting and delivering; pending messages are flushed or dropped.
 */
export interface Transport {
  start(handler: TransportHandler): Promise<void>;
  send(msg: Message): void;
  close(): Promise<void>;
}

/**
 * An optional capability: stream a snapshot's data to a follower, in chunks under the
 * frame limit, with flow control. Resolves when the receiver's `onSnapshot` resolved
 * (the data is stored there); rejects when the transfer failed. A transport may resume
 * an interrupted transfer after a reconnect; the runtime also retries from scratch.
 */
export interface SnapshotTransport extends Transport {
  sendSnapshot(msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void>;
}

export function canSendSnapshots(t: Transport): t is SnapshotTransport {
  return typeof (t as Partial<SnapshotTransport>).sendSnapshot === 'function';
}
