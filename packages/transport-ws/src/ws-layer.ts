/**
 * The WebSocket stream layer (through `ws`): one binary WebSocket message carries one or
 * more whole frames, so a turn's batch for a peer is one message. Listens on its own
 * HTTP(S) server, or takes upgrades on a path of a server the host already runs.
 */
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FRAME_HEADER_BYTES, FrameError, TransportConfigError, TransportErrorCode } from '@quorate/codec';
import type { Connection, ConnectionEvents, StreamLayer } from '@quorate/transport-engine';
import { HANDSHAKE_MAX_FRAME_BYTES } from '@quorate/transport-engine';
import { WebSocket, WebSocketServer } from 'ws';

/** TLS for `wss`. Every member presents a certificate signed by `ca`. */
export interface WsTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer | (string | Buffer)[];
  /** Demand a valid client certificate from peers that connect (mutual TLS). Default true. */
  requireClientCert?: boolean;
  /** Name to check on peers' certificates instead of the host dialled. */
  servername?: string;
}

export interface WsLayerOptions {
  /** Own listener: host, port (0: the OS chooses) and the path upgrades are taken on. */
  listen: { host: string; port: number; path: string };
  /** Take upgrades on `listen.path` of this server instead of listening (the host owns it). */
  server?: HttpServer | HttpsServer;
  tls?: WsTlsOptions;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  connectTimeoutMs: number;
  /** Mask outgoing frames with random keys (RFC 6455). Default true. */
  maskFrames?: boolean;
}

/**
 * A zero masking key makes `ws` skip masking: only for links with no intermediary, since
 * masking is what stops client-chosen bytes (values in log entries) from reading as
 * requests to a proxy in between (RFC 6455 section 10.3).
 */
const zeroMask = (mask: Buffer) => {
  mask.fill(0);
};

function remoteOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  const host = socket.remoteAddress ?? '?';
  return `${isIP(host) === 6 ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}

class WsConnection implements Connection {
  readonly messageFramed = true;
  private error: Error | undefined;
  private events: ConnectionEvents | null = null;

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    /** The largest message `ws` accepts on this connection now. */
    private maxMessageBytes: number,
  ) {
    ws.on('error', (err: Error & { code?: string }) => {
      // `ws` refuses a message over its size limit itself (close 1009): report it as the
      // oversized frame it is, so the transport counts and logs it like TCP does.
      this.error ??=
        err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? new FrameError(
              TransportErrorCode.FrameTooLarge,
              `a message larger than the ${this.maxMessageBytes}-byte limit`,
              { cause: err },
            )
          : err;
    });
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  attach(events: ConnectionEvents): void {
    this.events = events;
    this.ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      events.data(
        Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data),
      );
    });
    this.ws.once('close', () => events.close(this.error));
    if (this.ws.readyState === WebSocket.CLOSED) queueMicrotask(() => events.close(this.error));
  }

  write(frames: readonly Buffer[], done: (error?: Error | null) => void): void {
    const data = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
    this.ws.send(data, { binary: true }, (err) => {
      done(err ?? null);
      // `ws` has no drain event: report one when everything buffered has gone out.
      if (!err && this.ws.bufferedAmount === 0) this.events?.drain();
    });
  }

  setMaxMessageBytes(bytes: number): void {
    // `ws` fixes maxPayload per server; lowering it per connection until the peer has
    // authenticated keeps strangers from making us buffer large messages.
    const receiver = (this.ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
    if (receiver && typeof receiver._maxPayload === 'number') {
      receiver._maxPayload = bytes;
      this.maxMessageBytes = bytes;
    }
  }

  end(): void {
    this.ws.close(1000);
  }

  destroy(): void {
    this.ws.terminate();
  }
}

export class WsStreamLayer implements StreamLayer {
  private server: HttpServer | HttpsServer | null = null;
  private wss: WebSocketServer | null = null;
  private readonly sockets = new Set<Socket>();
  private upgradeListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;

  constructor(private readonly options: WsLayerOptions) {
    if (!options.listen.path.startsWith('/')) {
      throw new TransportConfigError([
        `listen.path must start with "/" (got ${JSON.stringify(options.listen.path)})`,
      ]);
    }
  }

  listen(
    onConnection: (c: Connection) => void,
    onRefused: (remote: string, err: Error) => void,
  ): Promise<string> {
    const o = this.options;
    const maxPayload = o.maxFrameBytes + FRAME_HEADER_BYTES;
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: true,
    });
    this.wss = wss;
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== o.listen.path) {
        if (!o.server) {
          onRefused(
            remoteOf(socket as Socket),
            new Error(`upgrade on ${JSON.stringify(path)}, not ${o.listen.path}`),
          );
          socket.destroy();
        }
        return; // on a shared server, other paths belong to the host
      }
      socket.on('error', () => {});
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c = new WsConnection(ws, remoteOf(socket as Socket), maxPayload);
        c.setMaxMessageBytes(HANDSHAKE_MAX_FRAME_BYTES + FRAME_HEADER_BYTES);
        onConnection(c);
      });
    };
    this.upgradeListener = onUpgrade;
    if (o.server) {
      o.server.on('upgrade', onUpgrade);
      const a = o.server.address();
      const port = typeof a === 'object' && a ? a.port : o.listen.port;
      const scheme = 'cert' in o.server || o.tls ? 'wss' : 'ws';
      return Promise.resolve(`${scheme}://${hostFor(o.listen.host)}:${port}${o.listen.path}`);
    }
    let server: HttpServer | HttpsServer;
    const refuseHttp = (_req: IncomingMessage, res: import('node:http').ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('this port speaks the quorate Raft protocol over WebSocket\n');
    };
    if (o.tls) {
      const requireClientCert = o.tls.requireClientCert ?? true;
      server = createHttpsServer(
        {
          cert: o.tls.cert,
          key: o.tls.key,
          ca: o.tls.ca,
          requestCert: requireClientCert,
          rejectUnauthorized: requireClientCert,
          handshakeTimeout: o.handshakeTimeoutMs,
          minVersion: 'TLSv1.2',
        },
        refuseHttp,
      );
      server.on('tlsClientError', (err, s) => {
        onRefused(remoteOf(s), err);
        s.destroy();
      });
    } else {
      server = createHttpServer(refuseHttp);
    }
    server.headersTimeout = o.handshakeTimeoutMs;
    server.requestTimeout = o.handshakeTimeoutMs;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.on('upgrade', onUpgrade);
    server.on('clientError', (err, s) => {
      onRefused(remoteOf(s as Socket), err);
      s.destroy();
    });
    server.on('error', () => {});
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: o.listen.host, port: o.listen.port }, () => {
        server.off('error', onError);
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : o.listen.port;
        resolve(`${o.tls ? 'wss' : 'ws'}://${hostFor(o.listen.host)}:${port}${o.listen.path}`);
      });
    });
  }

  dial(address: string, signal: AbortSignal): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(address);
        if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('not a ws:// or wss:// URL');
      } catch (err) {
        reject(
          new TransportConfigError([
            `${JSON.stringify(address)} is not a WebSocket address: ${(err as Error).message}`,
          ]),
        );
        return;
      }
      const o = this.options;
      const tls = o.tls;
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const servername = tls?.servername ?? (isIP(host) ? undefined : host);
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        maxPayload: o.maxFrameBytes + FRAME_HEADER_BYTES,
        skipUTF8Validation: true,
        ...(o.maskFrames === false ? { generateMask: zeroMask } : {}),
        handshakeTimeout: o.connectTimeoutMs,
        ...(tls ? { cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true } : {}),
        ...(servername ? { servername } : {}),
      });
      const onError = (err: Error) => {
        cleanup();
        // Terminating a socket still connecting makes ws emit 'error' once more; with no
        // listener left that would be an uncaught exception and take the process down.
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      const onAbort = () => onError(new Error('connection attempt abandoned'));
      const onOpen = () => {
        cleanup();
        const sock = (ws as unknown as { _socket?: Socket })._socket;
        resolve(new WsConnection(ws, sock ? remoteOf(sock) : url.host, o.maxFrameBytes + FRAME_HEADER_BYTES));
      };
      const onUnexpected = (_req: unknown, res: IncomingMessage) => {
        onError(new Error(`the peer answered the upgrade with HTTP ${res.statusCode}`));
      };
      const cleanup = () => {
        ws.off('error', onError);
        ws.off('open', onOpen);
        ws.off('unexpected-response', onUnexpected);
        signal.removeEventListener('abort', onAbort);
      };
      ws.on('error', onError);
      ws.once('open', onOpen);
      ws.once('unexpected-response', onUnexpected);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): Promise<void> {
    const { server: shared } = this.options;
    if (shared && this.upgradeListener) shared.off('upgrade', this.upgradeListener);
    this.upgradeListener = null;
    this.wss?.close();
    this.wss = null;
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}

function hostFor(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}
