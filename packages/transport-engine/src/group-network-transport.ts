/**
 * `GroupNetworkTransport`: the `GroupTransport` contract over any stream layer: every Raft
 * group of a host (`@quorate/multiraft`) shares one connection per peer and direction, and
 * each message names its group (protocol version 2). Connections, handshake, queues,
 * reconnection and snapshot streams are `PeerNetwork`'s, as for one group; a peer that
 * speaks protocol 1 (a single-group node) is refused in the handshake with
 * `VERSION_MISMATCH`, and refuses this one the same way.
 */

import {
  type EnvelopeContext,
  encodeGroupMessageFrame,
  encodeHostFrame,
  GROUPS_PROTOCOL_VERSION,
  type GroupDelivery,
  groupEnvelopeFrom,
  type SnapshotMessage,
} from '@quorate/codec';
import type {
  GroupId,
  GroupTransport,
  GroupTransportHandler,
  HostMessage,
  Message,
  NodeId,
} from '@quorate/raft';
import { PeerNetwork } from './peer-network.js';
import type { SnapshotReceiver } from './snapshots.js';

export class GroupNetworkTransport extends PeerNetwork<GroupTransportHandler> implements GroupTransport {
  readonly protocolVersion = GROUPS_PROTOCOL_VERSION;
  readonly grouped = true;

  /** Queue `group`'s message for its peer. Never throws, never blocks. */
  send(group: GroupId, msg: Message): void {
    this.enqueue(msg.to, String(msg.type), () => encodeGroupMessageFrame(this.options.clusterId, group, msg));
  }

  /** Queue a host message (liveness, quiescence) for `to`. Never throws, never blocks. */
  sendHost(to: NodeId, msg: HostMessage): void {
    this.enqueue(to, `host ${msg.type}`, () => encodeHostFrame(this.options.clusterId, this.id, to, msg));
  }

  /** Stream `group`'s snapshot over the same connection as its messages. */
  sendSnapshot(group: GroupId, msg: SnapshotMessage, data: AsyncIterable<Uint8Array>): Promise<void> {
    return this.streamSnapshot(msg, data, group);
  }

  decodeEnvelope(t: unknown, ctx: EnvelopeContext): GroupDelivery {
    return groupEnvelopeFrom(t, ctx);
  }

  protected dispatch(handler: GroupTransportHandler, peer: NodeId, decoded: unknown): void {
    const d = decoded as GroupDelivery;
    if (d.kind === 'message') handler.onMessage(d.group, d.msg);
    else handler.onHostMessage(peer, d.msg);
  }

  protected snapshotReceiver(
    handler: GroupTransportHandler,
    group: number | undefined,
  ): SnapshotReceiver | null {
    const on = handler.onSnapshot;
    if (!on || group === undefined) return null;
    return (msg, data) => on.call(handler, group, msg, data);
  }
}
