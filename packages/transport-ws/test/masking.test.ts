/**
 * What goes on the wire from a dialling member: WebSocket frames masked with random keys
 * by default (RFC 6455), and unmasked (a zero key) only when `maskFrames: false`. The
 * bytes are read off a relay between two real transports on loopback.
 */
import { cutProxy, portOf, waitUntil, withPort } from '@quorate/transport-kit';
import { describe, expect, it } from 'vitest';
import { WsTransport } from '../src/index.js';

/** The masking keys of the WebSocket frames in a client-to-server byte stream. */
function maskingKeys(stream: Buffer): Buffer[] {
  const headerEnd = stream.indexOf('\r\n\r\n');
  if (headerEnd < 0) return [];
  const keys: Buffer[] = [];
  let at = headerEnd + 4;
  while (at + 2 <= stream.length) {
    const masked = (stream[at + 1]! & 0x80) !== 0;
    let len = stream[at + 1]! & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (off + 2 > stream.length) break;
      len = stream.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (off + 8 > stream.length) break;
      len = Number(stream.readBigUInt64BE(off));
      off += 8;
    }
    if (!masked) {
      keys.push(Buffer.alloc(0)); // an unmasked client frame: a protocol violation
    } else {
      if (off + 4 > stream.length) break;
      keys.push(stream.subarray(off, off + 4));
      off += 4;
    }
    if (off + len > stream.length) break;
    at = off + len;
  }
  return keys;
}

async function framesFromDialler(maskFrames: boolean | undefined): Promise<Buffer[]> {
  const common = { clusterId: 'mask', secret: 'masking-test-shared-secret', logger: null };
  const a = new WsTransport({
    ...common,
    id: 'a',
    peers: {},
    listen: { host: '127.0.0.1', port: 0 },
    ...(maskFrames === undefined ? {} : { maskFrames }),
  });
  const b = new WsTransport({ ...common, id: 'b', peers: {}, listen: { host: '127.0.0.1', port: 0 } });
  const addrA = await a.listen();
  const addrB = await b.listen();
  const seen: Buffer[] = [];
  const relay = await cutProxy(portOf(addrB), { tap: (chunk) => seen.push(Buffer.from(chunk)) });
  let got = 0;
  try {
    a.setPeers({ a: addrA, b: withPort(addrB, relay.port) });
    b.setPeers({ a: addrA, b: addrB });
    await a.start({ onMessage: () => {} });
    await b.start({ onMessage: () => void got++ });
    for (let i = 0; i < 20; i++) a.send({ type: 'timeoutNow', from: 'a', to: 'b', term: i + 1 });
    await waitUntil(() => got === 20, 'b to receive the 20 messages');
    return maskingKeys(Buffer.concat(seen));
  } finally {
    await Promise.all([a.close(), b.close()]);
    await relay.close();
  }
}

describe('WebSocket frame masking', () => {
  it('masks every frame a member sends with random keys by default', async () => {
    const keys = await framesFromDialler(undefined);
    // The handshake's frames and the 20 messages (some may share a frame).
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect(keys.every((k) => k.length === 4)).toBe(true);
    const distinct = new Set(keys.map((k) => k.toString('hex')));
    expect(distinct.has('00000000')).toBe(false);
    expect(distinct.size).toBe(keys.length);
  });

  it('sends a zero key (no masking pass) with maskFrames: false', async () => {
    const keys = await framesFromDialler(false);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect(keys.every((k) => k.toString('hex') === '00000000')).toBe(true);
  });
});
