import { join } from 'node:path';
import type { MemberConfig, TestTls, TransportKit } from '@quorate/transport-kit';
import { TcpStreamLayer, type TcpTlsOptions, TcpTransport } from '../src/index.js';

const tlsOf = (t: TestTls): TcpTlsOptions => ({
  ca: t.ca,
  cert: t.cert ?? '',
  key: t.key ?? '',
  requireClientCert: t.requireClientCert,
});

/** How the shared test tooling builds TCP members, dialers and processes. */
export const tcpKit: TransportKit = {
  name: 'tcp',
  create: (c: MemberConfig) =>
    new TcpTransport({
      ...c.options,
      id: c.id,
      clusterId: c.clusterId,
      secret: c.secret,
      peers: c.peers,
      listen: { host: '127.0.0.1', port: c.port },
      logger: c.verbose || process.env.QUORATE_TEST_LOG ? console : null,
      ...(c.tls ? { tls: tlsOf(c.tls) } : {}),
    }),
  dialer: (tls?: TestTls) =>
    new TcpStreamLayer({
      listen: { host: '127.0.0.1', port: 0 },
      handshakeTimeoutMs: 5000,
      ...(tls ? { tls: tlsOf(tls) } : {}),
    }),
  memberScript: join(import.meta.dirname, 'fixtures', 'member.ts'),
};
