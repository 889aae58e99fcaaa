/**
 * `NetworkTransport`: the `Transport` contract over any stream layer, one Raft group per
 * connection (protocol version 1). The TCP and WebSocket transports are this class with
 * their own `StreamLayer`; everything but the envelope lives in `PeerNetwork`.
 */

import {
  type EnvelopeContext,
  encodeMessageFrame,
  messageFromEnvelope,
  PROTOCOL_VERSION,
  type SnapshotMessage,
} from '@quorate/codec';
import type { Message, NodeId, SnapshotTransport, TransportHandler } from '@quorate/raft';
import { PeerNetwork } from './peer-network.js';
import type { SnapshotReceiver } from './snapshots.js';

export type { CloseReport } from './peer-network.js';

export class NetworkTransport extends PeerNetwork<TransportHandler> implements SnapshotTransport {
  readonly protocolVersion = PROTOCOL_VERSION;
  readonly grouped = false;

  /** Queue `msg` for its peer. Never throws, never blocks; see the `Transport` contract. */
  send(msg: Message): void {
    this.enqueue(msg.to, String(msg.type), () => encodeMessageFrame(this.options.clusterId, msg));
  }

  /**
   * Stream a snapshot to its receiver in checksummed chunks under the frame limit, with a
   * bounded window (flow control). Resolves once the receiver has stored it; rejects when
   * it could not (the runtime then retries from the start).
   */
  sendSnapshot(msg: SnapshotMessage, data: AsyncIterable<Uint8Array>): Promise<void> {
    return this.streamSnapshot(msg, data, undefined);
  }

  decodeEnvelope(t: unknown, ctx: EnvelopeContext): Message {
    return messageFromEnvelope(t, ctx);
  }

  protected dispatch(handler: TransportHandler, _peer: NodeId, decoded: unknown): void {
    handler.onMessage(decoded as Message);
  }

  protected snapshotReceiver(handler: TransportHandler): SnapshotReceiver | null {
    const on = handler.onSnapshot;
    return on ? (msg, data) => on.call(handler, msg, data) : null;
  }
}
