/**
 * Snapshot streaming frames, after the handshake, on the same connections as messages.
 * Protocol version 1:
 *
 *   [32, sid, snapshotMessage]            BEGIN  sender → receiver: a snapshot transfer starts
 *   [33, sid, seq, bytes, crc32]          CHUNK  sender → receiver: chunk `seq` (0, 1, ...)
 *   [34, sid, chunks, bytes, sha256]      END    sender → receiver: that was all of it
 *   [35, sid, seq]                        ACK    receiver → sender: chunks up to `seq` consumed
 *   [36, sid, ok, reason]                 DONE   receiver → sender: stored (or why not)
 *   [37, sid, reason]                     ABORT  sender → receiver: the transfer is off
 *   [38, sid]                             RESUME  sender → receiver: where are you in `sid`?
 *   [39, sid, known, next, consumed]      RESUMED receiver → sender: the next chunk it needs
 *                                         and how many it has consumed (or: no such transfer)
 *
 * Frames from a receiver travel on its own connection to the sender, as messages do.
 * The sender keeps a bounded window of chunks ahead of the receiver's ACK, so neither end
 * buffers more than that window whatever the snapshot's size; each chunk carries a CRC-32
 * and the whole a SHA-256, checked before the receiver reports it stored. When a connection
 * breaks mid-transfer, RESUME / RESUMED pick the transfer up where the receiver is: the
 * sender still holds every chunk past the receiver's last ACK, so it resends from `next`.
 */
import type { Message, NodeId } from '@quorate/raft';
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { FrameError, TransportErrorCode } from '../errors.js';
import { FRAME_HEADER_BYTES } from './frames.js';
import { describe, messageFromTuple, messageToTuple, type WireLimits } from './messages.js';

export const SnapshotFrameKind = {
  Begin: 32,
  Chunk: 33,
  End: 34,
  Ack: 35,
  Done: 36,
  Abort: 37,
  Resume: 38,
  Resumed: 39,
} as const;

export type SnapshotMessage = Extract<Message, { type: 'snapshot' }>;

export type SnapshotFrame =
  | {
      kind: typeof SnapshotFrameKind.Begin;
      sid: number;
      msg: SnapshotMessage;
      /** The Raft group, on multi-group connections (protocol 2) only. */
      group?: number;
    }
  | { kind: typeof SnapshotFrameKind.Chunk; sid: number; seq: number; data: Uint8Array; crc: number }
  | { kind: typeof SnapshotFrameKind.End; sid: number; chunks: number; bytes: number; sha256: Uint8Array }
  | { kind: typeof SnapshotFrameKind.Ack; sid: number; seq: number }
  | { kind: typeof SnapshotFrameKind.Done; sid: number; ok: boolean; reason: string }
  | { kind: typeof SnapshotFrameKind.Abort; sid: number; reason: string }
  | { kind: typeof SnapshotFrameKind.Resume; sid: number }
  | {
      kind: typeof SnapshotFrameKind.Resumed;
      sid: number;
      /** False: the receiver has no such transfer (it never saw BEGIN, or it restarted). */
      known: boolean;
      /** The next chunk the receiver needs. */
      next: number;
      /** Chunks the receiver has consumed (its last ACK plus one). */
      consumed: number;
    };

const packr = new Packr({ useRecords: false, variableMapSize: true });

function packFrame(value: unknown): Buffer {
  const buf = packr.pack(value, RESERVE_START_SPACE | FRAME_HEADER_BYTES);
  buf.writeUInt32BE(buf.byteLength - FRAME_HEADER_BYTES, 0);
  return buf;
}

export function encodeSnapshotFrame(f: SnapshotFrame): Buffer {
  switch (f.kind) {
    case SnapshotFrameKind.Begin:
      return packFrame(
        f.group === undefined
          ? [f.kind, f.sid, messageToTuple(f.msg)]
          : [f.kind, f.sid, messageToTuple(f.msg), f.group],
      );
    case SnapshotFrameKind.Chunk:
      return packFrame([f.kind, f.sid, f.seq, f.data, f.crc]);
    case SnapshotFrameKind.End:
      return packFrame([f.kind, f.sid, f.chunks, f.bytes, f.sha256]);
    case SnapshotFrameKind.Ack:
      return packFrame([f.kind, f.sid, f.seq]);
    case SnapshotFrameKind.Done:
      return packFrame([f.kind, f.sid, f.ok, f.reason.slice(0, 400)]);
    case SnapshotFrameKind.Abort:
      return packFrame([f.kind, f.sid, f.reason.slice(0, 400)]);
    case SnapshotFrameKind.Resume:
      return packFrame([f.kind, f.sid]);
    case SnapshotFrameKind.Resumed:
      return packFrame([f.kind, f.sid, f.known, f.next, f.consumed]);
  }
}

export function isSnapshotFrameKind(kind: unknown): boolean {
  return typeof kind === 'number' && kind >= SnapshotFrameKind.Begin && kind <= SnapshotFrameKind.Resumed;
}

function bad(what: string): never {
  throw new FrameError(TransportErrorCode.InvalidMessage, what);
}

function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    bad(`${field} must be a non-negative integer (got ${describe(v)})`);
  return v;
}

function text(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length > 400)
    bad(`${field} must be a string of at most 400 characters (got ${describe(v)})`);
  return v;
}

/**
 * Validate an unpacked snapshot frame from the authenticated `peer` to `local`. A chunk's
 * data may be at most `maxChunkBytes`. On a multi-group connection (`grouped`), BEGIN
 * names the group as its fourth field; on a single-group one it has three.
 */
export function decodeSnapshotFrame(
  t: unknown[],
  peer: NodeId,
  local: NodeId,
  limits: WireLimits,
  maxChunkBytes: number,
  grouped = false,
): SnapshotFrame {
  const kind = t[0];
  const arity = (n: number, name: string) => {
    if (t.length !== n) bad(`${name} has ${n - 1} fields, this one ${t.length - 1}`);
  };
  switch (kind) {
    case SnapshotFrameKind.Begin: {
      arity(grouped ? 4 : 3, 'SNAPSHOT BEGIN');
      const msg = messageFromTuple(t[2], peer, local, limits);
      if (msg.type !== 'snapshot') bad(`SNAPSHOT BEGIN carries a ${msg.type} message`);
      if (!grouped) return { kind, sid: uint(t[1], 'sid'), msg };
      const group = uint(t[3], 'group');
      if (group > 0xffff_ffff) bad(`group ${group} is above ${0xffff_ffff}`);
      return { kind, sid: uint(t[1], 'sid'), msg, group };
    }
    case SnapshotFrameKind.Chunk: {
      arity(5, 'SNAPSHOT CHUNK');
      const data = t[3];
      if (!(data instanceof Uint8Array)) bad(`a snapshot chunk must be bytes (got ${describe(data)})`);
      if (data.byteLength > maxChunkBytes)
        bad(`a snapshot chunk of ${data.byteLength} bytes exceeds ${maxChunkBytes}`);
      return { kind, sid: uint(t[1], 'sid'), seq: uint(t[2], 'seq'), data, crc: uint(t[4], 'crc') };
    }
    case SnapshotFrameKind.End: {
      arity(5, 'SNAPSHOT END');
      const sha = t[4];
      if (!(sha instanceof Uint8Array) || sha.byteLength !== 32) bad('SNAPSHOT END needs a 32-byte SHA-256');
      return {
        kind,
        sid: uint(t[1], 'sid'),
        chunks: uint(t[2], 'chunks'),
        bytes: uint(t[3], 'bytes'),
        sha256: sha,
      };
    }
    case SnapshotFrameKind.Ack:
      arity(3, 'SNAPSHOT ACK');
      return { kind, sid: uint(t[1], 'sid'), seq: uint(t[2], 'seq') };
    case SnapshotFrameKind.Done: {
      arity(4, 'SNAPSHOT DONE');
      if (typeof t[2] !== 'boolean') bad('SNAPSHOT DONE needs ok: boolean');
      return { kind, sid: uint(t[1], 'sid'), ok: t[2], reason: text(t[3], 'reason') };
    }
    case SnapshotFrameKind.Abort:
      arity(3, 'SNAPSHOT ABORT');
      return { kind, sid: uint(t[1], 'sid'), reason: text(t[2], 'reason') };
    case SnapshotFrameKind.Resume:
      arity(2, 'SNAPSHOT RESUME');
      return { kind, sid: uint(t[1], 'sid') };
    case SnapshotFrameKind.Resumed: {
      arity(5, 'SNAPSHOT RESUMED');
      if (typeof t[2] !== 'boolean') bad('SNAPSHOT RESUMED needs known: boolean');
      return {
        kind,
        sid: uint(t[1], 'sid'),
        known: t[2],
        next: uint(t[3], 'next'),
        consumed: uint(t[4], 'consumed'),
      };
    }
    default:
      return bad(`unknown snapshot frame kind ${describe(kind)}`);
  }
}
