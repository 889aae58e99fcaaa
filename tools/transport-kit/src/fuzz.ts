/**
 * A fuzz run against a live listener, for any `TransportKit`: the listener is a member in
 * its own process; a well-behaved peer (in this process) keeps sending it numbered
 * messages; meanwhile at least 200 000 frames are thrown at it over many concurrent
 * connections: random bytes, truncated and oversized frames, valid msgpack of the wrong
 * shape, type, cluster or version before the handshake, and after a genuine one (with the
 * cluster secret) schema-breaking messages and snapshot-stream frames.
 *
 * The transport closes a connection at its first bad frame, so each connection ("shot")
 * carries one bad frame, after the handshake behind a burst of well-formed frames, and is
 * often followed by a few more that must never be delivered. A shot's frames are a function
 * of the seed and its index (and of the member id its connection claims, and of the
 * handshake nonces).
 *
 * Checked: every good-peer message arrives, in order, and nothing is invented; the valid
 * messages in front of each bad frame arrive exactly as sent, and nothing after a bad frame
 * (or on a connection that never authenticated) ever does; the listener closes every bad
 * connection by itself (except byte streams that stop inside a frame, which the fuzzer
 * half-closes), counts each exactly once, and is alive and serving at the end, with its
 * settled heap (V8 `heapUsed` after gc: Buffer contents are not in it, their JS objects
 * are) within a bound of its value after a warm-up round.
 */

import {
  decodeHandshake,
  decodeSnapshotFrame,
  defaultWireLimits,
  type EnvelopeContext,
  encodeAuth,
  encodeChallenge,
  encodeHello,
  encodeMessageFrame,
  encodeRefuse,
  encodeSnapshotFrame,
  encodeWelcome,
  FRAME_HEADER_BYTES,
  FrameKind,
  FrameReader,
  frame,
  isSnapshotFrameKind,
  messageFromEnvelope,
  messageToTuple,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  SnapshotFrameKind,
  secretBytes,
  unpackPayload,
} from '@quorate/codec';
import type { Message, NodeId } from '@quorate/raft';
import {
  HANDSHAKE_MAX_FRAME_BYTES,
  MIN_FRAME_BYTES,
  type NetworkTransport,
  type StreamLayer,
  type TransportStats,
} from '@quorate/transport-engine';
import { Packr } from 'msgpackr';
import type { TransportKit } from './config.js';
import { MemberProcess } from './member-process.js';
import { waitUntil } from './wait.js';
import { WireClient } from './wire-client.js';

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

const CLUSTER = 'fuzz';
const SECRET = 'fuzz-cluster-secret-0123456789';
const LISTENER = 'listener';
const GOOD = 'good';
/** The listener's frame limit: the smallest allowed, so oversized frames are cheap to send. */
const MAX_FRAME = MIN_FRAME_BYTES;
/** What the listener accepts as a snapshot chunk (see `NetworkTransport.maxSnapshotChunkBytes`). */
const MAX_CHUNK = Math.min(256 * 1024, MAX_FRAME - 1024);
/** Largest message-framed write the fuzzer makes after the handshake (the listener's limit is MAX_FRAME + 4). */
const WRITE_GROUP_BYTES = 60 * 1024;
/** The listener's handshake deadline (its default): genuine fuzz handshakes must finish well within it. */
const HANDSHAKE_TIMEOUT_MS = 5000;
/** Shots per round that send nothing, or half a HELLO, and wait for that deadline (in the background). */
const SLOW_SHOTS = 6;
/** How long the listener may take to close a bad connection on a busy machine. */
const CLOSE_DEADLINE_MS = 15_000;
/** Serial numbers per shot: a valid message's term is `shot * SERIALS + j + 1`. */
const SERIALS = 1024;
/** Good-peer readRounds at or above this are forged ones, which must never be delivered. */
const FORGED_ROUND = 1e12;
const MiB = 1024 * 1024;

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

const packr = new Packr({ useRecords: false, variableMapSize: true });
const pack = (v: unknown): Buffer => packr.pack(v);

function header(len: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32BE(len >>> 0, 0);
  return h;
}

const WEIRD_NUMBERS = [
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
const WEIRD_BIGINTS = [2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n + 1n];
const WEIRD_STRINGS = [
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
function randomValue(r: FuzzRng, depth = 0): unknown {
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
function hostileMsgpack(r: FuzzRng, out: number[], depth = 0): void {
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

function hostilePayload(r: FuzzRng, max: number): Buffer {
  const out: number[] = [];
  hostileMsgpack(r, out);
  if (r.chance(0.2)) hostileMsgpack(r, out); // trailing data after a value
  return Buffer.from(out.length > max ? out.slice(0, max) : out);
}

/** A value that is wrong at most positions of a message tuple. */
function wrongValue(r: FuzzRng): unknown {
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

const nodeIdFor = (r: FuzzRng) => r.pick(['a', 'b', 'c', 'node-7', 'x'.repeat(40)]);

/** A valid message of any type whose term is `term` (≥ 1, unique per shot and position). */
function validMessage(r: FuzzRng, from: NodeId, to: NodeId, term: number): Message {
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
function idleSnapshotFrame(r: FuzzRng): Buffer {
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
function acceptedAfterAuth(payload: Uint8Array, ctx: EnvelopeContext): boolean {
  if (payload.byteLength > MAX_FRAME) return false;
  return succeeds(() => {
    const t = unpackPayload(payload);
    if (Array.isArray(t) && isSnapshotFrameKind(t[0]))
      decodeSnapshotFrame(t, ctx.peer, ctx.local, ctx.limits, MAX_CHUNK);
    else messageFromEnvelope(t, ctx);
  });
}

/** Whether `f` returns without throwing; errors are expected here, so their stacks are not captured. */
function succeeds(f: () => void): boolean {
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
function acceptedHello(payload: Uint8Array, peers: ReadonlySet<NodeId>): boolean {
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

interface Expected {
  readonly term: number;
  readonly bytes: Buffer;
}

interface Shot {
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

const PRE_AUTH: readonly (readonly [string, number])[] = [
  ['raw-bytes', 6],
  ['random-payload', 3],
  ['random-msgpack', 4],
  ['hostile-msgpack', 4],
  ['hello-wrong-types', 4],
  ['wrong-version', 3],
  ['wrong-cluster', 3],
  ['wrong-recipient', 2],
  ['unknown-sender', 2],
  ['bad-auth', 4],
  ['impersonate-good', 2],
  ['skip-auth', 2],
  ['message-first', 2],
  ['oversized-header', 3],
  ['oversized-body', 2],
  ['truncated', 3],
  ['empty-frame', 1],
];

const POST_AUTH: readonly (readonly [string, number])[] = [
  ['random-payload', 3],
  ['random-msgpack', 4],
  ['hostile-msgpack', 4],
  ['envelope-shape', 3],
  ['wrong-version', 2],
  ['wrong-cluster', 2],
  ['spoofed-sender', 2],
  ['spoofed-good', 1],
  ['misrouted', 2],
  ['schema', 8],
  ['snapshot-schema', 3],
  ['handshake-frame', 1],
  ['empty-frame', 1],
  ['truncated', 3],
  ['truncated-msgpack', 2],
  ['oversized-header', 2],
  ['oversized-body', 1],
  ['deep-nesting', 1],
];

/** Cut `b` at random points into 1–4 writes (a byte stream must reassemble frames). */
function splitBytes(r: FuzzRng, b: Buffer): Buffer[][] {
  if (b.byteLength < 2 || r.chance(0.4)) return [[b]];
  const cuts = new Set<number>();
  for (let i = r.int(1, 3); i > 0; i--) cuts.add(r.int(1, b.byteLength - 1));
  const at = [0, ...[...cuts].sort((x, y) => x - y), b.byteLength];
  const out: Buffer[][] = [];
  for (let i = 1; i < at.length; i++) out.push([b.subarray(at[i - 1], at[i])]);
  return out;
}

/** Whole frames grouped into writes of at most `limit` bytes (a larger frame goes alone). */
function group(frames: readonly Buffer[], limit: number): Buffer[][] {
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

interface BuildContext {
  readonly seed: number;
  readonly slot: NodeId;
  /** The listener's connections are message-framed (WebSocket). */
  readonly framed: boolean;
  readonly peers: ReadonlySet<NodeId>;
  /** Idle snapshot-stream frames of this round (they need not be unique, so they are made once). */
  readonly idle: readonly Buffer[];
}

const IDLE_POOL = 512;

function idlePool(seed: number): Buffer[] {
  const r = new FuzzRng(seed, -1);
  return Array.from({ length: IDLE_POOL }, () => idleSnapshotFrame(r));
}

/**
 * Build shot `stream` of a round: its frames are a function of the seed, `stream` and the
 * slot's id; `index` (unique over the whole run) only numbers its messages.
 */
function buildShot(
  index: number,
  stream: number,
  b: BuildContext,
  slowKind?: 'silent' | 'stalled-hello',
): Shot {
  const r = new FuzzRng(b.seed, stream);
  const auth = slowKind === undefined && r.chance(0.65);
  const serial0 = serialBase(index);
  let next = 0;
  const term = () => serial0 + ++next;
  const ctx: EnvelopeContext = {
    clusterId: CLUSTER,
    peer: b.slot,
    local: LISTENER,
    limits: defaultWireLimits,
  };
  const validFrame = (from = b.slot) => {
    const m = validMessage(r, from, LISTENER, term());
    return { term: m.term, bytes: encodeMessageFrame(CLUSTER, m) };
  };
  const forbidden: number[] = [];
  const trailing = (n: number, from = b.slot): Buffer[] =>
    Array.from({ length: n }, () => {
      if (from === GOOD) {
        const round = FORGED_ROUND + serial0 + ++next;
        forbidden.push(round);
        return encodeMessageFrame(CLUSTER, {
          type: 'heartbeat',
          from: GOOD,
          to: LISTENER,
          term: 1,
          commit: 0,
          readRound: round,
        });
      }
      const f = validFrame(from);
      forbidden.push(f.term);
      return f.bytes;
    });
  return auth
    ? postAuthShot(index, r, b, ctx, validFrame, trailing, forbidden)
    : preAuthShot(index, r, b, validFrame, trailing, forbidden, slowKind);
}

function preAuthShot(
  index: number,
  r: FuzzRng,
  b: BuildContext,
  validFrame: (from?: NodeId) => Expected,
  trailing: (n: number, from?: NodeId) => Buffer[],
  forbidden: number[],
  slowKind?: 'silent' | 'stalled-hello',
): Shot {
  const kind = slowKind ?? r.weighted(PRE_AUTH);
  const hello = (over: Partial<{ version: number; clusterId: string; from: NodeId; to: NodeId }> = {}) =>
    encodeHello({
      version: PROTOCOL_VERSION,
      clusterId: CLUSTER,
      from: b.slot,
      to: LISTENER,
      nonce: r.bytes(NONCE_BYTES),
      ...over,
    });
  const maxPayload = HANDSHAKE_MAX_FRAME_BYTES;
  /** A framed payload the listener must refuse as a first frame. */
  const refusedFirst = (make: () => Buffer): Buffer => {
    for (let i = 0; i < 20; i++) {
      const p = make();
      if (p.byteLength <= maxPayload && !acceptedHello(p, b.peers)) return frame(p);
    }
    return frame(pack([FrameKind.Hello, 'not a version']));
  };
  let bad: Buffer[] = [];
  let after = r.int(0, 4);
  let end = false;
  let slow = false;
  let impostor: NodeId = b.slot;
  switch (kind) {
    case 'raw-bytes': {
      const n = r.int(1, 600);
      const raw = r.chance(0.5) ? r.bytes(n) : Buffer.concat([header(r.int(0, 700)), r.bytes(n)]);
      bad = [raw];
      after = 0;
      // A byte stream that stops inside a frame is waited on: half-close it. (A message that
      // does is refused, and so is a first frame that is not a HELLO to this listener.)
      const reader = new FrameReader(maxPayload);
      try {
        const got = reader.push(raw);
        end = got.length === 0 ? !b.framed && reader.pendingBytes > 0 : acceptedHello(got[0]!, b.peers);
      } catch {
        end = false;
      }
      break;
    }
    case 'random-payload':
      bad = [refusedFirst(() => r.bytes(r.int(1, maxPayload)))];
      break;
    case 'random-msgpack':
      bad = [refusedFirst(() => pack(randomValue(r)))];
      break;
    case 'hostile-msgpack':
      bad = [refusedFirst(() => hostilePayload(r, maxPayload))];
      break;
    case 'hello-wrong-types':
      bad = [
        refusedFirst(() => {
          const t: unknown[] = [
            FrameKind.Hello,
            PROTOCOL_VERSION,
            CLUSTER,
            b.slot,
            LISTENER,
            r.bytes(NONCE_BYTES),
          ];
          if (r.chance(0.2))
            t.splice(r.int(1, t.length), r.int(0, 1), ...(r.chance(0.5) ? [wrongValue(r)] : []));
          else t[r.int(1, 5)] = wrongValue(r);
          return pack(t);
        }),
      ];
      break;
    case 'wrong-version':
      bad = [
        frame(
          pack([FrameKind.Hello, r.pick([0, 2, 3, 255, 2 ** 31]), CLUSTER, b.slot, LISTENER, r.bytes(32)]),
        ),
      ];
      break;
    case 'wrong-cluster':
      bad = [hello({ clusterId: r.pick(['other', 'Fuzz', 'fuzz ', 'x'.repeat(256)]) })];
      break;
    case 'wrong-recipient':
      bad = [hello({ to: r.pick([GOOD, b.slot, 'nobody', `${LISTENER}-2`]) })];
      break;
    case 'unknown-sender':
      bad = [hello({ from: r.pick(['stranger', LISTENER, 'x'.repeat(256)]) })];
      break;
    case 'impersonate-good':
    case 'bad-auth': {
      if (kind === 'impersonate-good') impostor = GOOD;
      const proof = r.pick<unknown>([
        r.bytes(NONCE_BYTES), // the proof of a wrong secret looks just like this
        r.bytes(r.int(0, 31)),
        r.bytes(r.int(33, 64)),
        null,
      ]);
      const auth =
        r.chance(0.2) || proof === null
          ? r.pick([pack([FrameKind.Auth]), pack([FrameKind.Auth, r.bytes(32), 1]), pack(randomValue(r))])
          : pack([FrameKind.Auth, proof]);
      bad = [hello({ from: impostor }), frame(auth)];
      break;
    }
    case 'skip-auth':
    case 'message-first': {
      const f = validFrame();
      forbidden.push(f.term);
      bad = kind === 'skip-auth' ? [hello(), f.bytes] : [f.bytes];
      break;
    }
    case 'oversized-header':
      bad = [Buffer.concat([header(r.int(maxPayload + 1, 0xffffffff)), r.bytes(r.int(0, 200))])];
      break;
    case 'oversized-body':
      bad = [frame(r.bytes(r.int(maxPayload + 1, 9000)))];
      break;
    case 'truncated': {
      const whole = r.chance(0.5) ? hello() : frame(r.bytes(r.int(2, 3000)));
      bad = [whole.subarray(0, r.int(1, whole.byteLength - 1))];
      after = 0;
      end = !b.framed;
      break;
    }
    case 'empty-frame':
      bad = [header(0)];
      break;
    case 'silent':
      bad = [];
      after = 0;
      slow = true;
      break;
    default: {
      // stalled-hello: half a HELLO and then nothing
      const h = hello();
      bad = [h.subarray(0, r.int(1, h.byteLength - 1))];
      after = 0;
      slow = !b.framed;
      break;
    }
  }
  const tail = trailing(after, impostor);
  let writes: Buffer[][];
  if (bad.length === 0) writes = [];
  else if (b.framed) writes = tail.length > 0 && r.chance(0.5) ? [bad, tail] : [[...bad, ...tail]];
  else writes = splitBytes(r, Buffer.concat([...bad, ...tail]));
  return {
    index,
    label: `pre:${kind}`,
    auth: false,
    writes,
    frames: bad.length + tail.length,
    expected: [],
    prefixOnly: false,
    forbidden,
    end,
    slow,
  };
}

function serialBase(index: number): number {
  return index * SERIALS;
}

function postAuthShot(
  index: number,
  r: FuzzRng,
  b: BuildContext,
  ctx: EnvelopeContext,
  validFrame: (from?: NodeId) => Expected,
  trailing: (n: number, from?: NodeId) => Buffer[],
  forbidden: number[],
): Shot {
  const kind = r.weighted(POST_AUTH);
  // The burst: messages, and snapshot-stream frames that refer to no transfer (validated,
  // then ignored: they cost the listener the same checks, and this harness no IPC).
  const burst: Buffer[] = [];
  const expected: Expected[] = [];
  const n = r.chance(0.08) ? r.int(200, 600) : r.int(16, 96);
  for (let i = 0; i < n; i++) {
    if (r.chance(0.35)) {
      const f = validFrame();
      expected.push(f);
      burst.push(f.bytes);
    } else burst.push(b.idle[r.int(0, IDLE_POOL - 1)]!);
  }
  /** An envelope around a valid message, with field `at` replaced. */
  const envelope = (at: number, value: unknown): Buffer => {
    const m = validMessage(r, b.slot, LISTENER, serialBase(index) + SERIALS - 1);
    const t: unknown[] = [FrameKind.Message, PROTOCOL_VERSION, CLUSTER, b.slot, LISTENER, messageToTuple(m)];
    t[at] = value;
    return pack(t);
  };
  /** A framed payload the listener must reject on an authenticated connection. */
  const rejected = (make: () => Buffer): Buffer => {
    for (let i = 0; i < 20; i++) {
      const p = make();
      if (!acceptedAfterAuth(p, ctx)) return frame(p);
    }
    return frame(envelope(5, [6, -1, 0, 0]));
  };
  let bad: Buffer;
  let after = r.int(0, 4);
  let prefixOnly = false;
  let alone = false;
  let end = false;
  switch (kind) {
    case 'random-payload':
      bad = rejected(() => r.bytes(r.int(1, 3000)));
      break;
    case 'random-msgpack':
      bad = rejected(() => pack(randomValue(r)));
      break;
    case 'hostile-msgpack':
      bad = rejected(() => hostilePayload(r, MAX_FRAME));
      break;
    case 'envelope-shape':
      bad = rejected(() => {
        const m = validMessage(r, b.slot, LISTENER, 1);
        const t: unknown[] = [
          FrameKind.Message,
          PROTOCOL_VERSION,
          CLUSTER,
          b.slot,
          LISTENER,
          messageToTuple(m),
        ];
        switch (r.int(0, 3)) {
          case 0:
            return pack(r.chance(0.5) ? randomValue(r) : new Map(t.map((v, i) => [i, v])));
          case 1:
            if (r.chance(0.5)) t.push(randomValue(r));
            else t.splice(r.int(0, 5), 1);
            return pack(t);
          case 2:
            t[0] = r.pick<unknown>([0, 1, 2, 3, 4, 5, 15, 17, 31, 38, 255, -16, '16', null, 16.5]);
            return pack(t);
          default:
            return pack([t]);
        }
      });
      break;
    case 'wrong-version':
      bad = rejected(() =>
        envelope(1, r.pick<unknown>([0, 2, 255, -1, '1', 1.0000001, null, true, 2n ** 64n - 1n])),
      );
      break;
    case 'wrong-cluster':
      bad = rejected(() =>
        envelope(2, r.pick<unknown>(['other', '', 'FUZZ', 42, null, Buffer.from(CLUSTER)])),
      );
      break;
    case 'spoofed-sender':
      bad = rejected(() =>
        envelope(3, r.pick<unknown>(['fuzz-999', 'fuzz-0', 'fuzz-1', LISTENER, '', 7, null])),
      );
      break;
    case 'spoofed-good': {
      // Claims to come from the good peer, with a heartbeat its checker would notice.
      const round = FORGED_ROUND + serialBase(index) + SERIALS - 2;
      forbidden.push(round);
      bad = frame(pack([FrameKind.Message, PROTOCOL_VERSION, CLUSTER, GOOD, LISTENER, [6, 1, 0, round]]));
      break;
    }
    case 'misrouted':
      bad = rejected(() => envelope(4, r.pick<unknown>([GOOD, b.slot, 'other', '', null])));
      break;
    case 'schema':
      bad = rejected(() => pack(brokenEnvelope(r, b.slot)));
      break;
    case 'snapshot-schema':
      bad = rejected(() => pack(brokenSnapshotFrame(r, b.slot)));
      break;
    case 'handshake-frame':
      bad = r.pick([
        () => encodeHello({ version: 1, clusterId: CLUSTER, from: b.slot, to: LISTENER, nonce: r.bytes(32) }),
        () => encodeAuth(r.bytes(32)),
        () => encodeWelcome(),
        () => encodeRefuse({ code: 'X', reason: 'fuzz' }),
        () =>
          encodeChallenge({
            version: 1,
            clusterId: CLUSTER,
            from: b.slot,
            nonce: r.bytes(32),
            proof: r.bytes(32),
          }),
      ])();
      break;
    case 'empty-frame':
      bad = header(0);
      break;
    case 'truncated': {
      let whole = frame(r.bytes(r.int(2, 3000)));
      if (r.chance(0.5)) {
        const f = validFrame();
        forbidden.push(f.term);
        whole = f.bytes;
      }
      bad = whole.subarray(0, r.int(1, whole.byteLength - 1));
      after = 0;
      alone = true;
      end = !b.framed;
      break;
    }
    case 'truncated-msgpack':
      bad = rejected(() => {
        const whole = validFrame().bytes.subarray(FRAME_HEADER_BYTES);
        return whole.subarray(0, r.int(1, whole.byteLength - 1));
      });
      break;
    case 'oversized-header':
      bad = Buffer.concat([header(r.int(MAX_FRAME + 1, 0xffffffff)), r.bytes(r.int(0, 300))]);
      prefixOnly = true;
      break;
    case 'oversized-body':
      bad = frame(r.bytes(MAX_FRAME + r.int(1, 20_000)));
      prefixOnly = true;
      alone = true;
      break;
    default: {
      // deep-nesting
      const depth = r.int(1000, MAX_FRAME - 64);
      const nest = Buffer.alloc(depth + 1, r.pick([0x91, 0x81, 0xdc]));
      if (nest[0] === 0xdc) for (let i = 0; i + 3 <= depth; i += 3) nest.set([0xdc, 0x00, 0x01], i);
      nest[depth] = 0xc0;
      bad = rejected(() => nest);
      break;
    }
  }
  const tail = trailing(after);
  let writes: Buffer[][];
  if (b.framed) {
    writes = alone
      ? [...group(burst, WRITE_GROUP_BYTES), [bad], ...group(tail, WRITE_GROUP_BYTES)]
      : group([...burst, bad, ...tail], WRITE_GROUP_BYTES);
  } else writes = splitBytes(r, Buffer.concat([...burst, bad, ...tail]));
  return {
    index,
    label: `post:${kind}`,
    auth: true,
    writes,
    frames: burst.length + 1 + tail.length,
    expected,
    prefixOnly,
    forbidden,
    end,
    slow: false,
  };
}

/** A message envelope whose message breaks its schema. */
function brokenEnvelope(r: FuzzRng, slot: NodeId): unknown[] {
  const m = validMessage(r, slot, LISTENER, r.int(1, 1000));
  const t = messageToTuple(m) as unknown[];
  const env: unknown[] = [FrameKind.Message, PROTOCOL_VERSION, CLUSTER, slot, LISTENER, t];
  switch (r.int(0, 7)) {
    case 0:
      t[r.int(0, t.length - 1)] = wrongValue(r);
      break;
    case 1:
      if (r.chance(0.5)) t.push(r.int(0, 5));
      else t.pop();
      break;
    case 2:
      t[0] = r.pick<unknown>([12, 13, 31, 32, 255, -1, '0', null, 1.5]);
      break;
    case 3: {
      // entries: not dense, terms out of range, unknown types, data not bytes, wrong shapes
      const term = r.int(2, 100);
      const prev = r.int(0, 1000);
      const entries: unknown[] = Array.from({ length: r.int(1, 5) }, (_, i) => [
        prev + 1 + i,
        term,
        0,
        new Uint8Array(2),
      ]);
      const e = entries[r.int(0, entries.length - 1)] as unknown[];
      switch (r.int(0, 5)) {
        case 0:
          e[0] = (e[0] as number) + r.pick([1, -1, 2, 1000]);
          break;
        case 1:
          e[1] = r.pick([term + 1, -1, 0.5]);
          break;
        case 2:
          e[2] = r.pick<unknown>([2, -1, '0', null]);
          break;
        case 3:
          e[3] = r.pick<unknown>(['data', null, 1, [1, 2]]);
          break;
        case 4:
          e.push(0);
          break;
        default:
          entries[0] = r.pick<unknown>([null, 'entry', 5, new Map()]);
      }
      env[5] = [0, term, prev, r.int(0, term), 0, r.chance(0.1) ? 'not entries' : entries];
      break;
    }
    case 4: {
      // membership lists of a snapshot message
      const lists: unknown[] = [['a'], [], []];
      lists[r.int(0, 2)] = r.pick<unknown>([
        [''],
        [1],
        ['x'.repeat(257)],
        new Array(1025).fill('a'),
        'a',
        null,
        [null],
      ]);
      env[5] = [8, 5, 10, 2, ...lists];
      break;
    }
    case 5:
      t[1] = r.pick<unknown>([-1, 0.5, 2 ** 53, 2n ** 63n, '1', null, Number.NaN]);
      break;
    case 6:
      env[5] = r.pick<unknown>(['heartbeat', 6, null, new Map([[0, 6]]), [], [6]]);
      break;
    default:
      // append whose prevTerm is above its term
      env[5] = [0, 3, 10, 4, 0, []];
  }
  return env;
}

/** A snapshot-stream frame that breaks its schema. */
function brokenSnapshotFrame(r: FuzzRng, slot: NodeId): unknown[] {
  const kind = r.int(SnapshotFrameKind.Begin, SnapshotFrameKind.Resumed);
  const sid = r.chance(0.8) ? r.int(0, 1e6) : wrongValue(r);
  switch (kind) {
    case SnapshotFrameKind.Begin: {
      const m = validMessage(r, slot, LISTENER, 3);
      return [
        kind,
        sid,
        r.chance(0.5)
          ? messageToTuple({ ...m, type: 'heartbeat', commit: 0, readRound: 0 } as Message)
          : wrongValue(r),
      ];
    }
    case SnapshotFrameKind.Chunk:
      return r.pick<() => unknown[]>([
        () => [kind, sid, 0, new Uint8Array(MAX_CHUNK + 1), 0],
        () => [kind, sid, -1, new Uint8Array(4), 0],
        () => [kind, sid, 0, 'data', 0],
        () => [kind, sid, 0, new Uint8Array(4)],
        () => [kind, sid, 0, new Uint8Array(4), -5],
      ])();
    case SnapshotFrameKind.End:
      return [kind, sid, 1, 100, r.pick<unknown>([new Uint8Array(31), 'sha', null, new Uint8Array(33)])];
    case SnapshotFrameKind.Ack:
      return r.chance(0.5) ? [kind, sid, -1] : [kind, sid];
    case SnapshotFrameKind.Done:
      return [kind, sid, r.pick<unknown>([1, 'yes', null]), 'reason'];
    case SnapshotFrameKind.Resume:
      return [kind, sid, 0];
    case SnapshotFrameKind.Resumed:
      return r.pick<() => unknown[]>([
        () => [kind, sid, 1, 0, 0],
        () => [kind, sid, true, -1, 0],
        () => [kind, sid, true, 0],
      ])();
    default: // ABORT
      return [kind, sid, r.pick<unknown>([1, null, 'x'.repeat(401)])];
  }
}

// ------------------------------------------------------------------------------ checking

interface Segment {
  readonly shot: number;
  readonly label: string;
  readonly items: Expected[];
  readonly prefixOnly: boolean;
  pos: number;
}

/** Checks every message the listener delivers, as it arrives. */
class DeliveryCheck {
  goodNext = 0;
  fuzzDelivered = 0;
  droppedBeforeOversized = 0;
  readonly problems: string[] = [];
  private problemCount = 0;
  private readonly segments = new Map<NodeId, Segment[]>();
  private readonly forbidden = new Map<number, string>();

  problem(p: string): void {
    this.problemCount++;
    if (this.problems.length < 40) this.problems.push(p);
  }

  get failures(): number {
    return this.problemCount;
  }

  expect(slot: NodeId, shot: Shot): void {
    for (const t of shot.forbidden) this.forbidden.set(t, `shot ${shot.index} (${shot.label})`);
    if (shot.expected.length === 0) return;
    let q = this.segments.get(slot);
    if (!q) {
      q = [];
      this.segments.set(slot, q);
    }
    q.push({
      shot: shot.index,
      label: shot.label,
      items: shot.expected,
      prefixOnly: shot.prefixOnly,
      pos: 0,
    });
  }

  private describeForbidden(key: number): string {
    const where = this.forbidden.get(key);
    return where ? ` — it came after the bad frame or without a handshake, ${where}` : '';
  }

  take(m: Message): void {
    if (m.to !== LISTENER) {
      this.problem(`the listener delivered a message addressed to ${JSON.stringify(m.to)}`);
      return;
    }
    if (m.from === GOOD) {
      if (m.type === 'heartbeat' && m.readRound === this.goodNext && m.term === 1) {
        this.goodNext++;
        return;
      }
      const round = m.type === 'heartbeat' ? m.readRound : -1;
      this.problem(
        `good peer: expected heartbeat #${this.goodNext}, the listener delivered a ${m.type} #${round}${this.describeForbidden(round)}`,
      );
      return;
    }
    const q = this.segments.get(m.from);
    for (;;) {
      const seg = q?.[0];
      if (!seg) {
        this.problem(
          `the listener delivered a ${m.type} (term ${m.term}) from ${m.from} that no one sent in front of a bad frame${this.describeForbidden(m.term)}`,
        );
        return;
      }
      const want = seg.items[seg.pos]!;
      if (want.term === m.term) {
        if (!encodeMessageFrame(CLUSTER, m).equals(want.bytes)) {
          this.problem(`shot ${seg.shot} (${seg.label}): message ${seg.pos} arrived altered (a ${m.type})`);
        }
        this.fuzzDelivered++;
        if (++seg.pos === seg.items.length) q!.shift();
        return;
      }
      if (seg.prefixOnly) {
        this.droppedBeforeOversized += seg.items.length - seg.pos;
        q!.shift();
        continue;
      }
      this.problem(
        `shot ${seg.shot} (${seg.label}): expected message ${seg.pos} (term ${want.term}) from ${m.from}, got term ${m.term}${this.describeForbidden(m.term)}`,
      );
      return;
    }
  }

  /** Everything the listener will deliver has been taken: what is still expected never came. */
  settle(): void {
    for (const [slot, q] of this.segments) {
      for (const seg of q) {
        if (seg.prefixOnly) this.droppedBeforeOversized += seg.items.length - seg.pos;
        else
          this.problem(
            `shot ${seg.shot} (${seg.label}) from ${slot}: ${seg.items.length - seg.pos} of ${seg.items.length} valid messages in front of the bad frame never arrived`,
          );
      }
    }
    this.segments.clear();
  }
}

/** The fuzzer's wait: the state in the message is taken at the timeout. */
const waitFor = (cond: () => boolean, timeoutMs: number, what: () => string) =>
  waitUntil(cond, what, timeoutMs, 20);

const fmt = (n: number) => n.toLocaleString('en-US');
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

// ------------------------------------------------------------------------------ the run

/** Throw the frames at a live listener of `kit`; resolves with the figures, throws on any failure. */
export async function fuzzListener(kit: TransportKit, options: FuzzOptions = {}): Promise<FuzzReport> {
  const seed = options.seed ?? 0x5eed;
  const target = options.frames ?? 200_000;
  const warmup = options.warmupFrames ?? 20_000;
  const concurrency = options.concurrency ?? 24;
  const heapLimit = options.heapGrowthLimitBytes ?? 6 * MiB;
  const log = options.log ?? ((line: string) => console.log(line));
  const tag = `[fuzz ${kit.name}]`;
  const slots = Array.from({ length: concurrency }, (_, i) => `fuzz-${i}`);
  const peers = new Set<NodeId>([GOOD, ...slots]);

  const check = new DeliveryCheck();
  const fromListener: Message[] = [];
  let good: NetworkTransport | null = null;
  let listener: MemberProcess | null = null;
  let goodTimer: ReturnType<typeof setInterval> | null = null;
  let drainTimer: ReturnType<typeof setInterval> | null = null;
  let goodSent = 0;
  const goodPeerOptions = {
    connectTimeoutMs: 5000,
    handshakeTimeoutMs: 5000,
    backoffMaxMs: 250,
    closeTimeoutMs: 500,
    maxFrameBytes: MAX_FRAME,
  };
  try {
    // The good peer (here) and the listener (its own process).
    good = kit.create({
      id: GOOD,
      clusterId: CLUSTER,
      secret: SECRET,
      peers: {},
      port: 0,
      options: goodPeerOptions,
    });
    const goodAddress = await good.listen();
    const nowhere = goodAddress.replace(/:\d+(\/|$)/, ':1$1');
    listener = await MemberProcess.spawn(kit.memberScript, {
      id: LISTENER,
      clusterId: CLUSTER,
      secret: SECRET,
      peers: { [GOOD]: goodAddress, ...Object.fromEntries(slots.map((s) => [s, nowhere])) },
      port: 0,
      options: {
        maxFrameBytes: MAX_FRAME,
        handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
        connectTimeoutMs: 5000,
        backoffMaxMs: 250,
        closeTimeoutMs: 500,
        // Every fuzzing connection comes from 127.0.0.1: room for all of them at once (the
        // per-host limit has its own test, `handshakeSlotCases`).
        maxPendingHandshakesPerHost: concurrency + 8,
      },
    });
    const L = listener;
    const address = L.address;
    good.setPeers({ [LISTENER]: address, [GOOD]: goodAddress });
    await L.start();
    await good.start({ onMessage: (m) => fromListener.push(m) });
    const g = good;
    const sendGood = (n: number) => {
      for (let i = 0; i < n; i++) {
        g.send({ type: 'heartbeat', from: GOOD, to: LISTENER, term: 1, commit: 0, readRound: goodSent++ });
      }
    };
    const drain = () => {
      for (const m of L.received.splice(0)) check.take(m);
    };
    drainTimer = setInterval(drain, 25);
    sendGood(10);
    await waitFor(
      () => check.goodNext >= 10,
      15_000,
      () => `the first good-peer messages (${check.goodNext}/10)`,
    );
    goodTimer = setInterval(() => sendGood(4), 10);

    const layer: StreamLayer = kit.dialer();
    const probe = await layer.dial(address, AbortSignal.timeout(10_000));
    const framed = probe.messageFramed;
    probe.destroy();

    const secret = secretBytes(SECRET);
    let nextIndex = 0;
    /** One round: shots handed out in index order until `frames` are planned; `concurrency` at once. */
    const round = async (roundSeed: number, frames: number) => {
      const first = nextIndex;
      const idle = idlePool(roundSeed);
      let planned = 0;
      const counts = { frames: 0, pre: 0, post: 0, kinds: {} as Record<string, number> };
      const nextShot = (slot: NodeId): Shot | null => {
        if (planned >= frames || check.failures > 100) return null;
        const index = nextIndex++;
        const s = buildShot(index, index - first, { seed: roundSeed, slot, framed, peers, idle });
        planned += s.frames;
        return s;
      };
      const fire = async (slot: NodeId, shot: Shot) => {
        const what = `shot ${shot.index} (${shot.label}) as ${slot}`;
        let c: WireClient;
        try {
          c = await WireClient.dial(layer, address, 15_000);
        } catch (err) {
          check.problem(`${what}: could not connect: ${(err as Error).message}`);
          return;
        }
        try {
          if (shot.auth) {
            const answer = await c.handshake({ clusterId: CLUSTER, secret, from: slot, to: LISTENER });
            if (answer?.kind !== FrameKind.Welcome) {
              check.problem(
                `${what}: the genuine handshake was not welcomed (${answer ? `kind ${answer.kind}` : 'closed'})`,
              );
              return;
            }
          }
          check.expect(slot, shot);
          for (const w of shot.writes) c.write(...w);
          counts.frames += shot.frames;
          if (shot.auth) counts.post++;
          else counts.pre++;
          counts.kinds[shot.label] = (counts.kinds[shot.label] ?? 0) + 1;
          if (shot.end) c.end();
          const deadline = CLOSE_DEADLINE_MS + (shot.slow ? HANDSHAKE_TIMEOUT_MS : 0);
          if (!(await c.waitClosed(deadline)))
            check.problem(`${what}: the listener kept the connection open`);
        } catch (err) {
          check.problem(`${what}: ${(err as Error).message}`);
        } finally {
          c.destroy();
        }
      };
      // The slow shots first, in the background (their frames are not part of the plan).
      const slow = Array.from({ length: SLOW_SHOTS }, (_, k) => {
        const index = nextIndex++;
        const slot = slots[k % slots.length]!;
        const kind = k % 2 === 0 ? 'silent' : 'stalled-hello';
        return fire(
          slot,
          buildShot(index, index - first, { seed: roundSeed, slot, framed, peers, idle }, kind),
        );
      });
      await Promise.all([
        ...slow,
        ...slots.map(async (slot) => {
          for (let s = nextShot(slot); s; s = nextShot(slot)) await fire(slot, s);
        }),
      ]);
      return counts;
    };
    /** After this, everything the listener delivered for closed connections has reached `received`. */
    const failIfProblems = (when: string) => {
      if (check.failures > 0) {
        throw new Error(`${tag} ${check.failures} problems ${when}:\n  ${check.problems.join('\n  ')}`);
      }
    };
    const settle = async (when: string) => {
      let s: Awaited<ReturnType<MemberProcess['stats']>>;
      try {
        s = await L.stats(); // replies come after every message the child sent before
      } catch (err) {
        throw new Error(
          `${tag} the listener process does not answer ${when} (crashed?): ${(err as Error).message}; ` +
            `${check.failures} problems before that:\n  ${check.problems.join('\n  ')}`,
        );
      }
      drain();
      check.settle();
      failIfProblems(when);
      return s;
    };

    /**
     * The listener's counters must account for every connection of a round: accepted once,
     * and counted once, as a handshake failure when it never authenticated, as a rejected
     * frame when it did. A connection the fuzzer half-closed is counted when the listener
     * sees the close, which can be just after the fuzzer did: wait for it, with a deadline.
     * A mismatch is recorded (the run goes on, so that every figure is still reported).
     */
    type Counter = 'connectionsAccepted' | 'handshakeFailures' | 'framesRejected';
    const counterProblems: string[] = [];
    const accounted = async (
      when: string,
      from: TransportStats,
      want: Record<Counter, number>,
      kinds: Record<string, number>,
    ) => {
      const deadline = performance.now() + 3000;
      for (;;) {
        const s = await L.stats();
        const off = (Object.keys(want) as Counter[]).filter((k) => s.stats[k] - from[k] !== want[k]);
        if (off.length === 0) return s;
        if (performance.now() > deadline || off.some((k) => s.stats[k] - from[k] > want[k])) {
          let why = off.map((k) => `${k} grew by ${s.stats[k] - from[k]}, expected ${want[k]}`).join('; ');
          const short = want.framesRejected - (s.stats.framesRejected - from.framesRejected);
          if (framed && short > 0 && short === (kinds['post:oversized-body'] ?? 0)) {
            why +=
              ` — as many as the authenticated connections that sent a WebSocket message over the frame limit` +
              ` (post:oversized-body, ${short}): the listener closes those without counting a rejected frame`;
          }
          const shots = Object.entries(kinds)
            .sort()
            .map(([k, n]) => `${k} ${n}`)
            .join(', ');
          counterProblems.push(`${when}: ${why} (shots: ${shots})`);
          return s;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const want = (c: { pre: number; post: number }): Record<Counter, number> => ({
      connectionsAccepted: c.pre + c.post,
      handshakeFailures: c.pre,
      framesRejected: c.post,
    });
    const zero = {
      connectionsAccepted: 0,
      handshakeFailures: 0,
      framesRejected: 0,
      peers: {},
    } as TransportStats;
    // The good peer's connection and the probe.
    const start = await accounted(
      'at the start',
      zero,
      { connectionsAccepted: 2, handshakeFailures: 1, framesRejected: 0 },
      {},
    );

    // Warm-up round, then the baseline.
    const w = await round(seed ^ 0x7a3d, warmup);
    await settle('in the warm-up round');
    const before = await accounted('in the warm-up round', start.stats, want(w), w.kinds);
    log(
      `${tag} warm-up: ${fmt(w.frames)} frames on ${fmt(w.pre + w.post)} connections; listener heap ${mib(before.heap)}`,
    );

    // The measured round.
    const t0 = performance.now();
    const m = await round(seed, target);
    const durationMs = performance.now() - t0;
    const afterRun = await settle('while fuzzing');
    clearInterval(goodTimer);
    goodTimer = null;
    await accounted('in the fuzzing round', before.stats, want(m), m.kinds);

    // Still serving: the good peer's last messages, and the listener's own messages to it.
    sendGood(100);
    await waitFor(
      () => check.goodNext >= goodSent || check.failures > 0,
      20_000,
      () => `the good peer's messages (${check.goodNext}/${goodSent} arrived)`,
    );
    for (let i = 0; i < 20; i++)
      L.send({ type: 'heartbeatResponse', from: LISTENER, to: GOOD, term: 1, readRound: i });
    await waitFor(
      () => fromListener.length >= 20,
      20_000,
      () => `the listener's messages to the good peer (${fromListener.length}/20)`,
    );
    fromListener.forEach((msg, i) => {
      if (msg.type !== 'heartbeatResponse' || msg.readRound !== i || msg.from !== LISTENER)
        check.problem(
          `the good peer got ${msg.type} #${i} from ${msg.from} instead of heartbeatResponse #${i}`,
        );
    });
    drain();
    failIfProblems('after fuzzing');
    const after = await L.stats();

    const d = (k: 'framesRejected' | 'handshakeFailures' | 'connectionsAccepted') =>
      after.stats[k] - before.stats[k];
    const goodStats = good.stats();
    const link = goodStats.peers[LISTENER];
    const report: FuzzReport = {
      transport: kit.name,
      frames: m.frames,
      connections: m.pre + m.post,
      preAuthConnections: m.pre,
      postAuthConnections: m.post,
      fuzzMessagesDelivered: check.fuzzDelivered,
      droppedBeforeOversized: check.droppedBeforeOversized,
      goodMessages: check.goodNext,
      durationMs,
      heapBaselineBytes: before.heap,
      heapAfterBytes: after.heap,
      kinds: m.kinds,
      before: before.stats,
      after: after.stats,
    };
    log(
      `${tag} ${fmt(m.frames)} frames on ${fmt(m.pre + m.post)} connections (${fmt(m.pre)} before the handshake, ${fmt(m.post)} after) in ${(durationMs / 1000).toFixed(1)} s (${fmt(Math.round(m.frames / (durationMs / 1000)))} frames/s)`,
    );
    log(
      `${tag} listener: +${fmt(d('framesRejected'))} frames rejected, +${fmt(d('handshakeFailures'))} handshake failures, +${fmt(d('connectionsAccepted'))} connections; ${fmt(check.fuzzDelivered)} fuzz messages delivered and checked (${fmt(check.droppedBeforeOversized)} discarded with an oversized frame); ${fmt(check.goodNext)} good-peer messages in order`,
    );
    log(
      `${tag} listener heap after gc: ${mib(before.heap)} after warm-up, ${mib(after.heap)} at the end (${after.heap >= before.heap ? '+' : ''}${mib(after.heap - before.heap)}); heap right after the round ${mib(afterRun.heap)}`,
    );

    const failures: string[] = [...counterProblems];
    if (after.heap - before.heap >= heapLimit)
      failures.push(
        `the listener's settled heap grew by ${mib(after.heap - before.heap)} (limit ${mib(heapLimit)})`,
      );
    if (link?.state !== 'open' || link.reconnects !== 0 || goodStats.messagesDropped !== 0)
      failures.push(
        `the good peer's link was disturbed: state ${link?.state}, ${link?.reconnects} reconnects, ${goodStats.messagesDropped} dropped`,
      );
    if (check.goodNext !== goodSent)
      failures.push(`${check.goodNext} of ${goodSent} good-peer messages arrived`);
    if (m.frames < target) failures.push(`only ${m.frames} frames were thrown (target ${target})`);
    if (failures.length > 0) throw new Error(`${tag} ${failures.join('; ')}`);
    return report;
  } finally {
    if (goodTimer) clearInterval(goodTimer);
    if (drainTimer) clearInterval(drainTimer);
    await listener?.kill();
    await good?.close();
  }
}

/** The fuzz run as a case list, like the other shared suites. */
export function fuzzCases(kit: TransportKit, options: FuzzOptions = {}): FuzzCase[] {
  return [
    {
      name: `${kit.name}: a live listener survives ${fmt(options.frames ?? 200_000)} random, truncated, oversized and schema-breaking frames, keeps serving a well-behaved peer and keeps its heap flat`,
      timeoutMs: 120_000,
      run: async () => {
        await fuzzListener(kit, options);
      },
    },
  ];
}
