/**
 * What every phase of the fuzzer shares: its options and report, the seeded PRNG, hostile
 * and valid values, the oracles that say what the listener must accept, and the shape of a
 * shot (one connection's worth of frames).
 */
import {
  decodeHandshake,
  decodeSnapshotFrame,
  type EnvelopeContext,
  encodeSnapshotFrame,
  FRAME_HEADER_BYTES,
  FrameKind,
  isSnapshotFrameKind,
  messageFromEnvelope,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  SnapshotFrameKind,
  unpackPayload,
} from '@quorate/codec';
import type { Message, NodeId } from '@quorate/raft';
import { HANDSHAKE_MAX_FRAME_BYTES, MIN_FRAME_BYTES, type TransportStats } from '@quorate/transport-engine';
import { Packr } from 'msgpackr';

export interface FuzzOptions {
  /** Seed of the run. Default 0x5eed. */
  readonly seed?: number;
  /** Frames to throw in the measured round (at least). Default 200 000. */
  readonly frames?: number;
  /** Frames of the warm-up round, before the heap baseline. Default 20 000. */
  readonly warmupFrames?: number;
  /** Connections open at once. Default 24 (the listener allows 64 mid-handshake). */
  readonly concurrency?: number;
  /**
   * Largest acceptable growth of the listener's settled heap between the warm-up and the end.
   * Default 6 MiB: clean runs grow by well under 1 MiB, while keeping every closed inbound
   * connection (about 2 KiB of heap each) grows it by about 8 MiB over a default run.
   */
  readonly heapGrowthLimitBytes?: number;
  /** Where the figures go. Default `console.log`. */
  readonly log?: (line: string) => void;
}

export interface FuzzReport {
  readonly transport: string;
  /** Frames written in the measured round, and connections opened for them. */
  readonly frames: number;
  readonly connections: number;
  readonly preAuthConnections: number;
  readonly postAuthConnections: number;
  /** Valid messages in front of a bad frame that the listener delivered (all were checked). */
  readonly fuzzMessagesDelivered: number;
  /** Valid messages in front of an oversized header that the listener discarded with it. */
  readonly droppedBeforeOversized: number;
  readonly goodMessages: number;
  readonly durationMs: number;
  readonly heapBaselineBytes: number;
  readonly heapAfterBytes: number;
  /** Shots per kind, `pre:…` before the handshake and `post:…` after it. */
  readonly kinds: Readonly<Record<string, number>>;
  readonly before: TransportStats;
  readonly after: TransportStats;
}

export interface FuzzCase {
  readonly name: string;
  readonly timeoutMs: number;
  run(): Promise<void>;
}

export const CLUSTER = 'fuzz';
export const SECRET = 'fuzz-cluster-secret-0123456789';
export const LISTENER = 'listener';
export const GOOD = 'good';
/** The listener's frame limit: the smallest allowed, so oversized frames are cheap to send. */
export const MAX_FRAME = MIN_FRAME_BYTES;
/** What the listener accepts as a snapshot chunk (see `NetworkTransport.maxSnapshotChunkBytes`). */
export const MAX_CHUNK = Math.min(256 * 1024, MAX_FRAME - 1024);
/** Largest message-framed write the fuzzer makes after the handshake (the listener's limit is MAX_FRAME + 4). */
export const WRITE_GROUP_BYTES = 60 * 1024;
/** The listener's handshake deadline (its default): genuine fuzz handshakes must finish well within it. */
export const HANDSHAKE_TIMEOUT_MS = 5000;
/** Shots per round that send nothing, or half a HELLO, and wait for that deadline (in the background). */
export const SLOW_SHOTS = 6;
/** How long the listener may take to close a bad connection on a busy machine. */
export const CLOSE_DEADLINE_MS = 15_000;
/** Serial numbers per shot: a valid message's term is `shot * SERIALS + j + 1`. */
export const SERIALS = 1024;
/** Good-peer readRounds at or above this are forged ones, which must never be delivered. */
export const FORGED_ROUND = 1e12;
export const MiB = 1024 * 1024;

// ------------------------------------------------------------------------------ PRNG

/** sfc32, seeded through splitmix32 from (seed, stream). */
export class FuzzRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t0 = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    const t = (t0 + this.d) | 0;
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float(): number {
    return this.u32() / 2 ** 32;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.float() * xs.length)]!;
  }

  weighted<T extends string>(table: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of table) total += w;
    let x = this.float() * total;
    for (const [k, w] of table) {
      x -= w;
      if (x < 0) return k;
    }
    return table[table.length - 1]![0];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(this.u32(), i);
    for (; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

// ------------------------------------------------------------------------------ values

export const packr = new Packr({ useRecords: false, variableMapSize: true });
export const pack = (v: unknown): Buffer => packr.pack(v);

export function header(len: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32BE(len >>> 0, 0);
  return h;
}

export const WEIRD_NUMBERS = [
  -1,
  -(2 ** 31),
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  2 ** 53 - 1,
  1.5,
  -0.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.MAX_VALUE,
];
export const WEIRD_BIGINTS = [2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n + 1n];
export const WEIRD_STRINGS = [
  '',
  LISTENER,
  GOOD,
  CLUSTER,
  'fuzz-0',
  '\u0000',
  'x'.repeat(257),
  '\ud800',
  '🦀'.repeat(12),
  '__proto__',
  'constructor',
];

/** Any msgpack value msgpackr can pack. */
export function randomValue(r: FuzzRng, depth = 0): unknown {
  switch (r.int(0, depth > 3 ? 9 : 13)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.int(-300, 300);
    case 3:
      return r.pick(WEIRD_NUMBERS);
    case 4:
      return r.pick(WEIRD_BIGINTS);
    case 5:
      return r.bytes(r.int(0, 24)).toString('latin1');
    case 6:
      return r.pick(WEIRD_STRINGS);
    case 7:
      return r.bytes(r.int(0, 40));
    case 8:
      return r.bytes(NONCE_BYTES);
    case 9:
      return new Date(r.int(0, 2 ** 41));
    case 10:
      return Array.from({ length: r.int(0, 8) }, () => randomValue(r, depth + 1));
    case 11: {
      const m = new Map<unknown, unknown>();
      for (let i = r.int(0, 5); i > 0; i--) m.set(randomValue(r, depth + 2), randomValue(r, depth + 1));
      return m;
    }
    case 12:
      return [r.pick([FrameKind.Message, FrameKind.Hello, SnapshotFrameKind.Ack]), randomValue(r, depth + 1)];
    default:
      return [
        FrameKind.Message,
        PROTOCOL_VERSION,
        CLUSTER,
        r.pick(WEIRD_STRINGS),
        LISTENER,
        randomValue(r, 2),
      ];
  }
}

/** msgpack that lies: absurd lengths, reserved bytes, extension types, counts that do not match. */
export function hostileMsgpack(r: FuzzRng, out: number[], depth = 0): void {
  const be32 = (n: number) => out.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const bytes = (n: number) => {
    for (const b of r.bytes(n)) out.push(b);
  };
  const extTypes = [0x00, 0x42, 0x62, 0x65, 0x69, 0x70, 0x73, 0x74, 0x78, 0xff, 0x01, 0x7f];
  switch (r.int(0, depth > 4 ? 13 : 16)) {
    case 0:
      out.push(0xc1); // never used
      break;
    case 1: // array32 claiming billions of elements
      out.push(0xdd);
      be32(r.pick([0xffffffff, 0x7fffffff, 0x01000000, r.u32()]));
      bytes(r.int(0, 16));
      break;
    case 2: // map32 likewise
      out.push(0xdf);
      be32(r.pick([0xffffffff, 0x10000000, r.u32()]));
      bytes(r.int(0, 16));
      break;
    case 3: // str32 / bin32 longer than the frame
      out.push(r.pick([0xdb, 0xc6]));
      be32(r.pick([0xffffffff, 0x00100000, r.int(1, 5000)]));
      bytes(r.int(0, 32));
      break;
    case 4: {
      // ext8 with a random or interesting type
      const n = r.int(0, 40);
      out.push(0xc7, n, r.chance(0.7) ? r.pick(extTypes) : r.int(0, 255));
      bytes(n);
      break;
    }
    case 5: // fixext 1/2/4/8/16
      out.push(r.int(0xd4, 0xd8), r.chance(0.7) ? r.pick(extTypes) : r.int(0, 255));
      bytes([1, 2, 4, 8, 16][out[out.length - 2]! - 0xd4]!);
      break;
    case 6: {
      // ext32 claiming more than there is
      out.push(0xc9);
      be32(r.pick([0xffffffff, r.int(0, 100_000)]));
      out.push(r.pick(extTypes));
      bytes(r.int(0, 16));
      break;
    }
    case 7: {
      // deep nesting
      const n = r.int(50, 3000);
      for (let i = 0; i < n; i++) out.push(r.chance(0.9) ? 0x91 : 0x81);
      out.push(0xc0);
      break;
    }
    case 8:
      out.push(r.int(0, 255));
      break;
    case 9: // float64 with any bit pattern (NaN payloads), float32
      out.push(r.pick([0xcb, 0xca]));
      bytes(out[out.length - 1] === 0xcb ? 8 : 4);
      break;
    case 10: // 64-bit integers past the safe range
      out.push(r.pick([0xcf, 0xd3]));
      bytes(8);
      break;
    case 11: // str8 with invalid UTF-8
      out.push(0xd9, 12);
      for (let i = 0; i < 12; i++) out.push(r.pick([0xc0, 0xff, 0xed, 0xa0, 0x80, 0xf8, 0x41]));
      break;
    case 12: // a fixarray announcing more elements than follow
      out.push(0x9f);
      for (let i = r.int(0, 6); i > 0; i--) out.push(r.int(0, 0x7f));
      break;
    case 13: // fixmap with non-string and duplicate keys
      out.push(0x83, 0x01, 0xc0, 0x01, 0xc3, 0x90, 0xa1, 0x61);
      break;
    case 14: {
      // a fixarray of hostile children
      const n = r.int(0, 6);
      out.push(0x90 | n);
      for (let i = 0; i < n; i++) hostileMsgpack(r, out, depth + 1);
      break;
    }
    case 15: {
      // an envelope with a hostile message inside
      out.push(0x96, FrameKind.Message, PROTOCOL_VERSION);
      for (const s of [CLUSTER, 'fuzz-0', LISTENER]) {
        out.push(0xa0 | s.length);
        for (const ch of Buffer.from(s)) out.push(ch);
      }
      hostileMsgpack(r, out, depth + 1);
      break;
    }
    default: {
      // a map32 / array16 header, then random children
      const n = r.int(0, 5);
      out.push(0xdc, 0, n);
      for (let i = 0; i < n; i++) hostileMsgpack(r, out, depth + 1);
    }
  }
}

export function hostilePayload(r: FuzzRng, max: number): Buffer {
  const out: number[] = [];
  hostileMsgpack(r, out);
  if (r.chance(0.2)) hostileMsgpack(r, out); // trailing data after a value
  return Buffer.from(out.length > max ? out.slice(0, max) : out);
}

/** A value that is wrong at most positions of a message tuple. */
export function wrongValue(r: FuzzRng): unknown {
  return r.pick<unknown>([
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    2 ** 53,
    2n ** 63n,
    -(2n ** 63n),
    'x',
    '',
    true,
    null,
    new Uint8Array(3),
    [],
    [1, 2],
    new Map([[1, 2]]),
    new Date(0),
    'x'.repeat(300),
  ]);
}

export const nodeIdFor = (r: FuzzRng) => r.pick(['a', 'b', 'c', 'node-7', 'x'.repeat(40)]);

/** A valid message of any type whose term is `term` (≥ 1, unique per shot and position). */
export function validMessage(r: FuzzRng, from: NodeId, to: NodeId, term: number): Message {
  const u = () => r.int(0, 1_000_000);
  switch (r.int(0, 11)) {
    case 0: {
      const prevIndex = u();
      const prevTerm = r.int(0, term);
      let t = prevTerm;
      const entries = Array.from({ length: r.chance(0.4) ? r.int(1, 6) : 0 }, (_, i) => {
        t = Math.min(term, t + r.int(0, 1));
        return {
          index: prevIndex + 1 + i,
          term: t,
          type: r.chance(0.9) ? (0 as const) : (1 as const),
          data: r.bytes(r.int(0, 48)),
        };
      });
      return { type: 'append', from, to, term, prevIndex, prevTerm, commit: u(), entries };
    }
    case 1:
      return {
        type: 'appendResponse',
        from,
        to,
        term,
        reject: r.chance(0.5),
        index: u(),
        hintIndex: u(),
        hintTerm: u(),
      };
    case 2:
    case 3:
      return {
        type: r.chance(0.5) ? 'vote' : 'preVote',
        from,
        to,
        term,
        lastIndex: u(),
        lastTerm: u(),
        transfer: r.chance(0.2),
      };
    case 4:
    case 5:
      return {
        type: r.chance(0.5) ? 'voteResponse' : 'preVoteResponse',
        from,
        to,
        term,
        reject: r.chance(0.5),
      };
    case 6:
      return { type: 'heartbeat', from, to, term, commit: u(), readRound: u() };
    case 7:
      return { type: 'heartbeatResponse', from, to, term, readRound: u() };
    case 8:
      return {
        type: 'snapshot',
        from,
        to,
        term,
        snapshot: {
          index: u(),
          term: r.int(0, term),
          conf: {
            voters: Array.from({ length: r.int(1, 5) }, () => nodeIdFor(r)),
            learners: r.chance(0.3) ? [nodeIdFor(r)] : [],
            votersOutgoing: [],
          },
        },
      };
    case 9:
      return { type: 'timeoutNow', from, to, term };
    case 10:
      return { type: 'readIndex', from, to, term, requestId: u() };
    default:
      return { type: 'readIndexResponse', from, to, term, requestId: u(), index: u(), reject: r.chance(0.5) };
  }
}

/** A well-formed snapshot-stream frame that refers to no transfer: accepted, then ignored. */
export function idleSnapshotFrame(r: FuzzRng): Buffer {
  const sid = r.int(1_000_000, 2 ** 40);
  switch (r.int(0, 5)) {
    case 0:
      return encodeSnapshotFrame({ kind: SnapshotFrameKind.Ack, sid, seq: r.int(0, 1000) });
    case 5:
      return encodeSnapshotFrame({
        kind: SnapshotFrameKind.Resumed,
        sid,
        known: r.chance(0.5),
        next: r.int(0, 9),
        consumed: r.int(0, 9),
      });
    case 1:
      return encodeSnapshotFrame({ kind: SnapshotFrameKind.Done, sid, ok: r.chance(0.5), reason: 'fuzz' });
    case 2:
      return encodeSnapshotFrame({ kind: SnapshotFrameKind.Abort, sid, reason: 'fuzz' });
    case 3: {
      const data = new Uint8Array(r.bytes(r.int(0, 128)));
      return encodeSnapshotFrame({ kind: SnapshotFrameKind.Chunk, sid, seq: r.int(0, 9), data, crc: 0 });
    }
    default:
      return encodeSnapshotFrame({
        kind: SnapshotFrameKind.End,
        sid,
        chunks: r.int(0, 9),
        bytes: r.int(0, 1e6),
        sha256: new Uint8Array(r.bytes(32)),
      });
  }
}

// ------------------------------------------------------------------------------ oracles

/** What the listener does with this payload on an authenticated connection (same code, this process). */
export function acceptedAfterAuth(payload: Uint8Array, ctx: EnvelopeContext): boolean {
  if (payload.byteLength > MAX_FRAME) return false;
  return succeeds(() => {
    const t = unpackPayload(payload);
    if (Array.isArray(t) && isSnapshotFrameKind(t[0]))
      decodeSnapshotFrame(t, ctx.peer, ctx.local, ctx.limits, MAX_CHUNK);
    else messageFromEnvelope(t, ctx);
  });
}

/** Whether `f` returns without throwing; errors are expected here, so their stacks are not captured. */
export function succeeds(f: () => void): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    f();
    return true;
  } catch {
    return false;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Whether the listener would answer this first frame with a CHALLENGE. */
export function acceptedHello(payload: Uint8Array, peers: ReadonlySet<NodeId>): boolean {
  if (payload.byteLength > HANDSHAKE_MAX_FRAME_BYTES) return false;
  let ok = false;
  succeeds(() => {
    const h = decodeHandshake(payload);
    ok =
      h.kind === FrameKind.Hello &&
      h.version === PROTOCOL_VERSION &&
      h.clusterId === CLUSTER &&
      h.to === LISTENER &&
      peers.has(h.from);
  });
  return ok;
}

// ------------------------------------------------------------------------------ shots

export interface Expected {
  readonly term: number;
  readonly bytes: Buffer;
}

export interface Shot {
  readonly index: number;
  readonly label: string;
  /** Authenticate as the slot's member first. */
  readonly auth: boolean;
  /** Each inner list is one write (one system call, or one WebSocket message). */
  readonly writes: Buffer[][];
  readonly frames: number;
  /** Valid messages in front of the bad frame: delivered, in order, exactly as sent. */
  readonly expected: Expected[];
  /** `expected` may be cut short (an oversized header discards what came in the same read). */
  readonly prefixOnly: boolean;
  /** Terms / forged rounds of messages that must never be delivered. */
  readonly forbidden: number[];
  /** Half-close after writing: a byte stream that stops inside a frame. */
  readonly end: boolean;
  /** Sends nothing (or half a frame): the listener's handshake timeout must close it. */
  readonly slow: boolean;
}

/** Cut `b` at random points into 1–4 writes (a byte stream must reassemble frames). */
export function splitBytes(r: FuzzRng, b: Buffer): Buffer[][] {
  if (b.byteLength < 2 || r.chance(0.4)) return [[b]];
  const cuts = new Set<number>();
  for (let i = r.int(1, 3); i > 0; i--) cuts.add(r.int(1, b.byteLength - 1));
  const at = [0, ...[...cuts].sort((x, y) => x - y), b.byteLength];
  const out: Buffer[][] = [];
  for (let i = 1; i < at.length; i++) out.push([b.subarray(at[i - 1], at[i])]);
  return out;
}

/** Whole frames grouped into writes of at most `limit` bytes (a larger frame goes alone). */
export function group(frames: readonly Buffer[], limit: number): Buffer[][] {
  const out: Buffer[][] = [];
  let cur: Buffer[] = [];
  let size = 0;
  for (const f of frames) {
    if (cur.length > 0 && size + f.byteLength > limit) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(f);
    size += f.byteLength;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export interface BuildContext {
  readonly seed: number;
  readonly slot: NodeId;
  /** The listener's connections are message-framed (WebSocket). */
  readonly framed: boolean;
  readonly peers: ReadonlySet<NodeId>;
  /** Idle snapshot-stream frames of this round (they need not be unique, so they are made once). */
  readonly idle: readonly Buffer[];
}

export function serialBase(index: number): number {
  return index * SERIALS;
}

/** Idle snapshot-stream frames made once per round (they need not be unique). */
export const IDLE_POOL = 512;
