/**
 * A bare client of the wire protocol for tests: it dials through a transport's stream
 * layer and can send anything, well-formed or not, then report what the listener did.
 */

import {
  decodeHandshake,
  encodeAuth,
  encodeHello,
  encodeMessageFrame,
  FrameKind,
  FrameReader,
  freshNonce,
  type HandshakeFrame,
  handshakeProof,
  PROTOCOL_VERSION,
} from '@quorate/codec';
import type { Message, NodeId } from '@quorate/raft';
import type { Connection, StreamLayer } from '@quorate/transport-engine';

export interface HandshakeParams {
  readonly clusterId: string;
  readonly secret: Uint8Array;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly version?: number;
}

export class WireClient {
  private readonly reader = new FrameReader(1 << 20);
  private readonly frames: Buffer[] = [];
  private waiter: (() => void) | null = null;
  closed = false;
  /** The raw frames written, for replay. */
  readonly written: Buffer[] = [];

  private constructor(private readonly conn: Connection) {
    conn.attach({
      data: (chunk) => {
        try {
          this.frames.push(...this.reader.push(chunk));
        } catch {
          conn.destroy();
        }
        this.waiter?.();
      },
      drain: () => {},
      close: () => {
        this.closed = true;
        this.waiter?.();
      },
    });
  }

  static async dial(layer: StreamLayer, address: string, timeoutMs = 5000): Promise<WireClient> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      return new WireClient(await layer.dial(address, abort.signal));
    } finally {
      clearTimeout(timer);
    }
  }

  write(...frames: Buffer[]): void {
    this.written.push(...frames);
    this.conn.write(frames, () => {});
  }

  end(): void {
    this.conn.end();
  }

  destroy(): void {
    this.conn.destroy();
  }

  /** The next frame from the listener, or null once it closed (or at the deadline). */
  async next(timeoutMs = 5000): Promise<Buffer | null> {
    const deadline = performance.now() + timeoutMs;
    while (this.frames.length === 0 && !this.closed) {
      const left = deadline - performance.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.frames.shift() ?? null;
  }

  async nextHandshake(timeoutMs = 5000): Promise<HandshakeFrame | null> {
    const f = await this.next(timeoutMs);
    return f ? decodeHandshake(f) : null;
  }

  /** Wait until the listener closes the connection; false at the deadline. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed) {
      if ((await this.next(deadline - performance.now())) === null && !this.closed) return false;
    }
    return true;
  }

  /**
   * Run the initiator's side of the handshake with these (possibly wrong) parameters.
   * Resolves with the listener's last answer: WELCOME, REFUSE, or null (it just closed).
   */
  async handshake(p: HandshakeParams, opts: { replay?: Buffer[] } = {}): Promise<HandshakeFrame | null> {
    const nonce = freshNonce();
    const hello =
      opts.replay?.[0] ??
      encodeHello({
        version: p.version ?? PROTOCOL_VERSION,
        clusterId: p.clusterId,
        from: p.from,
        to: p.to,
        nonce,
      });
    this.write(hello);
    const challenge = await this.nextHandshake();
    if (challenge?.kind !== FrameKind.Challenge) return challenge;
    const auth =
      opts.replay?.[1] ??
      encodeAuth(
        handshakeProof(p.secret, 'initiator', {
          clusterId: p.clusterId,
          initiator: p.from,
          responder: p.to,
          initiatorNonce: nonce,
          responderNonce: challenge.nonce,
        }),
      );
    this.write(auth);
    return this.nextHandshake();
  }

  sendMessage(clusterId: string, m: Message): void {
    this.write(encodeMessageFrame(clusterId, m));
  }
}
