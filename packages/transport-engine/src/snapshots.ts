/**
 * Snapshot transfers over a `NetworkTransport`'s connections (the frames are described in
 * `wire/snapshot-frames.ts`).
 *
 * Sending: the data is cut into chunks under the frame limit; at most `WINDOW` chunks are
 * ever ahead of what the receiver acknowledged as consumed, so memory stays bounded on
 * both ends and a slow disk at the receiver slows the sender down (flow control). The
 * sender keeps those unacknowledged chunks (encoded, as sent), so a broken connection does
 * not cost the transfer: once the link is back it asks the receiver where it is (RESUME)
 * and resends from the chunk the receiver names. It does the same when it has waited a
 * while without hearing anything (an ACK may have been lost on the way back). The
 * transfer fails, and the runtime retries it from the start, when the receiver reports a
 * failure, when the receiver no longer knows it (it restarted), or when nothing moves for
 * `stallTimeoutMs`.
 *
 * Receiving: one transfer per sender at a time; chunks are taken strictly in order with a
 * valid CRC-32 (a repeated chunk is ignored; a chunk past a gap makes the receiver ask for
 * the missing one), and the END frame's count, size and SHA-256 must match, before the
 * iteration handed to `onSnapshot` completes. A broken connection from the sender leaves
 * the transfer waiting for it for up to `stallTimeoutMs`. Anything else makes that
 * iteration throw, so the store discards what it wrote and the previous state stays.
 */
import { createHash, randomInt } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  encodeSnapshotFrame,
  type SnapshotFrame,
  SnapshotFrameKind,
  type SnapshotMessage,
  TransportError,
  TransportErrorCode,
} from '@quorate/codec';
import type { NodeId } from '@quorate/raft';
import type { RateLimitedLog } from './log.js';

/** Stores a snapshot's data; resolves once stored (see `TransportHandler.onSnapshot`). */
export type SnapshotReceiver = (msg: SnapshotMessage, data: AsyncIterable<Uint8Array>) => Promise<void>;

/** Chunks in flight beyond the receiver's last acknowledgement. */
export const SNAPSHOT_WINDOW = 8;

export interface SnapshotHost {
  readonly id: NodeId;
  readonly log: RateLimitedLog;
  readonly stallTimeoutMs: number;
  /** Queue a frame to `peer` on the outbound link; false when there is no link to it. */
  sendFrame(peer: NodeId, frame: Buffer): boolean;
  /**
   * Who stores an incoming snapshot (of `group`, on a multi-group connection), or null
   * when nobody takes snapshots here.
   */
  receiver(group: number | undefined): SnapshotReceiver | null;
}

interface Outgoing {
  readonly sid: number;
  readonly to: NodeId;
  /** The BEGIN frame, resent if the receiver never saw it. */
  readonly begin: Buffer;
  /** CHUNK frames past the receiver's last ACK, oldest first: what a resume may resend. */
  readonly unacked: { seq: number; frame: Buffer }[];
  /** The END frame, once sent. */
  end: Buffer | null;
  acked: number;
  /** The link broke or dropped frames since the receiver last said where it is. */
  lost: boolean;
  /** When a frame of this transfer last came from the receiver (performance.now()). */
  heardAt: number;
  wake: (() => void) | null;
  failure: Error | null;
  done: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> };
  timer: ReturnType<typeof setTimeout> | null;
  probe: ReturnType<typeof setInterval> | null;
}

interface Incoming {
  readonly sid: number;
  readonly from: NodeId;
  readonly chunks: Uint8Array[];
  next: number;
  /** Chunks handed to the store (and acknowledged). */
  consumed: number;
  bytes: number;
  readonly hash: ReturnType<typeof createHash>;
  ended: boolean;
  failure: Error | null;
  /** The `next` this receiver last asked the sender to resend from (asked once per gap). */
  askedFrom: number;
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
  /**
   * Transfer ids start at a random point, so a RESUME from a restarted sender cannot be
   * mistaken for one of its previous life's transfers.
   */
  private nextSid = randomInt(1, 2 ** 40);
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<NodeId, Incoming>();
  /** How each sender's last transfer ended here, to answer a RESUME whose DONE was lost. */
  private readonly finished = new Map<NodeId, { sid: number; ok: boolean; reason: string }>();
  /** How often a transfer whose link broke asks the receiver where it is. */
  private readonly probeMs: number;
  /**
   * How long a waiting sender goes without word from the receiver before it asks anyway
   * (an ACK or DONE may have been lost with the receiver's connection).
   */
  private readonly quietMs: number;

  constructor(
    private readonly host: SnapshotHost,
    private readonly chunkBytes: number,
  ) {
    this.probeMs = Math.min(250, Math.max(10, Math.floor(host.stallTimeoutMs / 20)));
    this.quietMs = Math.max(this.probeMs, Math.floor(host.stallTimeoutMs / 4));
  }

  // ------------------------------------------------------------------ sending

  /** Stream a snapshot (of `group`, on a multi-group connection) to `msg.to`. */
  async send(msg: SnapshotMessage, data: AsyncIterable<Uint8Array>, group?: number): Promise<void> {
    const sid = this.nextSid++;
    const o: Outgoing = {
      sid,
      to: msg.to,
      begin: encodeSnapshotFrame(
        group === undefined
          ? { kind: SnapshotFrameKind.Begin, sid, msg }
          : { kind: SnapshotFrameKind.Begin, sid, msg, group },
      ),
      unacked: [],
      end: null,
      acked: -1,
      lost: false,
      heardAt: performance.now(),
      wake: null,
      failure: null,
      done: deferred(),
      timer: null,
      probe: null,
    };
    this.outgoing.set(o.sid, o);
    const put = (frame: Buffer) => {
      if (!this.host.sendFrame(o.to, frame)) throw failed(`no link to ${o.to}`);
    };
    try {
      this.arm(o);
      o.probe = setInterval(() => this.probe(o), this.probeMs);
      put(o.begin);
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
        const frame = encodeSnapshotFrame({
          kind: SnapshotFrameKind.Chunk,
          sid,
          seq,
          data: piece,
          crc: crc32(piece),
        });
        o.unacked.push({ seq, frame });
        put(frame);
        seq++;
      }
      if (o.failure) throw o.failure;
      o.end = encodeSnapshotFrame({
        kind: SnapshotFrameKind.End,
        sid,
        chunks: seq,
        bytes,
        sha256: sha.digest(),
      });
      put(o.end);
      await o.done.promise;
    } catch (err) {
      const e = o.failure ?? (err as Error);
      if (!o.failure) {
        try {
          put(encodeSnapshotFrame({ kind: SnapshotFrameKind.Abort, sid, reason: e.message }));
        } catch {
          // no link: the receiver times out on its own
        }
      }
      throw e;
    } finally {
      if (o.timer) clearTimeout(o.timer);
      if (o.probe) clearInterval(o.probe);
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

  /**
   * Ask the receiver where it is when the link broke, or when this sender is waiting (for
   * window room or for DONE) and has heard nothing for a while.
   */
  private probe(o: Outgoing): void {
    if (o.failure) return;
    const waiting = o.wake !== null || o.end !== null;
    if (!o.lost && !(waiting && performance.now() - o.heardAt >= this.quietMs)) return;
    this.host.sendFrame(o.to, encodeSnapshotFrame({ kind: SnapshotFrameKind.Resume, sid: o.sid }));
  }

  private failOutgoing(o: Outgoing, why: string): void {
    if (o.failure) return;
    o.failure = failed(`snapshot to ${o.to} failed: ${why}`);
    o.done.reject(o.failure);
    o.wake?.();
    o.wake = null;
  }

  /** The receiver has consumed chunks up to `seq`: forget them and make window room. */
  private acknowledged(o: Outgoing, seq: number): boolean {
    if (seq <= o.acked) return false;
    o.acked = seq;
    let drop = 0;
    while (drop < o.unacked.length && o.unacked[drop]!.seq <= seq) drop++;
    o.unacked.splice(0, drop);
    o.wake?.();
    o.wake = null;
    return true;
  }

  /**
   * The link to `peer` broke or dropped frames: its transfers ask where the receiver is
   * once the link is back, and resend from there.
   */
  peerLost(peer: NodeId): void {
    for (const o of this.outgoing.values()) if (o.to === peer) o.lost = true;
  }

  private resumed(o: Outgoing, f: Extract<SnapshotFrame, { kind: typeof SnapshotFrameKind.Resumed }>): void {
    const resend = (frame: Buffer) => this.host.sendFrame(o.to, frame);
    if (!f.known) {
      // The receiver never saw BEGIN (lost with a connection) or restarted. Starting over
      // is possible only while this sender still holds every chunk from the first one.
      if (o.acked >= 0 || (o.unacked[0] !== undefined && o.unacked[0].seq !== 0)) {
        this.failOutgoing(o, `${o.to} no longer has the transfer (it restarted or gave up)`);
        return;
      }
      o.lost = false;
      resend(o.begin);
      for (const u of o.unacked) resend(u.frame);
      if (o.end) resend(o.end);
      return;
    }
    o.lost = false;
    const progressed = this.acknowledged(o, f.consumed - 1);
    // Everything sent has been consumed: the receiver is committing it to its store, which
    // may take a while for a large snapshot. That is progress too.
    const storing = o.end !== null && o.unacked.length === 0;
    if (progressed || storing) this.arm(o);
    for (const u of o.unacked) if (u.seq >= f.next) resend(u.frame);
    if (o.end) resend(o.end);
  }

  // ------------------------------------------------------------------ frames

  onFrame(peer: NodeId, f: SnapshotFrame): void {
    switch (f.kind) {
      case SnapshotFrameKind.Ack: {
        const o = this.outgoing.get(f.sid);
        if (!o || o.to !== peer) return;
        o.heardAt = performance.now();
        this.acknowledged(o, f.seq);
        this.arm(o);
        return;
      }
      case SnapshotFrameKind.Done: {
        const o = this.outgoing.get(f.sid);
        if (!o || o.to !== peer) return;
        if (f.ok) o.done.resolve();
        else this.failOutgoing(o, `${peer} could not store it: ${f.reason}`);
        return;
      }
      case SnapshotFrameKind.Resumed: {
        const o = this.outgoing.get(f.sid);
        if (!o || o.to !== peer || o.failure) return;
        o.heardAt = performance.now();
        this.resumed(o, f);
        return;
      }
      case SnapshotFrameKind.Begin:
        this.begin(peer, f.sid, f.msg, f.group);
        return;
      case SnapshotFrameKind.Resume:
        this.onResume(peer, f.sid);
        return;
      default:
        this.onData(peer, f);
    }
  }

  private reply(peer: NodeId, f: SnapshotFrame): void {
    this.host.sendFrame(peer, encodeSnapshotFrame(f));
  }

  private begin(peer: NodeId, sid: number, msg: SnapshotMessage, group: number | undefined): void {
    const old = this.incoming.get(peer);
    if (old) this.failIncoming(old, 'superseded by a newer transfer from the same sender');
    this.finished.delete(peer);
    const receive = this.host.receiver(group);
    const finish = (ok: boolean, reason: string) => {
      this.finished.set(peer, { sid, ok, reason });
      this.reply(peer, { kind: SnapshotFrameKind.Done, sid, ok, reason });
    };
    if (!receive) {
      finish(
        false,
        `${this.host.id} does not take snapshots${group === undefined ? '' : ` for group ${group}`}`,
      );
      return;
    }
    const inc: Incoming = {
      sid,
      from: peer,
      chunks: [],
      next: 0,
      consumed: 0,
      bytes: 0,
      hash: createHash('sha256'),
      ended: false,
      failure: null,
      askedFrom: -1,
      wake: null,
      timer: null,
    };
    this.incoming.set(peer, inc);
    this.rearm(inc);
    const self = this;
    const data: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        return {
          async next(): Promise<IteratorResult<Uint8Array>> {
            for (;;) {
              if (inc.failure) throw inc.failure;
              const c = inc.chunks.shift();
              if (c) {
                self.reply(peer, { kind: SnapshotFrameKind.Ack, sid, seq: inc.consumed++ });
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
      .then(() => receive(msg, data))
      .then(
        () => finish(true, ''),
        (err: unknown) => {
          this.failIncoming(inc, 'the receiver gave up');
          finish(false, String((err as Error)?.message ?? err).slice(0, 300));
        },
      )
      .finally(() => {
        if (inc.timer) clearTimeout(inc.timer);
        if (this.incoming.get(peer) === inc) this.incoming.delete(peer);
      });
  }

  /** The sender asks where this receiver is in transfer `sid`. */
  private onResume(peer: NodeId, sid: number): void {
    const inc = this.incoming.get(peer);
    if (inc && inc.sid === sid && !inc.failure) {
      this.rearm(inc);
      inc.askedFrom = inc.next;
      this.reply(peer, {
        kind: SnapshotFrameKind.Resumed,
        sid,
        known: true,
        next: inc.next,
        consumed: inc.consumed,
      });
      return;
    }
    const fin = this.finished.get(peer);
    if (fin && fin.sid === sid) {
      this.reply(peer, { kind: SnapshotFrameKind.Done, sid, ok: fin.ok, reason: fin.reason });
      return;
    }
    this.reply(peer, { kind: SnapshotFrameKind.Resumed, sid, known: false, next: 0, consumed: 0 });
  }

  private onData(peer: NodeId, f: SnapshotFrame): void {
    const inc = this.incoming.get(peer);
    if (!inc || inc.sid !== f.sid || inc.failure || inc.ended) return;
    this.rearm(inc);
    if (f.kind === SnapshotFrameKind.Abort) {
      this.failIncoming(inc, `the sender aborted: ${f.reason}`);
      return;
    }
    const ahead =
      (f.kind === SnapshotFrameKind.Chunk && f.seq > inc.next) ||
      (f.kind === SnapshotFrameKind.End && f.chunks > inc.next);
    if (ahead) {
      // Frames were lost (a connection broke or a queue overflowed): ask, once per gap,
      // for what is missing; what arrives past the gap is resent after it.
      if (inc.askedFrom !== inc.next) {
        inc.askedFrom = inc.next;
        this.reply(peer, {
          kind: SnapshotFrameKind.Resumed,
          sid: inc.sid,
          known: true,
          next: inc.next,
          consumed: inc.consumed,
        });
      }
      return;
    }
    if (f.kind === SnapshotFrameKind.Chunk && f.seq < inc.next) return; // resent: already here
    const problem = this.take(inc, f);
    if (problem) {
      this.failIncoming(inc, problem);
      return;
    }
    inc.wake?.();
    inc.wake = null;
  }

  /** Take the next CHUNK, or the END, into the transfer; what is wrong with it, if anything. */
  private take(inc: Incoming, f: SnapshotFrame): string | null {
    if (f.kind === SnapshotFrameKind.Chunk) {
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

  /**
   * The connection from `peer` closed. A transfer from it waits for the sender to come
   * back and resume; its stall timer fails it if the sender does not.
   */
  senderLost(peer: NodeId): void {
    const inc = this.incoming.get(peer);
    if (inc && !inc.ended && !inc.failure) {
      this.host.log.info(
        `the connection from ${peer} closed mid-snapshot (chunk ${inc.next}); waiting up to ${this.host.stallTimeoutMs} ms for it to resume`,
      );
    }
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
