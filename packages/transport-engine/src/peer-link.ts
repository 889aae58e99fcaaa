/**
 * The one outbound connection to one peer, with its bounded queue. Opened on the first
 * message, re-opened after a failure with exponential backoff and jitter; while it is
 * down, messages are dropped and the peer reported unreachable rather than queued without
 * bound. Everything queued goes out in send order on this one connection.
 */

import {
  decodeHandshake,
  describeVersion,
  encodeAuth,
  encodeHello,
  FRAME_HEADER_BYTES,
  type FrameError,
  FrameKind,
  FrameReader,
  freshNonce,
  handshakeProof,
  type ProofInput,
  TransportErrorCode,
  verifyProof,
} from '@quorate/codec';
import type { NodeId } from '@quorate/raft';
import type { RateLimitedLog } from './log.js';
import { HANDSHAKE_MAX_FRAME_BYTES, type ResolvedOptions } from './options.js';
import type { Counters, LinkState, PeerStats } from './stats.js';
import type { Connection, StreamLayer } from './stream.js';

/** What a link needs from the transport that owns it. */
export interface LinkHost {
  readonly options: ResolvedOptions;
  /** The protocol version this end speaks in its HELLO and expects in the CHALLENGE. */
  readonly protocolVersion: number;
  readonly counters: Counters;
  readonly layer: StreamLayer;
  readonly log: RateLimitedLog;
  /** Flush this link on the next turn (writes are coalesced per turn). */
  scheduleFlush(link: PeerLink): void;
  /** Tell the handler, on the next turn, that `peer` could not be reached. */
  markUnreachable(peer: NodeId): void;
  /** When anything last arrived from `peer` (performance.now() ms; 0: never). */
  lastHeard(peer: NodeId): number;
}

/** What `close()` did with the messages still on their way. */
export interface LinkCloseResult {
  flushed: number;
  dropped: number;
}

const noop = () => {};

export class PeerLink {
  private state: LinkState = 'idle';
  private conn: Connection | null = null;
  /** Frames waiting for the connection; `head` is the next to write. */
  private queue: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private attempt = 0;
  private everOpened = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped whenever the connection is abandoned, so late callbacks of an old one do nothing. */
  private generation = 0;
  /** Messages written to the connection whose write has not completed. */
  private unacked = 0;
  private lastProgress = 0;
  /** When the current connection opened (performance.now() ms). */
  private openedAt = 0;
  private sent = 0;
  private sentBytes = 0;
  private dropped = 0;
  private reconnects = 0;
  private failedInARow = 0;
  private onClosed: (() => void) | null = null;
  private abortDial: AbortController | null = null;

  constructor(
    readonly peer: NodeId,
    readonly address: string,
    private readonly host: LinkHost,
  ) {}

  private get queueLength(): number {
    return this.queue.length - this.head;
  }

  /** Queue one frame for the peer, or drop it (and report the peer) when that cannot be done. */
  enqueue(frame: Buffer): void {
    const o = this.host.options;
    if (this.state === 'closed' || this.state === 'backoff') {
      this.drop(1);
      return;
    }
    if (this.queueLength >= o.maxQueueMessages || this.queuedBytes + frame.byteLength > o.maxQueueBytes) {
      this.drop(1);
      return;
    }
    this.queue.push(frame);
    this.queuedBytes += frame.byteLength;
    if (this.state === 'idle') this.connect();
    else if (this.state === 'open') this.host.scheduleFlush(this);
  }

  stats(): PeerStats {
    return {
      state: this.state,
      queuedMessages: this.queueLength,
      queuedBytes: this.queuedBytes,
      bufferedBytes: this.conn?.bufferedBytes ?? 0,
      messagesSent: this.sent,
      bytesSent: this.sentBytes,
      messagesReceived: 0,
      bytesReceived: 0,
      messagesDropped: this.dropped,
      reconnects: this.reconnects,
    };
  }

  private drop(n: number): void {
    this.host.counters.messagesDropped += n;
    this.dropped += n;
    this.host.markUnreachable(this.peer);
  }

  private dropQueue(): void {
    const n = this.queueLength;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    if (n > 0) this.drop(n);
    else this.host.markUnreachable(this.peer);
  }

  private connect(): void {
    const o = this.host.options;
    this.state = 'connecting';
    const gen = ++this.generation;
    const abort = new AbortController();
    this.abortDial = abort;
    this.timer = setTimeout(() => {
      if (gen === this.generation && this.state === 'connecting') {
        this.fail(`no connection to ${this.peer} at ${this.address} within ${o.connectTimeoutMs} ms`, true);
      }
    }, o.connectTimeoutMs);
    // The dial alone has a shorter deadline: a lost SYN is better dialled again than waited for.
    const dialTimer = setTimeout(
      () => {
        if (gen === this.generation && this.state === 'connecting' && this.abortDial === abort)
          this.fail(`no answer from ${this.peer} at ${this.address} within ${o.dialTimeoutMs} ms`, false);
      },
      Math.min(o.dialTimeoutMs, o.connectTimeoutMs),
    );
    this.host.layer.dial(this.address, abort.signal).then(
      (conn) => {
        clearTimeout(dialTimer);
        this.abortDial = null;
        if (gen !== this.generation || this.state !== 'connecting') conn.destroy();
        else this.handshake(conn, gen);
      },
      (err: Error) => {
        clearTimeout(dialTimer);
        if (gen === this.generation && this.state === 'connecting') {
          this.fail(
            `cannot connect to ${this.peer} at ${this.address}: ${err?.message ?? String(err)}`,
            false,
          );
        }
      },
    );
  }

  private handshake(conn: Connection, gen: number): void {
    const o = this.host.options;
    this.conn = conn;
    const reader = new FrameReader(HANDSHAKE_MAX_FRAME_BYTES);
    const nonce = freshNonce();
    let phase: 'challenge' | 'welcome' | 'open' = 'challenge';
    const data = (chunk: Buffer) => {
      if (gen !== this.generation) return;
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
        if (conn.messageFramed && reader.pendingBytes > 0) {
          this.fail(`${this.peer} at ${this.address} sent a truncated frame`, phase !== 'open');
          return;
        }
      } catch (err) {
        this.failFrame(err as FrameError, phase);
        return;
      }
      for (const f of frames) {
        if (phase === 'open') {
          // The responder has nothing to say once it has welcomed us.
          this.host.counters.framesRejected++;
          this.fail(`${this.peer} at ${this.address} sent data after the handshake; closing`, false);
          return;
        }
        let hs: ReturnType<typeof decodeHandshake>;
        try {
          hs = decodeHandshake(f, o.limits);
        } catch (err) {
          this.fail(`bad handshake from ${this.peer} at ${this.address}: ${(err as Error).message}`, true);
          return;
        }
        if (hs.kind === FrameKind.Refuse) {
          this.fail(
            `${this.peer} at ${this.address} refused the connection: ${hs.reason} (${hs.code})`,
            true,
          );
          return;
        }
        if (phase === 'challenge') {
          if (hs.kind !== FrameKind.Challenge) {
            this.fail(`${this.peer} at ${this.address} broke the handshake (expected CHALLENGE)`, true);
            return;
          }
          if (hs.version !== this.host.protocolVersion) {
            this.fail(
              `${this.peer} at ${this.address} speaks ${describeVersion(hs.version)}, this node ${describeVersion(this.host.protocolVersion)} (VERSION_MISMATCH)`,
              true,
            );
            return;
          }
          if (hs.clusterId !== o.clusterId) {
            this.fail(
              `${this.address} belongs to cluster ${JSON.stringify(hs.clusterId)}, not ${JSON.stringify(o.clusterId)}`,
              true,
            );
            return;
          }
          if (hs.from !== this.peer) {
            this.fail(
              `${this.address} answered as ${JSON.stringify(hs.from)}, expected ${this.peer}; check the peer addresses`,
              true,
            );
            return;
          }
          const input: ProofInput = {
            clusterId: o.clusterId,
            initiator: o.id,
            responder: this.peer,
            initiatorNonce: nonce,
            responderNonce: hs.nonce,
          };
          if (!verifyProof(o.secret, 'responder', input, hs.proof)) {
            this.fail(`${this.peer} at ${this.address} could not prove the cluster secret`, true);
            return;
          }
          conn.write([encodeAuth(handshakeProof(o.secret, 'initiator', input))], noop);
          phase = 'welcome';
        } else {
          if (hs.kind !== FrameKind.Welcome) {
            this.fail(`${this.peer} at ${this.address} broke the handshake (expected WELCOME)`, true);
            return;
          }
          phase = 'open';
          this.opened();
        }
      }
    };
    conn.attach({
      data,
      drain: () => {
        if (gen === this.generation && this.state === 'open') this.host.scheduleFlush(this);
      },
      close: (err) => {
        if (this.state === 'closed') {
          if (conn === this.conn) this.onClosed?.();
          return;
        }
        if (gen !== this.generation) return;
        const why = err?.message ? `: ${err.message}` : '';
        if (phase === 'open') this.fail(`connection to ${this.peer} at ${this.address} closed${why}`, false);
        else
          this.fail(`${this.peer} at ${this.address} closed the connection during the handshake${why}`, true);
      },
    });
    conn.write(
      [
        encodeHello({
          version: this.host.protocolVersion,
          clusterId: o.clusterId,
          from: o.id,
          to: this.peer,
          nonce,
        }),
      ],
      noop,
    );
  }

  private failFrame(err: FrameError, phase: string): void {
    if (phase === 'open') this.host.counters.framesRejected++;
    const tooLarge = err.code === TransportErrorCode.FrameTooLarge;
    this.fail(
      `${tooLarge ? 'oversized' : 'malformed'} frame from ${this.peer} at ${this.address}: ${err.message}`,
      phase !== 'open',
    );
  }

  private opened(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.state = 'open';
    this.attempt = 0;
    if (this.everOpened) {
      this.reconnects++;
      this.host.counters.reconnects++;
      this.host.log.info(`reconnected to ${this.peer} at ${this.address}`);
    } else if (this.failedInARow > 0) {
      this.host.log.info(`connected to ${this.peer} at ${this.address}`);
    }
    this.failedInARow = 0;
    this.everOpened = true;
    this.lastProgress = performance.now();
    this.openedAt = this.lastProgress;
    this.host.scheduleFlush(this);
  }

  /**
   * Abandon the connection (or the attempt): what is queued is dropped and the peer
   * reported; the next attempt waits out a backoff. Only the first failure in a row is
   * logged, so a peer that stays down costs one line, not one per retry.
   */
  private fail(reason: string, handshakeFailure: boolean): void {
    if (this.state === 'closed') return;
    this.generation++;
    if (handshakeFailure) this.host.counters.handshakeFailures++;
    if (this.failedInARow === 0 || handshakeFailure) this.host.log.warn(`${reason}; retrying with backoff`);
    this.failedInARow++;
    this.abortDial?.abort();
    this.abortDial = null;
    this.conn?.destroy();
    this.conn = null;
    this.unacked = 0;
    if (this.timer) clearTimeout(this.timer);
    this.dropQueue();
    this.state = 'backoff';
    const o = this.host.options;
    const ceiling = Math.min(o.backoffMaxMs, o.backoffInitialMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    // Equal jitter: at least half the ceiling, so retries spread out but never hammer.
    const delay = ceiling / 2 + o.random() * (ceiling / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state === 'backoff') this.state = 'idle';
    }, delay);
    this.timer.unref?.();
  }

  /** Hand queued frames to the connection: one write per batch, at most a frame's size each. */
  flush(force = false): void {
    if (this.state !== 'open' || !this.conn) return;
    const o = this.host.options;
    const conn = this.conn;
    const now = performance.now();
    const highWater = force ? Number.POSITIVE_INFINITY : o.writeHighWaterBytes;
    if (conn.bufferedBytes === 0) this.lastProgress = now;
    else if (!force && now - this.lastProgress > o.stallTimeoutMs) {
      this.fail(`${this.peer} at ${this.address} took no data for ${o.stallTimeoutMs} ms`, false);
      return;
    }
    if (!force && o.silenceTimeoutMs > 0) {
      const heard = Math.max(this.host.lastHeard(this.peer), this.openedAt);
      if (now - heard > o.silenceTimeoutMs) {
        this.fail(
          `nothing heard from ${this.peer} for ${Math.round(now - heard)} ms while sending to it; opening a new connection`,
          false,
        );
        return;
      }
    }
    const batchLimit = o.maxFrameBytes + FRAME_HEADER_BYTES;
    while (this.queueLength > 0 && conn.bufferedBytes < highWater) {
      const batch: Buffer[] = [];
      let bytes = 0;
      while (this.head < this.queue.length) {
        const f = this.queue[this.head]!;
        if (batch.length > 0 && bytes + f.byteLength > batchLimit) break;
        batch.push(f);
        bytes += f.byteLength;
        this.head++;
      }
      this.queuedBytes -= bytes;
      this.write(conn, batch, bytes);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private write(conn: Connection, batch: Buffer[], bytes: number): void {
    const n = batch.length;
    const gen = this.generation;
    this.unacked += n;
    this.sent += n;
    this.sentBytes += bytes;
    this.host.counters.messagesSent += n;
    this.host.counters.bytesSent += bytes;
    conn.write(batch, (err) => {
      if (gen !== this.generation) return;
      this.unacked -= n;
      if (!err) this.lastProgress = performance.now();
    });
  }

  /**
   * Stop: hand what is queued to an open connection and end it gracefully; whatever has
   * not reached the operating system by `deadline` is dropped and counted.
   */
  async close(deadlineMs: number): Promise<LinkCloseResult> {
    if (this.state === 'closed') return { flushed: 0, dropped: 0 };
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const conn = this.conn;
    if (this.state !== 'open' || !conn) {
      const dropped = this.queueLength;
      this.state = 'closed';
      this.generation++;
      this.abortDial?.abort();
      this.abortDial = null;
      this.conn?.destroy();
      this.conn = null;
      this.queue = [];
      this.head = 0;
      this.queuedBytes = 0;
      this.host.counters.messagesDropped += dropped;
      return { flushed: 0, dropped };
    }
    // Write everything, regardless of the high-water mark: the queue is bounded.
    this.flush(true);
    const inFlight = this.unacked;
    const closed = new Promise<void>((resolve) => {
      this.onClosed = resolve;
    });
    this.state = 'closed';
    conn.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    const dropped = timedOut ? this.unacked : 0;
    conn.destroy();
    this.conn = null;
    this.host.counters.messagesDropped += dropped;
    return { flushed: inFlight - dropped, dropped };
  }
}
