import {
  GroupNetworkTransport,
  NetworkTransport,
  type NetworkTransportOptions,
} from '@quorate/transport-engine';
import { parseHostPort } from './address.js';
import { TcpStreamLayer, type TcpTlsOptions } from './tcp-layer.js';

export interface TcpTransportOptions extends NetworkTransportOptions {
  /**
   * Where to accept connections. Default: the host and port of this member's own entry in
   * `peers`, or 127.0.0.1 with a port the OS chooses when it has none.
   */
  listen?: { host?: string; port?: number };
  /** Encrypt and authenticate every connection with TLS (`node:tls`). */
  tls?: TcpTlsOptions;
}

/**
 * A Raft `Transport` over TCP: one connection per peer and direction, length-prefixed
 * msgpack frames, a cluster-secret handshake, optional mutual TLS.
 *
 * ```ts
 * const transport = new TcpTransport({ id: 'n1', clusterId: 'prod', secret, peers: {
 *   n1: '10.0.0.1:7001', n2: '10.0.0.2:7001', n3: '10.0.0.3:7001' } });
 * ```
 */
export class TcpTransport extends NetworkTransport {
  constructor(options: TcpTransportOptions) {
    super(options, layerFor(options));
  }
}

/**
 * The multi-group `GroupTransport` over TCP (protocol version 2), for
 * `@quorate/multiraft`: every group of a host shares one connection per peer and
 * direction. Same options, handshake, TLS and limits as `TcpTransport`; a single-group
 * member is refused with `VERSION_MISMATCH`, and refuses this one.
 */
export class TcpGroupTransport extends GroupNetworkTransport {
  constructor(options: TcpTransportOptions) {
    super(options, layerFor(options));
  }
}

function layerFor(options: TcpTransportOptions): TcpStreamLayer {
  const own = options.peers?.[options.id];
  const ownAddress = typeof own === 'string' ? own : own?.address;
  const fallback = ownAddress ? parseHostPort(ownAddress) : { host: '127.0.0.1', port: 0 };
  return new TcpStreamLayer({
    listen: { host: options.listen?.host ?? fallback.host, port: options.listen?.port ?? fallback.port },
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
    ...(options.tls ? { tls: options.tls } : {}),
  });
}
