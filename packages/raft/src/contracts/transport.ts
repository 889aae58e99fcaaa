import type { Message, NodeId } from '../types.js';

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
