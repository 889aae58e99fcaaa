/**
 * `PeerNetwork`: what every network transport shares over any stream layer, whatever it
 * carries. It owns the peer table, one outbound `PeerLink` per peer, the accepted
 * connections, the handshake's version, the per-turn write coalescing, snapshot streams
 * and the counters. `NetworkTransport` (one Raft group, protocol 1) and
 * `GroupNetworkTransport` (many groups, protocol 2) are its two envelopes.
 */

import {
  type EnvelopeContext,
  FRAME_HEADER_BYTES,
  type SnapshotFrame,
  type SnapshotMessage,
  TransportError,
  TransportErrorCode,
} from '@quorate/codec';
import type { NodeId } from '@quorate/raft';
import { InboundConnection, type InboundHost } from './inbound.js';
import { RateLimitedLog } from './log.js';
import {
  type NetworkTransportOptions,
  normalisePeers,
  type PeerAddress,
  type ResolvedOptions,
  resolveNetworkOptions,
} from './options.js';
import { type LinkHost, PeerLink } from './peer-link.js';
import { type SnapshotReceiver, SnapshotStreams } from './snapshots.js';
import { Counters, type PeerStats, type TransportStats } from './stats.js';
import type { Connection, StreamLayer } from './stream.js';

/** What `close()` did with the messages still queued. */
export interface CloseReport {
  /** Messages handed to the operating system during shutdown. */
  readonly flushed: number;
  /** Messages dropped because their peer was down or did not take them in time. */
  readonly dropped: number;
}

type Phase = 'new' | 'started' | 'closing' | 'closed';

/** What every handler of a network transport has. */
export interface BaseHandler {
  onUnreachable?(peer: NodeId): void;
}

export abstract class PeerNetwork<H extends BaseHandler> implements LinkHost, InboundHost {
  /** The protocol version of the handshake; a peer of another version is refused. */
  abstract readonly protocolVersion: number;
  /** Whether snapshot BEGIN frames carry a group. */
  abstract readonly grouped: boolean;
  abstract decodeEnvelope(t: unknown, ctx: EnvelopeContext): unknown;
  /** Hand a decoded envelope to `handler`; may throw (the caller logs it). */
  protected abstract dispatch(handler: H, peer: NodeId, decoded: unknown): void;
  /** Who stores an incoming snapshot, given the handler and the group BEGIN named. */
  protected abstract snapshotReceiver(handler: H, group: number | undefined): SnapshotReceiver | null;

  readonly id: NodeId;
  readonly options: ResolvedOptions;
  readonly counters = new Counters();
  /** Messages and frame bytes delivered, by sender. */
  private readonly receivedFrom = new Map<NodeId, { messages: number; bytes: number }>();
  /** When anything last arrived from each peer (performance.now() ms). */
  private readonly heardAt = new Map<NodeId, number>();
  readonly log: RateLimitedLog;
  readonly layer: StreamLayer;
  private peers: Map<NodeId, PeerAddress>;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundByPeer = new Map<NodeId, InboundConnection>();
  protected handler: H | null = null;
  protected phase: Phase = 'new';
  private listening: Promise<string> | null = null;
  private bound: string | null = null;
  private pendingHandshakes = 0;
  /** Connections mid-handshake by remote host, and the host of each. */
  private readonly pendingByHost = new Map<string, number>();
  private readonly hostOf = new WeakMap<InboundConnection, string>();
  private readonly dirty = new Set<PeerLink>();
  private readonly unreachable = new Set<NodeId>();
  private turnScheduled = false;
  private closing: Promise<CloseReport> | null = null;
  private readonly warnedOnce = new Set<string>();
  /** Snapshot chunks stay well under the frame limit (room for the frame's own fields). */
  readonly maxSnapshotChunkBytes: number;
  private readonly snapshots: SnapshotStreams;

  constructor(options: NetworkTransportOptions, layer: StreamLayer) {
    this.options = resolveNetworkOptions(options);
    this.id = this.options.id;
    this.peers = new Map(this.options.peers);
    this.layer = layer;
    this.log = new RateLimitedLog(this.options.logger, `quorate transport ${this.id}: `);
    this.maxSnapshotChunkBytes = Math.min(256 * 1024, this.options.maxFrameBytes - 1024);
    this.snapshots = new SnapshotStreams(
      {
        id: this.id,
        log: this.log,
        stallTimeoutMs: this.options.stallTimeoutMs,
        sendFrame: (peer, frame) => {
          if (this.phase !== 'started') return false;
          const link = this.linkTo(peer);
          if (!link) return false;
          link.enqueue(frame);
          return true;
        },
        receiver: (group) =>
          this.phase === 'started' && this.handler ? this.snapshotReceiver(this.handler, group) : null,
      },
      this.maxSnapshotChunkBytes,
    );
  }

  /**
   * Stream a snapshot to its receiver in checksummed chunks under the frame limit, with a
   * bounded window (flow control). Resolves once the receiver has stored it; rejects when
   * it could not (the runtime then retries from the start).
   */
  protected streamSnapshot(
    msg: SnapshotMessage,
    data: AsyncIterable<Uint8Array>,
    group: number | undefined,
  ): Promise<void> {
    if (this.phase !== 'started') {
      return Promise.reject(
        new TransportError(TransportErrorCode.Closed, `transport ${this.id} is not started`),
      );
    }
    return this.snapshots.send(msg, data, group);
  }

  /** The address peers dial to reach this member, once listening. */
  get address(): string | null {
    return this.bound;
  }

  /**
   * Start accepting connections without delivering yet (messages that arrive before
   * `start` are dropped). Lets a host learn the OS-chosen port before it starts the node.
   */
  listen(): Promise<string> {
    if (this.phase === 'closing' || this.phase === 'closed') {
      return Promise.reject(new TransportError(TransportErrorCode.Closed, `transport ${this.id} is closed`));
    }
    this.listening ??= this.layer
      .listen(
        (c) => this.accept(c),
        (remote, err) => {
          this.counters.handshakeFailures++;
          this.log.warn(`refused a connection from ${remote}: ${err.message}`);
        },
      )
      .then((addr) => {
        this.bound = addr;
        return addr;
      });
    return this.listening;
  }

  async start(handler: H): Promise<void> {
    if (this.phase !== 'new') {
      throw new TransportError(
        TransportErrorCode.Closed,
        this.phase === 'started'
          ? `transport ${this.id} is already started`
          : `transport ${this.id} is closed; create a new one`,
      );
    }
    this.handler = handler;
    this.phase = 'started';
    await this.listen();
  }

  /**
   * Queue an encoded frame for `to` (`what` names it in warnings). Never throws, never
   * blocks; see the `Transport` contract.
   */
  protected enqueue(to: NodeId, what: string, encode: () => Buffer): void {
    if (this.phase === 'closing' || this.phase === 'closed') {
      this.counters.messagesDropped++;
      return;
    }
    const link = this.linkTo(to);
    if (!link) {
      this.counters.messagesDropped++;
      this.warnOnce(
        `no-peer:${to}`,
        `no address is configured for ${JSON.stringify(to)}; dropping messages to it`,
      );
      this.markUnreachable(to);
      return;
    }
    let frame: Buffer;
    try {
      frame = encode();
    } catch (err) {
      this.counters.messagesDropped++;
      this.warnOnce(`encode:${what}`, `cannot encode a ${what} message: ${(err as Error).message}`);
      return;
    }
    if (frame.byteLength - FRAME_HEADER_BYTES > this.options.maxFrameBytes) {
      this.counters.messagesDropped++;
      this.warnOnce(
        `size:${to}`,
        `a ${what} message of ${frame.byteLength} bytes exceeds maxFrameBytes (${this.options.maxFrameBytes}); ` +
          'raise maxFrameBytes on every member or lower the core maxSizePerMsg',
      );
      this.markUnreachable(to);
      return;
    }
    link.enqueue(frame);
  }

  /** The client-facing address configured for member `id` (this one included), or null. */
  addressOf(id: NodeId): string | null {
    return this.peers.get(id)?.clientAddress ?? null;
  }

  /**
   * Replace the member table (membership changed, a peer moved). Links to removed or moved
   * peers are closed, and so are connections from removed members.
   */
  setPeers(peers: Readonly<Record<NodeId, string | PeerAddress>>): void {
    const next = normalisePeers(peers);
    for (const [id, link] of this.links) {
      if (next.get(id)?.address !== link.address) {
        this.links.delete(id);
        void link.close(0);
      }
    }
    for (const c of this.inbound) if (c.peer !== null && !next.has(c.peer)) c.destroy();
    this.peers = next;
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const [id, link] of this.links) {
      const r = this.receivedFrom.get(id);
      peers[id] = { ...link.stats(), messagesReceived: r?.messages ?? 0, bytesReceived: r?.bytes ?? 0 };
    }
    return { ...this.counters, peers };
  }

  /**
   * Stop accepting and delivering, hand what is queued to open connections and end them;
   * what does not drain within `closeTimeoutMs` is dropped (see `closeWithReport`).
   */
  async close(): Promise<void> {
    await this.closeWithReport();
  }

  /** `close()`, resolving with how many queued messages were flushed and dropped. */
  closeWithReport(): Promise<CloseReport> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<CloseReport> {
    this.snapshots.closeAll();
    this.phase = 'closing';
    this.handler = null;
    for (const c of [...this.inbound]) c.destroy();
    const links = [...this.links.values()];
    this.links.clear();
    const results = await Promise.all(links.map((l) => l.close(this.options.closeTimeoutMs)));
    if (this.listening) {
      await this.listening.catch(() => {});
      await this.layer.close().catch(() => {});
    }
    this.phase = 'closed';
    let flushed = 0;
    let dropped = 0;
    for (const r of results) {
      flushed += r.flushed;
      dropped += r.dropped;
    }
    if (dropped > 0) this.log.info(`closed; ${flushed} queued messages flushed, ${dropped} dropped`);
    return { flushed, dropped };
  }

  // ------------------------------------------------------------ LinkHost / InboundHost

  scheduleFlush(link: PeerLink): void {
    this.dirty.add(link);
    this.armTurn();
  }

  markUnreachable(peer: NodeId): void {
    this.snapshots.peerLost(peer);
    this.unreachable.add(peer);
    this.armTurn();
  }

  lastHeard(peer: NodeId): number {
    return this.heardAt.get(peer) ?? 0;
  }

  isPeer(id: NodeId): boolean {
    return id !== this.id && this.peers.has(id);
  }

  deliver(peer: NodeId, decoded: unknown, frameBytes: number): void {
    const h = this.handler;
    if (!h || this.phase !== 'started') {
      this.counters.messagesDropped++;
      return;
    }
    this.counters.messagesReceived++;
    this.counters.bytesReceived += frameBytes;
    this.heardAt.set(peer, performance.now());
    const r = this.receivedFrom.get(peer);
    if (r) {
      r.messages++;
      r.bytes += frameBytes;
    } else this.receivedFrom.set(peer, { messages: 1, bytes: frameBytes });
    try {
      this.dispatch(h, peer, decoded);
    } catch (err) {
      this.log.warn(`the message handler threw (it must not): ${(err as Error)?.message ?? String(err)}`);
    }
  }

  snapshotFrame(peer: NodeId, frame: SnapshotFrame, frameBytes: number): void {
    if (this.phase !== 'started') return;
    this.heardAt.set(peer, performance.now());
    this.counters.bytesReceived += frameBytes;
    this.snapshots.onFrame(peer, frame);
  }

  authenticated(conn: InboundConnection): void {
    this.handshakeDone(conn);
    const peer = conn.peer!;
    this.heardAt.set(peer, performance.now());
    // A peer has one outbound connection to us; an older one is a leftover of a restart.
    const old = this.inboundByPeer.get(peer);
    this.inboundByPeer.set(peer, conn);
    old?.destroy();
  }

  finished(conn: InboundConnection, wasPending: boolean): void {
    if (wasPending) this.handshakeDone(conn);
    this.inbound.delete(conn);
    if (conn.peer !== null && this.inboundByPeer.get(conn.peer) === conn) {
      this.inboundByPeer.delete(conn.peer);
      this.snapshots.senderLost(conn.peer);
    }
  }

  // ------------------------------------------------------------ internals

  private accept(conn: Connection): void {
    this.counters.connectionsAccepted++;
    if (this.phase === 'closing' || this.phase === 'closed') {
      conn.destroy();
      return;
    }
    if (this.pendingHandshakes >= this.options.maxPendingHandshakes) {
      this.counters.handshakeFailures++;
      this.log.warn(
        `refused a connection from ${conn.remoteAddress}: ${this.pendingHandshakes} handshakes already under way`,
      );
      conn.destroy();
      return;
    }
    const host = hostPart(conn.remoteAddress);
    const fromHost = this.pendingByHost.get(host) ?? 0;
    if (fromHost >= this.options.maxPendingHandshakesPerHost) {
      this.counters.handshakeFailures++;
      this.log.warn(
        `refused a connection from ${conn.remoteAddress}: ${fromHost} handshakes from ${host} already under way`,
      );
      conn.destroy();
      return;
    }
    this.pendingHandshakes++;
    this.pendingByHost.set(host, fromHost + 1);
    const c = new InboundConnection(conn, this);
    this.hostOf.set(c, host);
    this.inbound.add(c);
    c.start();
  }

  private handshakeDone(conn: InboundConnection): void {
    this.pendingHandshakes--;
    const host = this.hostOf.get(conn);
    if (host === undefined) return;
    this.hostOf.delete(conn);
    const n = (this.pendingByHost.get(host) ?? 1) - 1;
    if (n > 0) this.pendingByHost.set(host, n);
    else this.pendingByHost.delete(host);
  }

  private linkTo(peer: NodeId): PeerLink | null {
    let link = this.links.get(peer);
    if (link) return link;
    if (peer === this.id) return null;
    const addr = this.peers.get(peer)?.address;
    if (!addr) return null;
    link = new PeerLink(peer, addr, this);
    this.links.set(peer, link);
    return link;
  }

  private armTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(this.turn);
  }

  /** Once per event-loop turn: one write per peer, then the unreachable reports. */
  private readonly turn = (): void => {
    this.turnScheduled = false;
    const links = [...this.dirty];
    this.dirty.clear();
    for (const l of links) l.flush();
    if (this.unreachable.size === 0) return;
    const peers = [...this.unreachable];
    this.unreachable.clear();
    const h = this.handler;
    if (!h?.onUnreachable || this.phase !== 'started') return;
    for (const p of peers) {
      try {
        h.onUnreachable(p);
      } catch (err) {
        this.log.warn(
          `the unreachable handler threw (it must not): ${(err as Error)?.message ?? String(err)}`,
        );
      }
    }
  };

  protected warnOnce(key: string, message: string): void {
    if (this.warnedOnce.has(key)) return;
    if (this.warnedOnce.size < 1000) this.warnedOnce.add(key);
    this.log.warn(message);
  }
}

/** The host of a `host:port` or `[v6]:port` remote address. */
function hostPart(remote: string): string {
  const i = remote.lastIndexOf(':');
  return i > 0 ? remote.slice(0, i) : remote;
}
