/**
 * quorate's client protocol: msgpack messages in length-prefixed frames over one TCP
 * connection (or one WebSocket message per frame body), many requests in flight at once,
 * answered in any order. Shared by `@quorate/client` (the `ProtocolWire`) and the node,
 * which serves it; the format is documented in docs/client-protocol.md.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of msgpack: one map.
 *
 * Client → member:
 * - first, `{t: "hello", versions: [1], token?}`: the versions the client speaks and the
 *   bearer token when the cluster requires one;
 * - then requests `{id, op, ...arguments, timeoutMs?, cid?, seq?}`: `id` an unsigned
 *   integer the client chooses (unique among its requests in flight), `cid`/`seq` the
 *   exactly-once identity of a write.
 *
 * Member → client:
 * - `{t: "hello", version, nodeId, leaderId, leaderAddress, groups?}` after a good hello
 *   (`groups`: the Raft groups a sharded member spreads keys over; absent, one);
 * - `{t: "error", code, message, versions?}` for a problem with the connection itself (a
 *   version it does not speak, a bad token, a request before the hello, a malformed or
 *   oversized frame), after which it closes the connection;
 * - answers `{id, r: result}` or `{id, e: {code, message, status, retryable, ...}}`, where
 *   `code` and `status` are the HTTP API's for the same error (a sharded member's
 *   `NOT_LEADER` for a key's operation adds the key's `group`).
 */
import { Packr, Unpackr } from 'msgpackr';

/** The protocol versions this build speaks. */
export const PROTOCOL_VERSIONS: readonly number[] = [1];
export const PROTOCOL_VERSION = 1;
/** The path of the WebSocket form, on the same port. */
export const PROTOCOL_WS_PATH = '/quorate';
/** URL schemes of client-protocol endpoints. */
export const PROTOCOL_SCHEMES = ['quorate:', 'quorates:'] as const;

/** Operations a request can name. */
export type ProtocolOp =
  | 'get'
  | 'put'
  | 'delete'
  | 'list'
  | 'txn'
  | 'lease.acquire'
  | 'lease.renew'
  | 'lease.release'
  | 'lease.get'
  | 'health'
  | 'watch'
  | 'watch.cancel';

export const PROTOCOL_OPS: ReadonlySet<string> = new Set<ProtocolOp>([
  'get',
  'put',
  'delete',
  'list',
  'txn',
  'lease.acquire',
  'lease.renew',
  'lease.release',
  'lease.get',
  'health',
  'watch',
  'watch.cancel',
]);

export interface ProtocolRequest {
  readonly op: ProtocolOp;
  readonly [arg: string]: unknown;
}

export interface ProtocolError {
  readonly code: string;
  readonly message: string;
  /** The HTTP status the API gives the same error (421 NOT_LEADER, 503, 504, 409...). */
  readonly status: number;
  readonly retryable?: boolean;
  readonly [extra: string]: unknown;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** One message as a frame: its length, then its msgpack bytes. */
export function encodeFrame(message: unknown): Buffer {
  const body = packr.pack(message);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** The message of one frame body; throws when the bytes are not one msgpack value. */
export function decodeBody(body: Uint8Array): unknown {
  return unpackr.unpack(body);
}

export class FrameTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`a frame of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = 'FrameTooLargeError';
  }
}

/**
 * Cuts a byte stream into frame bodies. A declared length above `maxFrameBytes` throws
 * `FrameTooLargeError` before any of it is buffered.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Frame bodies completed by `chunk`, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    let at = 0;
    while (this.buf.length - at >= 4) {
      const size = this.buf.readUInt32BE(at);
      if (size > this.maxFrameBytes) throw new FrameTooLargeError(size, this.maxFrameBytes);
      if (this.buf.length - at - 4 < size) break;
      out.push(this.buf.subarray(at + 4, at + 4 + size));
      at += 4 + size;
    }
    this.buf = at === 0 ? this.buf : this.buf.subarray(at);
    return out;
  }
}

/** Whether `url` names a client-protocol endpoint (`quorate://host:port`). */
export function isProtocolUrl(url: string): boolean {
  return /^quorates?:\/\//i.test(url);
}
