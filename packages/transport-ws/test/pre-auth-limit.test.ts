/**
 * Before a connection has authenticated, `ws` itself must refuse a message over the
 * handshake limit (4 KiB), before buffering it: the layer lowers `ws`'s per-connection
 * limit, which `ws` exposes only as an internal field. If an upgrade of `ws` renames it,
 * a stranger could make every member buffer 16 MiB per connection; this test fails then.
 */
import { HANDSHAKE_MAX_FRAME_BYTES } from '@quorate/transport-engine';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { WsTransport } from '../src/index.js';

describe('the pre-authentication message limit', () => {
  it('is enforced by ws itself: a larger first message is refused with close code 1009', async () => {
    const t = new WsTransport({
      id: 'a',
      clusterId: 'limits',
      secret: 'pre-auth-limit-shared-secret',
      peers: {},
      listen: { host: '127.0.0.1', port: 0, path: '/raft' },
      logger: null,
    });
    try {
      const address = await t.listen();
      await t.start({ onMessage: () => {} });
      const ws = new WebSocket(address);
      const code = await new Promise<number>((resolve, reject) => {
        ws.on('open', () => ws.send(Buffer.alloc(HANDSHAKE_MAX_FRAME_BYTES * 16, 7)));
        ws.on('close', (c) => resolve(c));
        ws.on('error', () => {});
        setTimeout(() => reject(new Error('the listener kept the connection open')), 10_000).unref();
      });
      expect(code).toBe(1009);
    } finally {
      await t.close();
    }
  });
});
