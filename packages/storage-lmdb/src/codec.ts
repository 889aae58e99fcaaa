import * as zlib from 'node:zlib';
import type { ConfState, Entry, EntryType, HardState, SnapshotMeta } from '@quorate/raft';

/**
 * How values are laid out on disk. Log entries are raw bytes (no msgpack): a fixed header
 * and the payload, with a CRC-32 so that a damaged page is reported instead of replayed.
 *
 *   0      codec version (1)
 *   1      entry type
 *   2..9   term, float64 little-endian (exact for every integer below 2^53)
 *   10..13 CRC-32 of bytes 0..9 followed by the payload
 *   14..   payload
 */
const ENTRY_CODEC = 1;
export const ENTRY_HEADER = 14;

type Crc = (data: Uint8Array, seed?: number) => number;

let table: Uint32Array | null = null;
/** Table-driven CRC-32 (IEEE), for Node versions without `zlib.crc32` (added in 20.15). */
const crcFallback: Crc = (data, seed = 0) => {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
};

export const crc32: Crc =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (zlib as unknown as { crc32: Crc }).crc32
    : crcFallback;

/** The CRC-32 of an encoded entry: bytes 0..9, then the payload (bytes 10..13 hold it). */
function entryCrc(value: Uint8Array): number {
  return crc32(value.subarray(ENTRY_HEADER), crc32(value.subarray(0, 10)));
}

export function encodeEntry(e: Entry): Buffer {
  const buf = Buffer.allocUnsafe(ENTRY_HEADER + e.data.byteLength);
  buf[0] = ENTRY_CODEC;
  buf[1] = e.type;
  buf.writeDoubleLE(e.term, 2);
  buf.set(e.data, ENTRY_HEADER);
  buf.writeUInt32LE(entryCrc(buf), 10);
  return buf;
}

/**
 * Verify an entry and return its term, without copying the payload (the CRC-32 is
 * computed over the value in place); a string says what is wrong with it. Every read
 * that hands out a term goes through here: a damaged entry is reported, never trusted.
 */
export function verifiedTerm(index: number, value: Uint8Array): number | string {
  const view = checkEntry(index, value);
  return typeof view === 'string' ? view : view.getFloat64(2, true);
}

/** A view of a whole entry, or what is wrong with it. */
function checkEntry(index: number, value: Uint8Array): DataView | string {
  if (value.length < ENTRY_HEADER) return `entry ${index} is ${value.length} bytes, shorter than its header`;
  if (value[0] !== ENTRY_CODEC) return `entry ${index} has an unknown codec version ${value[0]}`;
  const view = new DataView(value.buffer, value.byteOffset, value.length);
  return entryCrc(value) === view.getUint32(10, true) ? view : `entry ${index} fails its checksum`;
}

/** Decode and verify an entry; a string says what is wrong with it. */
export function decodeEntry(index: number, value: Uint8Array): Entry | string {
  const view = checkEntry(index, value);
  if (typeof view === 'string') return view;
  const term = view.getFloat64(2, true);
  const type = value[1]! as EntryType;
  // A copy: the caller owns it, and lmdb may reuse the buffer it read into.
  return { index, term, type, data: value.slice(ENTRY_HEADER) };
}

// ------------------------------------------------------------------------------------
// Shape checks for the records of the state database: whatever a damaged file holds
// must be refused at open, not handed to the core.

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isIds = (x: unknown): x is string[] => Array.isArray(x) && x.every((v) => typeof v === 'string');
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

export function isHardState(x: unknown): x is HardState {
  return isObj(x) && isCount(x.term) && isCount(x.commit) && (x.vote === null || typeof x.vote === 'string');
}

export function isConfState(x: unknown): x is ConfState {
  return isObj(x) && isIds(x.voters) && isIds(x.learners) && isIds(x.votersOutgoing);
}

export function isSnapshotMeta(x: unknown): x is SnapshotMeta {
  return isObj(x) && isCount(x.index) && isCount(x.term) && isConfState(x.conf);
}

export function isPoint(x: unknown): x is { index: number; term: number } {
  return isObj(x) && isCount(x.index) && isCount(x.term);
}

/** Plain copies, so that what is stored never aliases what the caller may mutate. */
export const plainHardState = (h: HardState): HardState => ({ term: h.term, vote: h.vote, commit: h.commit });
export const plainConf = (c: ConfState): ConfState => ({
  voters: [...c.voters],
  learners: [...c.learners],
  votersOutgoing: [...c.votersOutgoing],
});
export const plainMeta = (m: SnapshotMeta): SnapshotMeta => ({
  index: m.index,
  term: m.term,
  conf: plainConf(m.conf),
});
