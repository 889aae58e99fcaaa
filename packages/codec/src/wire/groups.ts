/**
 * The multi-group wire format, protocol version 2: every Raft group of a host shares one
 * connection per peer and direction, so each message names its group. A connection speaks
 * one version, fixed by the handshake: HELLO and CHALLENGE carry 2 instead of 1, and a
 * member of either kind refuses the other with `VERSION_MISMATCH` before anything else is
 * exchanged (a single-group node cannot misread a group's message as its own).
 *
 *   [17, 2, clusterId, from, to, group, message]     GROUP MESSAGE  a Raft message of `group`
 *   [18, 2, clusterId, from, to, control]            HOST           a host message (below)
 *
 *   control: [0, incarnation]               ALIVE    the sender's process is up (per interval)
 *            [1, group, term, commit]       QUIESCE  the leader of `group` stops ticking it
 *            [2, group]                     WAKE     resume ticking `group`
 *            [3, [[group, message], ...]]   BEATS    heartbeats and answers of many groups
 *
 * BEATS carries the `heartbeat` and `heartbeatResponse` messages of several groups (a
 * host coalesces those it sends one peer in one turn): each item is a group and the tuple
 * of a heartbeat or heartbeat response, whose `from` and `to` are the envelope's, as for
 * a GROUP MESSAGE. An item of any other type, a bad group id, a bad tuple, no items or more
 * than `MAX_BEATS` are refused as any malformed envelope is (`INVALID_MESSAGE`).
 *
 * `message` is the tuple of `messages.ts`; `group` an unsigned 32-bit integer. Snapshot
 * frames are those of `snapshot-frames.ts`, with the group as a fourth field of BEGIN.
 */
import { type GroupId, type HostMessage, MAX_BEATS, MAX_GROUP_ID, type Message } from '@quorate/raft';
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { FrameError, TransportErrorCode } from '../errors.js';
import type { EnvelopeContext } from './envelope.js';
import { FRAME_HEADER_BYTES } from './frames.js';
import { describe, MessageCode, messageFromTuple, messageToTuple, type WireLimits } from './messages.js';

/** The protocol version of multi-group connections. */
export const GROUPS_PROTOCOL_VERSION = 2;

export const GroupFrameKind = {
  GroupMessage: 17,
  Host: 18,
} as const;

const HostCode = { alive: 0, quiesce: 1, wake: 2, beats: 3 } as const;

/**
 * The most items in one BEATS host message (`MAX_BEATS` of @quorate/raft's contract). An
 * item is at most 35 bytes (a 32-bit group, a heartbeat of three safe integers), so 1024
 * of them (36 KiB) fit, envelope and all, in the smallest `maxFrameBytes` a transport
 * accepts (64 KiB). `@quorate/multiraft` sends no more than this in one message, and
 * `encodeHostFrame` refuses to.
 */
export { MAX_BEATS };

/** What a multi-group connection delivers. */
export type GroupDelivery =
  | { readonly kind: 'message'; readonly group: GroupId; readonly msg: Message }
  | { readonly kind: 'host'; readonly msg: HostMessage };

const packr = new Packr({ useRecords: false, variableMapSize: true });

function packFrame(value: unknown): Buffer {
  const buf = packr.pack(value, RESERVE_START_SPACE | FRAME_HEADER_BYTES);
  buf.writeUInt32BE(buf.byteLength - FRAME_HEADER_BYTES, 0);
  return buf;
}

/** One group's message as a whole frame. */
export function encodeGroupMessageFrame(clusterId: string, group: GroupId, m: Message): Buffer {
  return packFrame([
    GroupFrameKind.GroupMessage,
    GROUPS_PROTOCOL_VERSION,
    clusterId,
    m.from,
    m.to,
    group,
    messageToTuple(m),
  ]);
}

/** One host message from `from` to `to` as a whole frame. */
export function encodeHostFrame(clusterId: string, from: string, to: string, m: HostMessage): Buffer {
  let control: unknown[];
  switch (m.type) {
    case 'alive':
      control = [HostCode.alive, m.incarnation];
      break;
    case 'quiesce':
      control = [HostCode.quiesce, m.group, m.term, m.commit];
      break;
    case 'wake':
      control = [HostCode.wake, m.group];
      break;
    case 'beats':
      if (m.items.length === 0 || m.items.length > MAX_BEATS)
        throw new RangeError(`beats carries 1 to ${MAX_BEATS} items, not ${m.items.length}`);
      control = [HostCode.beats, m.items.map((b) => [b.group, messageToTuple(b.msg)])];
      break;
  }
  return packFrame([GroupFrameKind.Host, GROUPS_PROTOCOL_VERSION, clusterId, from, to, control]);
}

function bad(what: string): never {
  throw new FrameError(TransportErrorCode.InvalidMessage, what);
}

function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    bad(`${field} must be a non-negative integer (got ${describe(v)})`);
  return v;
}

/** A group id from the wire: an unsigned 32-bit integer. */
export function groupIdOf(v: unknown): GroupId {
  const g = uint(v, 'group');
  if (g > MAX_GROUP_ID) bad(`group ${g} is above ${MAX_GROUP_ID}`);
  return g;
}

/**
 * Decode and validate an unpacked payload from an authenticated multi-group connection
 * (snapshot frames aside): kind, version, cluster, sender and recipient as for a single
 * group's envelope, then the group and its message, or the host message.
 */
export function groupEnvelopeFrom(t: unknown, ctx: EnvelopeContext): GroupDelivery {
  if (!Array.isArray(t) || t.length < 2) bad(`a group envelope must be an array (got ${describe(t)})`);
  const kind = t[0];
  if (kind !== GroupFrameKind.GroupMessage && kind !== GroupFrameKind.Host) {
    if (kind === 16) {
      throw new FrameError(
        TransportErrorCode.VersionMismatch,
        `a single-group message envelope (protocol 1) on a multi-group connection (protocol ${GROUPS_PROTOCOL_VERSION})`,
      );
    }
    bad(`expected a group or host envelope, got kind ${describe(kind)}`);
  }
  if (t[1] !== GROUPS_PROTOCOL_VERSION) {
    throw new FrameError(
      TransportErrorCode.VersionMismatch,
      `envelope version ${describe(t[1])}, this connection speaks ${GROUPS_PROTOCOL_VERSION}`,
    );
  }
  const arity = kind === GroupFrameKind.GroupMessage ? 7 : 6;
  if (t.length !== arity)
    bad(`a ${kind === 17 ? 'group' : 'host'} envelope has ${arity} fields, this one ${t.length}`);
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
  if (kind === GroupFrameKind.GroupMessage) {
    const group = groupIdOf(t[5]);
    return { kind: 'message', group, msg: messageFromTuple(t[6], ctx.peer, ctx.local, ctx.limits) };
  }
  return { kind: 'host', msg: hostMessageFrom(t[5], ctx) };
}

function hostMessageFrom(c: unknown, ctx: EnvelopeContext): HostMessage {
  if (!Array.isArray(c) || c.length === 0) bad(`a host message must be an array (got ${describe(c)})`);
  const n = (k: number) => {
    if (c.length !== k + 1) bad(`host message ${describe(c[0])} has ${k} fields, this one ${c.length - 1}`);
  };
  switch (c[0]) {
    case HostCode.alive:
      n(1);
      return { type: 'alive', incarnation: uint(c[1], 'incarnation') };
    case HostCode.quiesce:
      n(3);
      return {
        type: 'quiesce',
        group: groupIdOf(c[1]),
        term: uint(c[2], 'term'),
        commit: uint(c[3], 'commit'),
      };
    case HostCode.wake:
      n(1);
      return { type: 'wake', group: groupIdOf(c[1]) };
    case HostCode.beats:
      n(1);
      return { type: 'beats', items: beatsFrom(c[1], ctx.peer, ctx.local, ctx.limits) };
    default:
      return bad(`unknown host message code ${describe(c[0])}`);
  }
}

type Beats = Extract<HostMessage, { type: 'beats' }>['items'];

/** The items of a BEATS message: each a group and its heartbeat or heartbeat response. */
function beatsFrom(v: unknown, from: string, to: string, limits: WireLimits): Beats {
  if (!Array.isArray(v)) bad(`beats must be an array (got ${describe(v)})`);
  if (v.length === 0 || v.length > MAX_BEATS)
    bad(`beats carries 1 to ${MAX_BEATS} items, this one ${v.length}`);
  const items: Beats[number][] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const it: unknown = v[i];
    if (!Array.isArray(it) || it.length !== 2)
      bad(`beat ${i} must be an array [group, message] (got ${describe(it)})`);
    const group = groupIdOf(it[0]);
    // The type first: nothing but a heartbeat or its answer is decoded here.
    const code = Array.isArray(it[1]) ? it[1][0] : undefined;
    if (code !== MessageCode.heartbeat && code !== MessageCode.heartbeatResponse)
      bad(`beat ${i} must be a heartbeat or heartbeatResponse (got type ${describe(code)})`);
    const msg = messageFromTuple(it[1], from, to, limits);
    items[i] = { group, msg: msg as Beats[number]['msg'] };
  }
  return items;
}
