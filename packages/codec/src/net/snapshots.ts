/**
 * Snapshot transfers over a `NetworkTransport`'s connections (the frames are described in
 * `wire/snapshot-frames.ts`).
 *
 * Sending: the data is cut into chunks under the frame limit; at most `WINDOW` chunks are
 * ever ahead of what the receiver acknowledged as consumed, so memory stays bounded on
 * both ends and a slow disk at the receiver slows the sender down (flow control). The
 * transfer fails — and the runtime retries it from the start — when the receiver reports
 * a failure, when nothing moves for `stallTimeoutMs`, or when the link to the receiver
 * breaks.
 *
 * Receiving: one transfer per sender at a time; chunks must come in order with a valid
 * CRC-32, and the END frame's count, size and SHA-256 must match, before the iteration
 * handed to `onSnapshot` completes. Anything else makes that iteration throw, so the store
 * discards what it wrote and the previous state stays.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { NodeId, TransportHandler } from '@quorate/raft';
import { TransportError, TransportErrorCode } from '../errors.js';
import {
  encodeSnapshotFrame,
  type SnapshotFrame,
  SnapshotFrameKind,
  type SnapshotMessage,
} from '../wire/snapshot-frames.js';
import type { RateLimitedLog } from './log.js';

/** Chunks in flight beyond the receiver's last acknowledgement. */
export const SNAPSHOT_WINDOW = 8;

export interface SnapshotHost {
  readonly id: NodeId;
  readonly log: RateLimitedLog;
  readonly stallTimeoutMs: number;
  /** Queue a frame to `peer` on the outbound link; false when there is no link to it. */
  sendFrame(peer: NodeId, frame: Buffer): boolean;
  handler(): TransportHandler | null;
}

interface Outgoing {
  readonly sid: number;
  readonly to: NodeId;
  acked: number;
  wake: (() => void) | null;
  failure: Error | null;
  done: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> };
  timer: ReturnType<typeof setTimeout> | null;
}

interface Incoming {
  readonly sid: number;
  readonly from: NodeId;
  readonly chunks: Uint8Array[];
  next: number;
  bytes: number;
  readonly hash: ReturnType<typeof createHash>;
  ended: boolean;
  failure: Error | null;
  wake: (() => void) | null;
  timer: ReturnType<typeof setTimeout> | null;
}

function deferred(): Outgoing['done'] {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { resolve, reject, promise };
}

const failed = (why: string) => new TransportError(TransportErrorCode.Closed, why);

export class SnapshotStreams {
  private nextSid = 1;
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<NodeId, Incoming>();

  constructor(
    private readonly host: SnapshotHost,
    private readonly chunkBytes: number,
  ) {}

  // ------------------------------------------------------------------ sending

  async send(msg: SnapshotMessage, data: AsyncIterable<Uint8Array>): Promise<void> {
    const o: Outgoing = {
      sid: this.nextSid++,
      to: msg.to,
      acked: -1,
      wake: null,
      failure: null,
      done: deferred(),
      timer: null,
    };
    this.outgoing.set(o.sid, o);
    const put = (f: SnapshotFrame) => {
      if (!this.host.sendFrame(o.to, encodeSnapshotFrame(f))) throw failed(`no link to ${o.to}`);
    };
    try {
      this.arm(o);
      put({ kind: SnapshotFrameKind.Begin, sid: o.sid, msg });
      const sha = createHash('sha256');
      let seq = 0;
      let bytes = 0;
      for await (const piece of rechunk(data, this.chunkBytes)) {
        while (seq - o.acked > SNAPSHOT_WINDOW && !o.failure) {
          await new Promise<void>((r) => {
            o.wake = r;
          });
        }
        if (o.failure) throw o.failure;
        sha.update(piece);
        bytes += piece.byteLength;
        put({ kind: SnapshotFrameKind.Chunk, sid: o.sid, seq, data: piece, crc: crc32(piece) });
        seq++;
      }
      if (o.failure) throw o.failure;
      put({ kind: SnapshotFrameKind.End, sid: o.sid, chunks: seq, bytes, sha256: sha.digest() });
      await o.done.promise;
    } catch (err) {
      const e = o.failure ?? (err as Error);
      if (!o.failure) {
        try {
          put({ kind: SnapshotFrameKind.Abort, sid: o.sid, reason: e.message });
        } catch {
          // no link: the receiver times out on its own
        }
      }
      throw e;
    } finally {
      if (o.timer) clearTimeout(o.timer);
      this.outgoing.delete(o.sid);
    }
  }

  /** (Re)start the stall timer of a transfer: it fails if nothing moves for the timeout. */
  private arm(o: Outgoing): void {
    if (o.timer) clearTimeout(o.timer);
    o.timer = setTimeout(
      () => this.failOutgoing(o, `no progress from ${o.to} for ${this.host.stallTimeoutMs} ms`),
      this.host.stallTimeoutMs,
    );
  }

  private failOutgoing(o: Outgoing, why: string): void {
    if (o.failure) return;
    o.failure = failed(`snapshot to ${o.to} failed: ${why}`);
    o.done.reject(o.failure);
    o.wake?.();
    o.wake = null;
  }

  /** The link to `peer` broke: its transfers cannot finish. */
  peerLost(peer: NodeId, why: string): void {
    for (const o of this.outgoing.values()) if (o.to === peer) this.failOutgoing(o, why);
  }

  // ------------------------------------------------------------------ frames

  onFrame(peer: NodeId, f: SnapshotFrame): void {
    switch (f.kind) {
      case SnapshotFrameKind.Ack: {
        const o = this.outgoing.get(f.sid);
        if (!o || o.to !== peer) return;
        if (f.seq > o.acked) o.acked = f.seq;
        this.arm(o);
        o.wake?.();
        o.wake = null;
        return;
      }
      case SnapshotFrameKind.Done: {
        const o = this.outgoing.get(f.sid);
        if (!o || o.to !== peer) return;
        if (f.ok) o.done.resolve();
        else this.failOutgoing(o, `${peer} could not store it: ${f.reason}`);
        return;
      }
      case SnapshotFrameKind.Begin:
        this.begin(peer, f.sid, f.msg);
        return;
      default:
        this.onData(peer, f);
    }
  }

  private begin(peer: NodeId, sid: number, msg: SnapshotMessage): void {
    const old = this.incoming.get(peer);
    if (old) this.failIncoming(old, 'superseded by a newer transfer from the same sender');
    const h = this.host.handler();
    const reply = (ok: boolean, reason: string) =>
      this.host.sendFrame(peer, encodeSnapshotFrame({ kind: SnapshotFrameKind.Done, sid, ok, reason }));
    if (!h?.onSnapshot) {
      reply(false, `${this.host.id} does not take snapshots`);
      return;
    }
    const inc: Incoming = {
      sid,
      from: peer,
      chunks: [],
      next: 0,
      bytes: 0,
      hash: createHash('sha256'),
      ended: false,
      failure: null,
      wake: null,
      timer: null,
    };
    this.incoming.set(peer, inc);
    this.rearm(inc);
    let consumed = -1;
    const self = this;
    const data: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        return {
          async next(): Promise<IteratorResult<Uint8Array>> {
            for (;;) {
              if (inc.failure) throw inc.failure;
              const c = inc.chunks.shift();
              if (c) {
                consumed++;
                self.host.sendFrame(
                  peer,
                  encodeSnapshotFrame({ kind: SnapshotFrameKind.Ack, sid, seq: consumed }),
                );
                return { value: c, done: false };
              }
              if (inc.ended) return { value: undefined, done: true };
              await new Promise<void>((r) => {
                inc.wake = r;
              });
            }
          },
        };
      },
    };
    void Promise.resolve()
      .then(() => h.onSnapshot!(msg, data))
      .then(
        () => reply(true, ''),
        (err: unknown) => {
          this.failIncoming(inc, 'the receiver gave up');
          reply(false, String((err as Error)?.message ?? err).slice(0, 300));
        },
      )
      .finally(() => {
        if (inc.timer) clearTimeout(inc.timer);
        if (this.incoming.get(peer) === inc) this.incoming.delete(peer);
      });
  }

  private onData(peer: NodeId, f: SnapshotFrame): void {
    const inc = this.incoming.get(peer);
    if (!inc || inc.sid !== f.sid || inc.failure || inc.ended) return;
    this.rearm(inc);
    if (f.kind === SnapshotFrameKind.Abort) {
      this.failIncoming(inc, `the sender aborted: ${f.reason}`);
      return;
    }
    const problem = this.take(inc, f);
    if (problem) {
      this.failIncoming(inc, problem);
      return;
    }
    inc.wake?.();
    inc.wake = null;
  }

  /** Take a CHUNK or END into the transfer; what is wrong with it, if anything. */
  private take(inc: Incoming, f: SnapshotFrame): string | null {
    if (f.kind === SnapshotFrameKind.Chunk) {
      if (f.seq !== inc.next) return `chunk ${f.seq} arrived, ${inc.next} expected`;
      if (crc32(f.data) !== f.crc) return `chunk ${f.seq} fails its CRC-32`;
      if (inc.chunks.length > SNAPSHOT_WINDOW + 1) return 'the sender ignored flow control';
      inc.next++;
      inc.bytes += f.data.byteLength;
      inc.hash.update(f.data);
      inc.chunks.push(f.data);
    } else if (f.kind === SnapshotFrameKind.End) {
      if (f.chunks !== inc.next || f.bytes !== inc.bytes) {
        return `END says ${f.chunks} chunks / ${f.bytes} bytes, got ${inc.next} / ${inc.bytes}`;
      }
      if (!inc.hash.digest().equals(f.sha256)) return 'the data fails its SHA-256';
      inc.ended = true;
    }
    return null;
  }

  private rearm(inc: Incoming): void {
    if (inc.timer) clearTimeout(inc.timer);
    inc.timer = setTimeout(
      () => this.failIncoming(inc, `nothing from ${inc.from} for ${this.host.stallTimeoutMs} ms`),
      this.host.stallTimeoutMs,
    );
  }

  private failIncoming(inc: Incoming, why: string): void {
    if (inc.failure) return;
    inc.failure = failed(`snapshot from ${inc.from}: ${why}`);
    this.host.log.warn(inc.failure.message);
    if (inc.timer) clearTimeout(inc.timer);
    inc.wake?.();
    inc.wake = null;
  }

  /** The connection from `peer` closed: a transfer from it cannot complete. */
  senderLost(peer: NodeId): void {
    const inc = this.incoming.get(peer);
    if (inc && !inc.ended) this.failIncoming(inc, 'its connection closed');
  }

  /** Transport shutdown: every transfer fails now. */
  closeAll(): void {
    for (const o of this.outgoing.values()) this.failOutgoing(o, 'the transport is closing');
    for (const inc of this.incoming.values()) this.failIncoming(inc, 'the transport is closing');
  }
}

/** Re-cut a byte stream into pieces of exactly `size` bytes (the last one shorter). */
async function* rechunk(data: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let buf: Uint8Array[] = [];
  let have = 0;
  for await (const c of data) {
    let at = 0;
    while (at < c.byteLength) {
      const take = Math.min(size - have, c.byteLength - at);
      buf.push(c.subarray(at, at + take));
      have += take;
      at += take;
      if (have === size) {
        yield concat(buf, have);
        buf = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield concat(buf, have);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
