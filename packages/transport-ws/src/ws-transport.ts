import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { NetworkTransport, type NetworkTransportOptions } from '@quorate/transport-engine';
import { WsStreamLayer, type WsTlsOptions } from './ws-layer.js';

export const DEFAULT_WS_PATH = '/raft';

export interface WsTransportOptions extends NetworkTransportOptions {
  /**
   * Where to accept connections. Default: host, port and path of this member's own
   * `ws://` entry in `peers`, or 127.0.0.1, a port the OS chooses and `/raft`.
   */
  listen?: { host?: string; port?: number; path?: string };
  /**
   * Share a server the host already runs (its HTTP API, say): the transport takes
   * WebSocket upgrades on `listen.path` and leaves other requests and the server's life to
   * the host.
   */
  server?: HttpServer | HttpsServer;
  /** Use `wss`: TLS on every connection, with client certificates unless disabled. */
  tls?: WsTlsOptions;
  /**
   * Mask the frames this member sends on its connections with a fresh random key each, as
   * RFC 6455 requires of clients (default true). Masking keeps bytes that clients chose
   * (the values in log entries) from being read as HTTP by a proxy between members. Set
   * false only when members connect directly, to save the masking pass over every byte.
   */
  maskFrames?: boolean;
}

function ownListen(options: WsTransportOptions): { host: string; port: number; path: string } {
  const own = options.peers?.[options.id];
  const address = typeof own === 'string' ? own : own?.address;
  let fromPeers: URL | null = null;
  try {
    fromPeers = address ? new URL(address) : null;
  } catch {
    fromPeers = null;
  }
  return {
    host: options.listen?.host ?? fromPeers?.hostname.replace(/^\[|\]$/g, '') ?? '127.0.0.1',
    port: options.listen?.port ?? (fromPeers?.port ? Number(fromPeers.port) : 0),
    path:
      options.listen?.path ??
      (fromPeers && fromPeers.pathname !== '/' ? fromPeers.pathname : DEFAULT_WS_PATH),
  };
}

/**
 * A Raft `Transport` over WebSocket (`ws`): the same frames, handshake, limits and queues
 * as the TCP transport, for networks where only HTTP ports are open or a proxy sits
 * between members. Peer addresses are `ws://host:port/raft` (or `wss://`).
 */
export class WsTransport extends NetworkTransport {
  constructor(options: WsTransportOptions) {
    super(
      options,
      new WsStreamLayer({
        listen: ownListen(options),
        maxFrameBytes: options.maxFrameBytes ?? 16 * 1024 * 1024,
        handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
        connectTimeoutMs: options.connectTimeoutMs ?? 5000,
        ...(options.server ? { server: options.server } : {}),
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.maskFrames !== undefined ? { maskFrames: options.maskFrames } : {}),
      }),
    );
  }
}
