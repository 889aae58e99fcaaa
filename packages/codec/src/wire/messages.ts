/**
 * Messages on the wire: each `Message` of the core becomes a positional tuple whose first
 * element is a numeric type code. Positions instead of keys keep frames small and make the
 * schema exact: a tuple of the wrong length, a field of the wrong type, an index that is
 * not a non-negative safe integer, an unknown type code — each is refused by
 * `messageFromTuple`, which is the only way bytes from the network become a `Message`.
 *
 * `from` and `to` are not in the tuple: they live in the envelope, where the connection
 * checks them against the authenticated peer and the local id.
 */
import type { ConfState, Entry, Message, MessageType, NodeId } from '@quorate/raft';
import { FrameError, TransportErrorCode } from '../errors.js';

/** Type codes on the wire. Never renumber: they are part of protocol version 1. */
export const MessageCode = {
  append: 0,
  appendResponse: 1,
  vote: 2,
  preVote: 3,
  voteResponse: 4,
  preVoteResponse: 5,
  heartbeat: 6,
  heartbeatResponse: 7,
  snapshot: 8,
  timeoutNow: 9,
  readIndex: 10,
  readIndexResponse: 11,
} as const satisfies Record<MessageType, number>;

/** Bounds applied to decoded messages, beyond the types themselves. */
export interface WireLimits {
  /** Most entries in one append message. Default 16384 (the core sends at most 4096 by default). */
  readonly maxEntries: number;
  /** Most ids in one membership list of a snapshot. Default 1024. */
  readonly maxMembers: number;
  /** Longest node id, in UTF-16 code units. Default 256. */
  readonly maxIdLength: number;
}

export const defaultWireLimits: WireLimits = Object.freeze({
  maxEntries: 16384,
  maxMembers: 1024,
  maxIdLength: 256,
});

type Tuple = unknown[];

/** The positional form of `m`, without `from` and `to`. */
export function messageToTuple(m: Message): Tuple {
  switch (m.type) {
    case 'append': {
      const entries: Tuple = new Array(m.entries.length);
      for (let i = 0; i < m.entries.length; i++) {
        const e = m.entries[i]!;
        entries[i] = [e.index, e.term, e.type, e.data];
      }
      return [MessageCode.append, m.term, m.prevIndex, m.prevTerm, m.commit, entries];
    }
    case 'appendResponse':
      return [MessageCode.appendResponse, m.term, m.reject, m.index, m.hintIndex, m.hintTerm];
    case 'vote':
    case 'preVote':
      return [MessageCode[m.type], m.term, m.lastIndex, m.lastTerm, m.transfer];
    case 'voteResponse':
    case 'preVoteResponse':
      return [MessageCode[m.type], m.term, m.reject];
    case 'heartbeat':
      return [MessageCode.heartbeat, m.term, m.commit, m.readRound];
    case 'heartbeatResponse':
      return [MessageCode.heartbeatResponse, m.term, m.readRound];
    case 'snapshot': {
      const s = m.snapshot;
      return [
        MessageCode.snapshot,
        m.term,
        s.index,
        s.term,
        [...s.conf.voters],
        [...s.conf.learners],
        [...s.conf.votersOutgoing],
      ];
    }
    case 'timeoutNow':
      return [MessageCode.timeoutNow, m.term];
    case 'readIndex':
      return [MessageCode.readIndex, m.term, m.requestId];
    case 'readIndexResponse':
      return [MessageCode.readIndexResponse, m.term, m.requestId, m.index, m.reject];
  }
}

function invalid(what: string): never {
  throw new FrameError(TransportErrorCode.InvalidMessage, what);
}

/** A non-negative safe integer (indexes, terms, counters). */
function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    invalid(`${field} must be a non-negative integer (got ${describe(v)})`);
  }
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') invalid(`${field} must be a boolean (got ${describe(v)})`);
  return v;
}

/** Whether `v` is a usable node id under `limits`. */
export function isNodeId(v: unknown, limits: WireLimits = defaultWireLimits): v is NodeId {
  return typeof v === 'string' && v.length > 0 && v.length <= limits.maxIdLength;
}

function ids(v: unknown, field: string, limits: WireLimits): NodeId[] {
  if (!Array.isArray(v)) invalid(`${field} must be an array (got ${describe(v)})`);
  if (v.length > limits.maxMembers) invalid(`${field} lists ${v.length} ids, more than ${limits.maxMembers}`);
  for (const id of v)
    if (!isNodeId(id, limits)) invalid(`${field} holds an invalid node id (${describe(id)})`);
  return v as NodeId[];
}

function arity(t: Tuple, n: number, type: string): void {
  if (t.length !== n) invalid(`a ${type} message has ${n - 1} fields, this one ${t.length - 1}`);
}

/**
 * The append's entries, checked for what every leader guarantees: dense indexes right
 * after `prevIndex`, terms never decreasing, never below `prevTerm` nor above the message
 * term, known entry types, bytes for data.
 */
function entries(v: unknown, prevIndex: number, prevTerm: number, term: number, limits: WireLimits): Entry[] {
  if (!Array.isArray(v)) invalid(`entries must be an array (got ${describe(v)})`);
  if (v.length > limits.maxEntries)
    invalid(`an append carries ${v.length} entries, more than ${limits.maxEntries}`);
  const out: Entry[] = new Array(v.length);
  let lastTerm = prevTerm;
  for (let i = 0; i < v.length; i++) {
    const e = v[i];
    if (!Array.isArray(e) || e.length !== 4) invalid(`entry ${i} must be [index, term, type, data]`);
    const index = uint(e[0], `entries[${i}].index`);
    const eterm = uint(e[1], `entries[${i}].term`);
    const type = e[2];
    const data = e[3];
    if (index !== prevIndex + 1 + i)
      invalid(`entries[${i}].index is ${index}, expected ${prevIndex + 1 + i}`);
    if (eterm < lastTerm || eterm > term) {
      invalid(`entries[${i}].term ${eterm} is outside [${lastTerm}, ${term}]`);
    }
    if (type !== 0 && type !== 1) invalid(`entries[${i}].type must be 0 or 1 (got ${describe(type)})`);
    if (!(data instanceof Uint8Array)) invalid(`entries[${i}].data must be bytes (got ${describe(data)})`);
    lastTerm = eterm;
    out[i] = { index, term: eterm, type, data };
  }
  return out;
}

/**
 * Check a decoded tuple against the message schema and build the `Message`. Throws a
 * `FrameError` with code `INVALID_MESSAGE` naming the first problem found.
 */
export function messageFromTuple(
  t: unknown,
  from: NodeId,
  to: NodeId,
  limits: WireLimits = defaultWireLimits,
): Message {
  if (!Array.isArray(t) || t.length < 2)
    invalid(`a message must be an array [type, term, ...] (got ${describe(t)})`);
  const code = t[0];
  const term = uint(t[1], 'term');
  switch (code) {
    case MessageCode.append: {
      arity(t, 6, 'append');
      const prevIndex = uint(t[2], 'prevIndex');
      const prevTerm = uint(t[3], 'prevTerm');
      if (prevTerm > term) invalid(`prevTerm ${prevTerm} is above the message term ${term}`);
      const commit = uint(t[4], 'commit');
      return {
        type: 'append',
        from,
        to,
        term,
        prevIndex,
        prevTerm,
        commit,
        entries: entries(t[5], prevIndex, prevTerm, term, limits),
      };
    }
    case MessageCode.appendResponse:
      arity(t, 6, 'appendResponse');
      return {
        type: 'appendResponse',
        from,
        to,
        term,
        reject: bool(t[2], 'reject'),
        index: uint(t[3], 'index'),
        hintIndex: uint(t[4], 'hintIndex'),
        hintTerm: uint(t[5], 'hintTerm'),
      };
    case MessageCode.vote:
    case MessageCode.preVote:
      arity(t, 5, 'vote');
      return {
        type: code === MessageCode.vote ? 'vote' : 'preVote',
        from,
        to,
        term,
        lastIndex: uint(t[2], 'lastIndex'),
        lastTerm: uint(t[3], 'lastTerm'),
        transfer: bool(t[4], 'transfer'),
      };
    case MessageCode.voteResponse:
    case MessageCode.preVoteResponse:
      arity(t, 3, 'voteResponse');
      return {
        type: code === MessageCode.voteResponse ? 'voteResponse' : 'preVoteResponse',
        from,
        to,
        term,
        reject: bool(t[2], 'reject'),
      };
    case MessageCode.heartbeat:
      arity(t, 4, 'heartbeat');
      return {
        type: 'heartbeat',
        from,
        to,
        term,
        commit: uint(t[2], 'commit'),
        readRound: uint(t[3], 'readRound'),
      };
    case MessageCode.heartbeatResponse:
      arity(t, 3, 'heartbeatResponse');
      return { type: 'heartbeatResponse', from, to, term, readRound: uint(t[2], 'readRound') };
    case MessageCode.snapshot: {
      arity(t, 7, 'snapshot');
      const index = uint(t[2], 'snapshot.index');
      const sterm = uint(t[3], 'snapshot.term');
      const conf: ConfState = {
        voters: ids(t[4], 'snapshot.conf.voters', limits),
        learners: ids(t[5], 'snapshot.conf.learners', limits),
        votersOutgoing: ids(t[6], 'snapshot.conf.votersOutgoing', limits),
      };
      return { type: 'snapshot', from, to, term, snapshot: { index, term: sterm, conf } };
    }
    case MessageCode.timeoutNow:
      arity(t, 2, 'timeoutNow');
      return { type: 'timeoutNow', from, to, term };
    case MessageCode.readIndex:
      arity(t, 3, 'readIndex');
      return { type: 'readIndex', from, to, term, requestId: uint(t[2], 'requestId') };
    case MessageCode.readIndexResponse:
      arity(t, 5, 'readIndexResponse');
      return {
        type: 'readIndexResponse',
        from,
        to,
        term,
        requestId: uint(t[2], 'requestId'),
        index: uint(t[3], 'index'),
        reject: bool(t[4], 'reject'),
      };
    default:
      return invalid(`unknown message type ${describe(code)}`);
  }
}

/** A short, safe description of an untrusted value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  switch (typeof v) {
    case 'string':
      return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
    case 'number':
    case 'boolean':
      return String(v);
    case 'bigint':
      return 'a 64-bit integer';
    case 'object':
      return Object.prototype.toString.call(v);
    default:
      return typeof v;
  }
}
