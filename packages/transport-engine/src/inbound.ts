/**
 * One accepted connection, from its first byte to its close. Until the peer has proven the
 * cluster secret it may send only small handshake frames, within a deadline; afterwards
 * every frame must decode to a valid message from that peer to this node. Anything else
 * closes the connection, counts, and is logged with the peer's address; nothing from a
 * connection that failed the handshake is ever delivered.
 */

import {
  decodeHandshake,
  decodeSnapshotFrame,
  describeVersion,
  type EnvelopeContext,
  encodeChallenge,
  encodeRefuse,
  encodeWelcome,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameKind,
  FrameReader,
  freshNonce,
  type Hello,
  handshakeProof,
  isSnapshotFrameKind,
  type ProofInput,
  type SnapshotFrame,
  TransportErrorCode,
  unpackPayload,
  verifyProof,
} from '@quorate/codec';
import type { NodeId } from '@quorate/raft';
import type { RateLimitedLog } from './log.js';
import { HANDSHAKE_MAX_FRAME_BYTES, type ResolvedOptions } from './options.js';
import type { Counters } from './stats.js';
import type { Connection } from './stream.js';

export interface InboundHost {
  readonly options: ResolvedOptions;
  /** The protocol version this end speaks: peers of another version are refused. */
  readonly protocolVersion: number;
  /** Whether BEGIN snapshot frames name a group (protocol 2). */
  readonly grouped: boolean;
  /**
   * Validate an unpacked envelope from the authenticated peer (snapshot frames aside);
   * throws a `FrameError` for one that must not be used.
   */
  decodeEnvelope(t: unknown, ctx: EnvelopeContext): unknown;
  readonly counters: Counters;
  readonly log: RateLimitedLog;
  /** Whether `id` is a configured member other than this node. */
  isPeer(id: NodeId): boolean;
  /** Hand what `decodeEnvelope` returned to the handler. */
  deliver(peer: NodeId, decoded: unknown, frameBytes: number): void;
  /** A validated snapshot-streaming frame from an authenticated peer. */
  snapshotFrame(peer: NodeId, frame: SnapshotFrame, frameBytes: number): void;
  /** Largest snapshot chunk accepted. */
  readonly maxSnapshotChunkBytes: number;
  authenticated(conn: InboundConnection): void;
  /** The connection is closed; `wasPending` when it never authenticated. */
  finished(conn: InboundConnection, wasPending: boolean): void;
}

const noop = () => {};
/** After a refusal, how long the peer has to read it before the connection is cut. */
const REFUSE_LINGER_MS = 1000;

export class InboundConnection {
  private state: 'hello' | 'auth' | 'open' | 'done' = 'hello';
  private hello: Hello | null = null;
  private nonce: Buffer | null = null;
  private readonly reader = new FrameReader(HANDSHAKE_MAX_FRAME_BYTES);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ctx: EnvelopeContext | null = null;
  peer: NodeId | null = null;
  private authed = false;
  private released = false;

  constructor(
    readonly conn: Connection,
    private readonly host: InboundHost,
  ) {}

  start(): void {
    const o = this.host.options;
    this.timer = setTimeout(() => {
      if (this.state === 'hello' || this.state === 'auth') {
        this.failHandshake(
          TransportErrorCode.HandshakeFailed,
          `no handshake within ${o.handshakeTimeoutMs} ms`,
          false,
        );
      }
    }, o.handshakeTimeoutMs);
    this.conn.attach({
      data: (chunk) => this.onData(chunk),
      drain: noop,
      close: (err) => this.onClose(err),
    });
  }

  /** Close from our side (transport shutdown, a newer connection from the same peer). */
  destroy(): void {
    if (this.state === 'done') this.conn.destroy();
    else this.finish();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'done') return;
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
      if (this.conn.messageFramed && this.reader.pendingBytes > 0) {
        throw new FrameError(
          TransportErrorCode.MalformedFrame,
          'a message ends inside a frame (truncated frame)',
        );
      }
    } catch (err) {
      this.reject(err as FrameError);
      return;
    }
    for (const f of frames) {
      if (this.state === 'open') {
        let decoded: unknown = null;
        let snap: SnapshotFrame | null = null;
        try {
          const t = unpackPayload(f);
          if (Array.isArray(t) && isSnapshotFrameKind(t[0])) {
            const ctx = this.ctx!;
            snap = decodeSnapshotFrame(
              t,
              ctx.peer,
              ctx.local,
              ctx.limits,
              this.host.maxSnapshotChunkBytes,
              this.host.grouped,
            );
          } else decoded = this.host.decodeEnvelope(t, this.ctx!);
        } catch (err) {
          this.reject(err as FrameError);
          return;
        }
        if (snap) this.host.snapshotFrame(this.ctx!.peer, snap, f.byteLength + FRAME_HEADER_BYTES);
        else this.host.deliver(this.ctx!.peer, decoded, f.byteLength + FRAME_HEADER_BYTES);
      } else {
        this.onHandshakeFrame(f);
      }
      if (this.done) return;
    }
  }

  /** Read through a getter: handlers called above may have closed the connection. */
  private get done(): boolean {
    return this.state === 'done';
  }

  private onHandshakeFrame(f: Buffer): void {
    const o = this.host.options;
    let hs: ReturnType<typeof decodeHandshake>;
    try {
      hs = decodeHandshake(f, o.limits);
    } catch (err) {
      const e = err as FrameError;
      this.failHandshake(e.code ?? TransportErrorCode.MalformedFrame, e.message, true);
      return;
    }
    if (this.state === 'hello') {
      if (hs.kind !== FrameKind.Hello) {
        this.failHandshake(
          TransportErrorCode.HandshakeFailed,
          `expected HELLO, got frame kind ${hs.kind}`,
          true,
        );
        return;
      }
      if (hs.version !== this.host.protocolVersion) {
        this.failHandshake(
          TransportErrorCode.VersionMismatch,
          `this node speaks ${describeVersion(this.host.protocolVersion)}, the peer ${describeVersion(hs.version)}`,
          true,
        );
        return;
      }
      if (hs.clusterId !== o.clusterId) {
        this.failHandshake(
          TransportErrorCode.ClusterMismatch,
          `this node is not in cluster ${JSON.stringify(hs.clusterId)}`,
          true,
        );
        return;
      }
      if (hs.to !== o.id) {
        this.failHandshake(
          TransportErrorCode.UnknownPeer,
          `this is not node ${JSON.stringify(hs.to)}; check the peer addresses`,
          true,
        );
        return;
      }
      if (!this.host.isPeer(hs.from)) {
        this.failHandshake(
          TransportErrorCode.UnknownPeer,
          `${JSON.stringify(hs.from)} is not a member of this cluster as ${o.id} knows it`,
          true,
        );
        return;
      }
      this.hello = hs;
      this.nonce = freshNonce();
      const proof = handshakeProof(o.secret, 'responder', this.proofInput());
      this.conn.write(
        [
          encodeChallenge({
            version: this.host.protocolVersion,
            clusterId: o.clusterId,
            from: o.id,
            nonce: this.nonce,
            proof,
          }),
        ],
        noop,
      );
      this.state = 'auth';
      return;
    }
    // state === 'auth'
    if (hs.kind !== FrameKind.Auth) {
      this.failHandshake(
        TransportErrorCode.HandshakeFailed,
        `expected AUTH, got frame kind ${hs.kind}`,
        true,
      );
      return;
    }
    if (!verifyProof(o.secret, 'initiator', this.proofInput(), hs.proof)) {
      this.failHandshake(TransportErrorCode.AuthFailed, 'the cluster secret does not match', true);
      return;
    }
    const peer = this.hello!.from;
    this.peer = peer;
    this.ctx = { clusterId: o.clusterId, peer, local: o.id, limits: o.limits };
    this.state = 'open';
    this.authed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.reader.maxFrameBytes = o.maxFrameBytes;
    this.conn.setMaxMessageBytes?.(o.maxFrameBytes + FRAME_HEADER_BYTES);
    this.conn.write([encodeWelcome()], noop);
    this.host.authenticated(this);
  }

  private proofInput(): ProofInput {
    const h = this.hello!;
    return {
      clusterId: this.host.options.clusterId,
      initiator: h.from,
      responder: this.host.options.id,
      initiatorNonce: h.nonce,
      responderNonce: this.nonce!,
    };
  }

  /** A bad frame before authentication: tell the peer why (when it can hear it), count, close. */
  private failHandshake(code: string, reason: string, tell: boolean): void {
    if (this.state === 'done') return;
    this.host.counters.handshakeFailures++;
    this.host.log.warn(`refused a connection from ${this.conn.remoteAddress}: ${reason} (${code})`);
    if (!tell) {
      this.finish();
      return;
    }
    this.conn.write([encodeRefuse({ code, reason })], noop);
    this.conn.end();
    this.state = 'done';
    if (this.timer) clearTimeout(this.timer);
    // The peer reads the refusal and closes; if it does not, cut it. Released on close.
    this.timer = setTimeout(() => this.conn.destroy(), REFUSE_LINGER_MS);
  }

  /** A bad frame (after authentication, or unreadable before it): count, log once, close. */
  private reject(err: FrameError): void {
    if (this.state === 'done') return;
    if (this.state !== 'open') {
      this.failHandshake(
        err.code ?? TransportErrorCode.MalformedFrame,
        err.message,
        err.code !== TransportErrorCode.FrameTooLarge,
      );
      return;
    }
    this.host.counters.framesRejected++;
    this.host.log.warn(
      `rejected a frame from ${this.peer} at ${this.conn.remoteAddress}: ${err.message} (${err.code}); closing the connection`,
    );
    this.finish();
  }

  private onClose(err?: Error): void {
    if (this.state === 'done') {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.release();
      return;
    }
    if (this.state === 'open') {
      if (err instanceof FrameError) {
        // The stream layer refused a frame itself (a WebSocket message over the limit).
        this.host.counters.framesRejected++;
        this.host.log.warn(
          `closed the connection from ${this.peer} at ${this.conn.remoteAddress}: ${err.message}`,
        );
      } else if (this.reader.pendingBytes > 0) {
        this.host.counters.framesRejected++;
        this.host.log.warn(
          `connection from ${this.peer} at ${this.conn.remoteAddress} closed inside a frame (truncated frame)`,
        );
      }
    } else {
      this.host.counters.handshakeFailures++;
      this.host.log.warn(
        `connection from ${this.conn.remoteAddress} closed before the handshake completed${err?.message ? `: ${err.message}` : ''}`,
      );
    }
    this.finish();
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.conn.destroy();
    this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.host.finished(this, !this.authed);
  }
}
