import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeHandshake,
  encodeHello,
  FrameKind,
  FrameReader,
  frame,
  freshNonce,
  handshakeProof,
  isTransportError,
  PROTOCOL_VERSION,
  TransportErrorCode,
  verifyProof,
} from '../src/index.js';

describe('FrameReader', () => {
  it('reassembles frames however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map((p) => frame(p)));
          const r = new FrameReader(1024);
          const out: Buffer[] = [];
          let off = 0;
          let i = 0;
          while (off < stream.byteLength) {
            const n = cuts[i++ % cuts.length]!;
            out.push(...r.push(stream.subarray(off, off + n)));
            off += n;
          }
          expect(out.map((b) => [...b])).toEqual(payloads.map((p) => [...p]));
          expect(r.pendingBytes).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses an oversized frame as soon as its header arrives', () => {
    const r = new FrameReader(100);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(101);
    let err: unknown;
    try {
      r.push(header.subarray(0, 2));
      r.push(header.subarray(2));
    } catch (e) {
      err = e;
    }
    expect(isTransportError(err, TransportErrorCode.FrameTooLarge)).toBe(true);
    expect(() => new FrameReader(100).push(Buffer.concat([frame(Buffer.alloc(5)), header]))).toThrow(
      /101 bytes/,
    );
  });

  it('keeps a partial frame as pending bytes', () => {
    const r = new FrameReader(100);
    expect(r.push(frame(Buffer.alloc(10)).subarray(0, 7))).toEqual([]);
    expect(r.pendingBytes).toBe(7);
  });
});

describe('handshake', () => {
  const secret = new TextEncoder().encode('0123456789abcdef');
  const input = {
    clusterId: 'c1',
    initiator: 'n1',
    responder: 'n2',
    initiatorNonce: freshNonce(),
    responderNonce: freshNonce(),
  };

  it('proofs verify only for the same role, secret, ids, cluster and nonces', () => {
    const p = handshakeProof(secret, 'initiator', input);
    expect(p.byteLength).toBe(32);
    expect(verifyProof(secret, 'initiator', input, p)).toBe(true);
    expect(verifyProof(secret, 'responder', input, p)).toBe(false);
    expect(verifyProof(new TextEncoder().encode('0123456789abcdeX'), 'initiator', input, p)).toBe(false);
    for (const change of [
      { clusterId: 'c2' },
      { initiator: 'n3' },
      { responder: 'n3' },
      { initiatorNonce: freshNonce() },
      { responderNonce: freshNonce() },
    ]) {
      expect(verifyProof(secret, 'initiator', { ...input, ...change }, p)).toBe(false);
    }
    expect(verifyProof(secret, 'initiator', input, p.subarray(0, 31))).toBe(false);
  });

  it('ids are length-prefixed, so shifting characters between fields changes the proof', () => {
    const a = handshakeProof(secret, 'initiator', { ...input, initiator: 'n1n', responder: '2' });
    const b = handshakeProof(secret, 'initiator', { ...input, initiator: 'n1', responder: 'n2' });
    expect(a.equals(b)).toBe(false);
  });

  it('reads the version of a HELLO from any later protocol first', () => {
    const hello = encodeHello({
      version: PROTOCOL_VERSION,
      clusterId: 'c',
      from: 'a',
      to: 'b',
      nonce: freshNonce(),
    });
    const h = decodeHandshake(hello.subarray(4));
    expect(h).toMatchObject({ kind: FrameKind.Hello, from: 'a', to: 'b' });
    const future = encodeHello({ version: 7, clusterId: 'c', from: 'a', to: 'b', nonce: new Uint8Array(3) });
    expect(decodeHandshake(future.subarray(4))).toMatchObject({ kind: FrameKind.Hello, version: 7 });
    const badNonce = encodeHello({
      version: 1,
      clusterId: 'c',
      from: 'a',
      to: 'b',
      nonce: new Uint8Array(3),
    });
    expect(() => decodeHandshake(badNonce.subarray(4))).toThrow(/nonce must be 32 bytes/);
  });
});
