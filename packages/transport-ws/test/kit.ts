import { join } from 'node:path';
import type { MemberConfig, TestTls, TransportKit } from '@quorate/transport-kit';
import { WsStreamLayer, type WsTlsOptions, WsTransport } from '../src/index.js';

const tlsOf = (t: TestTls): WsTlsOptions => ({
  ca: t.ca,
  cert: t.cert ?? '',
  key: t.key ?? '',
  requireClientCert: t.requireClientCert,
});

/** How the shared test tooling builds WebSocket members, dialers and processes. */
export const wsKit: TransportKit = {
  name: 'ws',
  create: (c: MemberConfig) =>
    new WsTransport({
      ...c.options,
      id: c.id,
      clusterId: c.clusterId,
      secret: c.secret,
      peers: c.peers,
      listen: { host: '127.0.0.1', port: c.port, path: '/raft' },
      logger: c.verbose || process.env.QUORATE_TEST_LOG ? console : null,
      ...(c.tls ? { tls: tlsOf(c.tls) } : {}),
    }),
  dialer: (tls?: TestTls) =>
    new WsStreamLayer({
      listen: { host: '127.0.0.1', port: 0, path: '/raft' },
      maxFrameBytes: 16 << 20,
      handshakeTimeoutMs: 5000,
      connectTimeoutMs: 5000,
      ...(tls ? { tls: tlsOf(tls) } : {}),
    }),
  memberScript: join(import.meta.dirname, 'fixtures', 'member.ts'),
};
