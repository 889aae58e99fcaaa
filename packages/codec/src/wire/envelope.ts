/**
 * Frame payloads. Every payload is one msgpack array whose first element says what it is:
 * the handshake steps, then message envelopes. Protocol version 1:
 *
 *   [1, version, clusterId, from, to, nonce]          HELLO      initiator → responder
 *   [2, version, clusterId, from, nonce, proof]       CHALLENGE  responder → initiator
 *   [3, proof]                                        AUTH       initiator → responder
 *   [4]                                               WELCOME    responder → initiator
 *   [5, code, reason]                                 REFUSE     either way, then close
 *   [16, version, clusterId, from, to, message]       MESSAGE    initiator → responder
 *
 * HELLO and CHALLENGE keep `version` in second place forever, so a node of any later
 * version can still read it and refuse clearly. The message is the tuple of
 * `messages.ts`. Records (msgpackr's shared structures) are not used: every payload is
 * self-describing, so neither end keeps decoder state that a reconnect, a restart or a
 * hostile frame could desynchronise.
 */
import type { Message, NodeId } from '@quorate/raft';
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { FrameError, TransportErrorCode } from '../errors.js';
import { FRAME_HEADER_BYTES } from './frames.js';
import {
  defaultWireLimits,
  describe,
  isNodeId,
  messageFromTuple,
  messageToTuple,
  type WireLimits,
} from './messages.js';

export const PROTOCOL_VERSION = 1;

/**
 * The versions whose HELLO and CHALLENGE this package reads in full: 1 (one Raft group per
 * connection) and 2 (many groups per connection, `groups.ts`). They share the handshake;
 * a connection refuses a peer of the other version with `VERSION_MISMATCH`.
 */
const HANDSHAKE_VERSIONS: readonly number[] = [1, 2];

/** A protocol version as an operator reads it in a refusal. */
export function describeVersion(v: number): string {
  if (v === 1) return 'protocol version 1 (one Raft group per connection)';
  if (v === 2) return 'protocol version 2 (many Raft groups per connection, @quorate/multiraft)';
  return `protocol version ${v}`;
}

export const FrameKind = {
  Hello: 1,
  Challenge: 2,
  Auth: 3,
  Welcome: 4,
  Refuse: 5,
  Message: 16,
} as const;

/** Nonces and proofs are 32 bytes (HMAC-SHA256). */
export const NONCE_BYTES = 32;

const packr = new Packr({ useRecords: false, variableMapSize: true });
/**
 * Decoding untrusted bytes: maps become `Map`s (never plain objects, so no prototype
 * games), structured-clone references are off, binary data is copied out of the frame
 * (entries outlive the read buffer; a view would pin it), 64-bit integers come back as
 * numbers that the validator refuses unless they are safe integers.
 */
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false,
  structuredClone: false,
  copyBuffers: true,
  int64AsType: 'number',
});

export interface Hello {
  readonly version: number;
  readonly clusterId: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly nonce: Uint8Array;
}
export interface Challenge {
  readonly version: number;
  readonly clusterId: string;
  readonly from: NodeId;
  readonly nonce: Uint8Array;
  readonly proof: Uint8Array;
}
export interface Refusal {
  readonly code: string;
  readonly reason: string;
}

export type HandshakeFrame =
  | ({ kind: typeof FrameKind.Hello } & Hello)
  | ({ kind: typeof FrameKind.Challenge } & Challenge)
  | { kind: typeof FrameKind.Auth; proof: Uint8Array }
  | { kind: typeof FrameKind.Welcome }
  | ({ kind: typeof FrameKind.Refuse } & Refusal);

/** The context a MESSAGE envelope is checked against. */
export interface EnvelopeContext {
  readonly clusterId: string;
  /** The authenticated peer: the only acceptable `from`. */
  readonly peer: NodeId;
  /** This node: the only acceptable `to`. */
  readonly local: NodeId;
  readonly limits: WireLimits;
}

/**
 * Pack `value` as a whole frame: msgpackr leaves room for the 4-byte length in front of
 * the payload, so a frame is one buffer with no copy.
 */
function packFrame(value: unknown): Buffer {
  const buf = packr.pack(value, RESERVE_START_SPACE | FRAME_HEADER_BYTES);
  buf.writeUInt32BE(buf.byteLength - FRAME_HEADER_BYTES, 0);
  return buf;
}

export function encodeHello(h: Hello): Buffer {
  return packFrame([FrameKind.Hello, h.version, h.clusterId, h.from, h.to, h.nonce]);
}
export function encodeChallenge(c: Challenge): Buffer {
  return packFrame([FrameKind.Challenge, c.version, c.clusterId, c.from, c.nonce, c.proof]);
}
export function encodeAuth(proof: Uint8Array): Buffer {
  return packFrame([FrameKind.Auth, proof]);
}
export function encodeWelcome(): Buffer {
  return packFrame([FrameKind.Welcome]);
}
export function encodeRefuse(r: Refusal): Buffer {
  return packFrame([FrameKind.Refuse, r.code, r.reason.slice(0, 400)]);
}

/** One message as a whole frame, length header included. */
export function encodeMessageFrame(clusterId: string, m: Message): Buffer {
  return packFrame([FrameKind.Message, PROTOCOL_VERSION, clusterId, m.from, m.to, messageToTuple(m)]);
}

/** msgpack → value, with every decoder failure turned into a `MALFORMED_FRAME` error. */
export function unpackPayload(payload: Uint8Array): unknown {
  if (payload.byteLength === 0) throw new FrameError(TransportErrorCode.MalformedFrame, 'empty frame');
  try {
    return unpackr.unpack(payload);
  } catch (err) {
    throw new FrameError(
      TransportErrorCode.MalformedFrame,
      `frame is not valid msgpack: ${String((err as Error)?.message ?? err).slice(0, 120)}`,
      { cause: err },
    );
  }
}

function bad(what: string): never {
  throw new FrameError(TransportErrorCode.InvalidMessage, what);
}

function bytesOf(v: unknown, n: number, field: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== n)
    bad(`${field} must be ${n} bytes (got ${describe(v)})`);
  return v;
}

function str(v: unknown, field: string, max = 256): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    bad(`${field} must be a non-empty string of at most ${max} characters (got ${describe(v)})`);
  }
  return v;
}

/**
 * Decode a handshake payload. Version and cluster are returned, not judged: the caller
 * refuses them with a reason the peer can show its operator.
 */
export function decodeHandshake(payload: Uint8Array, limits: WireLimits = defaultWireLimits): HandshakeFrame {
  const t = unpackPayload(payload);
  if (!Array.isArray(t) || t.length === 0) bad(`a handshake frame must be an array (got ${describe(t)})`);
  const kind = t[0];
  switch (kind) {
    case FrameKind.Hello: {
      const version = t[1];
      if (typeof version !== 'number' || !Number.isSafeInteger(version)) bad('HELLO without a version');
      // A later version may have changed the rest: report the version before anything else.
      if (!HANDSHAKE_VERSIONS.includes(version))
        return { kind, version, clusterId: '', from: '', to: '', nonce: new Uint8Array(0) };
      if (t.length !== 6) bad(`HELLO has 5 fields, this one ${t.length - 1}`);
      const from = t[3];
      const to = t[4];
      if (!isNodeId(from, limits) || !isNodeId(to, limits)) bad('HELLO with an invalid node id');
      return {
        kind,
        version,
        clusterId: str(t[2], 'clusterId'),
        from,
        to,
        nonce: bytesOf(t[5], NONCE_BYTES, 'nonce'),
      };
    }
    case FrameKind.Challenge: {
      const version = t[1];
      if (typeof version !== 'number' || !Number.isSafeInteger(version)) bad('CHALLENGE without a version');
      if (!HANDSHAKE_VERSIONS.includes(version)) {
        return { kind, version, clusterId: '', from: '', nonce: new Uint8Array(0), proof: new Uint8Array(0) };
      }
      if (t.length !== 6) bad(`CHALLENGE has 5 fields, this one ${t.length - 1}`);
      const from = t[3];
      if (!isNodeId(from, limits)) bad('CHALLENGE with an invalid node id');
      return {
        kind,
        version,
        clusterId: str(t[2], 'clusterId'),
        from,
        nonce: bytesOf(t[4], NONCE_BYTES, 'nonce'),
        proof: bytesOf(t[5], NONCE_BYTES, 'proof'),
      };
    }
    case FrameKind.Auth:
      if (t.length !== 2) bad(`AUTH has 1 field, this one ${t.length - 1}`);
      return { kind, proof: bytesOf(t[1], NONCE_BYTES, 'proof') };
    case FrameKind.Welcome:
      if (t.length !== 1) bad(`WELCOME has no fields, this one ${t.length - 1}`);
      return { kind };
    case FrameKind.Refuse:
      if (t.length !== 3) bad(`REFUSE has 2 fields, this one ${t.length - 1}`);
      return { kind, code: str(t[1], 'code', 64), reason: str(t[2], 'reason', 400) };
    default:
      return bad(`expected a handshake frame, got kind ${describe(kind)}`);
  }
}

/**
 * Decode and validate a MESSAGE payload from an authenticated connection: the version and
 * cluster must be ours, `from` the authenticated peer, `to` this node, and the message
 * must match its schema. Anything else throws a `FrameError`.
 */
export function decodeMessage(payload: Uint8Array, ctx: EnvelopeContext): Message {
  return messageFromEnvelope(unpackPayload(payload), ctx);
}

/** `decodeMessage` on an already unpacked payload. */
export function messageFromEnvelope(t: unknown, ctx: EnvelopeContext): Message {
  if (!Array.isArray(t) || t.length !== 6)
    bad(`a message envelope must be an array of 6 (got ${describe(t)})`);
  if (t[0] !== FrameKind.Message) bad(`expected a message envelope, got kind ${describe(t[0])}`);
  if (t[1] !== PROTOCOL_VERSION) {
    throw new FrameError(
      TransportErrorCode.VersionMismatch,
      `envelope version ${describe(t[1])}, this node speaks ${PROTOCOL_VERSION}`,
    );
  }
  if (t[2] !== ctx.clusterId) {
    throw new FrameError(
      TransportErrorCode.ClusterMismatch,
      `envelope for cluster ${describe(t[2])}, this node is in ${JSON.stringify(ctx.clusterId)}`,
    );
  }
  if (t[3] !== ctx.peer) {
    throw new FrameError(
      TransportErrorCode.Misrouted,
      `envelope claims to come from ${describe(t[3])} on a connection authenticated as ${ctx.peer}`,
    );
  }
  if (t[4] !== ctx.local) {
    throw new FrameError(
      TransportErrorCode.Misrouted,
      `envelope addressed to ${describe(t[4])}, this node is ${ctx.local}`,
    );
  }
  return messageFromTuple(t[5], ctx.peer, ctx.local, ctx.limits);
}
