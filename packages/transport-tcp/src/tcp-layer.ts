/**
 * The TCP stream layer: plain `node:net` sockets, or `node:tls` with certificates on both
 * sides. Sockets are handed to `NetworkTransport` as soon as they connect (after the TLS
 * handshake, when TLS is on); framing, authentication and queues are the transport's.
 */
import {
  createServer as createNetServer,
  isIP,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import {
  type ConnectionOptions,
  createServer as createTlsServer,
  type TLSSocket,
  type TlsOptions,
  connect as tlsConnect,
} from 'node:tls';
import type { Connection, ConnectionEvents, StreamLayer } from '@quorate/transport-engine';
import { formatHostPort, parseHostPort } from './address.js';

/** TLS for the TCP transport. Every member presents a certificate signed by `ca`. */
export interface TcpTlsOptions {
  /** This member's certificate chain (PEM). */
  cert: string | Buffer;
  /** Its private key (PEM). */
  key: string | Buffer;
  /** The certificate authority (or authorities) that signs the members' certificates. */
  ca: string | Buffer | (string | Buffer)[];
  /**
   * Demand a valid client certificate from peers that connect (mutual TLS). Default true.
   * With false, peers only verify this member's certificate and prove membership through
   * the cluster-secret handshake.
   */
  requireClientCert?: boolean;
  /** Name to check on peers' certificates instead of the host dialled. */
  servername?: string;
}

export interface TcpLayerOptions {
  listen: { host: string; port: number };
  tls?: TcpTlsOptions;
  /** Bound on the TLS handshake of an accepted connection. */
  handshakeTimeoutMs: number;
}

class TcpConnection implements Connection {
  readonly messageFramed = false;
  readonly remoteAddress: string;
  private error: Error | undefined;

  constructor(private readonly socket: Socket | TLSSocket) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.remoteAddress = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.on('error', (err) => {
      this.error ??= err;
    });
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  attach(events: ConnectionEvents): void {
    this.socket.on('data', events.data);
    this.socket.on('drain', events.drain);
    this.socket.once('close', () => events.close(this.error));
    if (this.socket.destroyed) queueMicrotask(() => events.close(this.error));
  }

  write(frames: readonly Buffer[], done: (error?: Error | null) => void): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) {
      done(new Error('connection closed'));
      return;
    }
    if (frames.length === 1) {
      s.write(frames[0]!, done);
      return;
    }
    // One writev for the batch.
    s.cork();
    const last = frames.length - 1;
    for (let i = 0; i < last; i++) s.write(frames[i]!);
    s.write(frames[last]!, done);
    s.uncork();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export class TcpStreamLayer implements StreamLayer {
  private server: Server | null = null;
  /** Raw sockets not yet handed over (mid-TLS-handshake), closed with the listener. */
  private readonly accepting = new Set<Socket>();

  constructor(private readonly options: TcpLayerOptions) {}

  listen(
    onConnection: (c: Connection) => void,
    onRefused: (remote: string, err: Error) => void,
  ): Promise<string> {
    const { tls, listen, handshakeTimeoutMs } = this.options;
    let server: Server;
    if (tls) {
      const requireClientCert = tls.requireClientCert ?? true;
      const opts: TlsOptions = {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: requireClientCert,
        rejectUnauthorized: requireClientCert,
        handshakeTimeout: handshakeTimeoutMs,
        minVersion: 'TLSv1.2',
      };
      server = createTlsServer(opts, (s) => {
        this.accepting.delete(s as unknown as Socket);
        onConnection(new TcpConnection(s));
      });
      server.on('tlsClientError', (err, s) => {
        onRefused(formatHostPort(s.remoteAddress ?? '?', s.remotePort ?? 0), err);
        s.destroy();
      });
    } else {
      server = createNetServer((s) => onConnection(new TcpConnection(s)));
    }
    // Raw sockets, before TLS: tracked so that closing the listener also closes them.
    server.on('connection', (s: Socket) => {
      if (!tls) return;
      this.accepting.add(s);
      s.once('close', () => this.accepting.delete(s));
    });
    server.on('error', () => {});
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: listen.host, port: listen.port }, () => {
        server.off('error', onError);
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : listen.port;
        resolve(formatHostPort(listen.host, port));
      });
    });
  }

  dial(address: string, signal: AbortSignal): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let host: string;
      let port: number;
      try {
        ({ host, port } = parseHostPort(address));
      } catch (err) {
        reject(err);
        return;
      }
      const tls = this.options.tls;
      let socket: Socket;
      if (tls) {
        const opts: ConnectionOptions = {
          host,
          port,
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
        };
        const servername = tls.servername ?? (isIP(host) ? undefined : host);
        if (servername) opts.servername = servername;
        socket = tlsConnect(opts);
      } else {
        socket = netConnect({ host, port });
      }
      const ready = tls ? 'secureConnect' : 'connect';
      const onError = (err: Error) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const onAbort = () => onError(new Error('connection attempt abandoned'));
      const onReady = () => {
        cleanup();
        resolve(new TcpConnection(socket));
      };
      const cleanup = () => {
        socket.off('error', onError);
        socket.off(ready, onReady);
        signal.removeEventListener('abort', onAbort);
      };
      socket.once('error', onError);
      socket.once(ready, onReady);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.accepting) s.destroy();
    this.accepting.clear();
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
