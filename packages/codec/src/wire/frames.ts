/**
 * Length-prefixed framing, apart from any socket: a frame is a 4-byte big-endian payload
 * length followed by the payload. `FrameReader` turns arbitrary chunks (TCP) or whole
 * messages (WebSocket) back into payloads, refusing an oversized frame as soon as its
 * header arrives, before buffering its body.
 */
import { FrameError, TransportErrorCode } from '../errors.js';

export const FRAME_HEADER_BYTES = 4;
/** Largest frame the format can describe. */
export const MAX_FRAME_LIMIT = 0xffff_ffff;

/** One frame as a single buffer (header + payload). */
export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  out.writeUInt32BE(payload.byteLength, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Reassembles frames from a byte stream. `maxFrameBytes` can be changed between pushes
 * (a connection accepts only small frames until it has authenticated).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The payload length of the frame being read, once its header is complete. */
  private need = -1;

  constructor(public maxFrameBytes: number) {}

  /** Bytes held waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Add `chunk` and return the payloads it completes, in order. Throws `FrameError`
   * (`FRAME_TOO_LARGE`) on a header announcing more than `maxFrameBytes`; the reader must
   * then be discarded. Returned payloads may be views of `chunk`.
   */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.buffered === 0) {
      // Fast path: frames that lie wholly in this chunk are returned as views.
      let off = 0;
      while (chunk.byteLength - off >= FRAME_HEADER_BYTES) {
        const len = chunk.readUInt32BE(off);
        this.check(len);
        if (chunk.byteLength - off - FRAME_HEADER_BYTES < len) break;
        out.push(chunk.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len));
        off += FRAME_HEADER_BYTES + len;
      }
      if (off < chunk.byteLength) this.keep(chunk.subarray(off));
      if (this.buffered >= FRAME_HEADER_BYTES) this.readHeader();
      return out;
    }
    this.keep(chunk);
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) return out;
        this.readHeader();
      }
      if (this.buffered < FRAME_HEADER_BYTES + this.need) return out;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      const end = FRAME_HEADER_BYTES + this.need;
      out.push(all.subarray(FRAME_HEADER_BYTES, end));
      const rest = all.subarray(end);
      this.chunks = rest.byteLength > 0 ? [rest] : [];
      this.buffered = rest.byteLength;
      this.need = -1;
    }
  }

  private keep(b: Buffer): void {
    this.chunks.push(b);
    this.buffered += b.byteLength;
  }

  private readHeader(): void {
    let head = this.chunks[0]!;
    if (head.byteLength < FRAME_HEADER_BYTES) {
      head = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [head];
    }
    this.need = head.readUInt32BE(0);
    this.check(this.need);
  }

  private check(len: number): void {
    if (len > this.maxFrameBytes) {
      throw new FrameError(
        TransportErrorCode.FrameTooLarge,
        `frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes}`,
      );
    }
  }
}
