/**
 * The wire, kept behind a small interface so that a binary, multiplexed protocol can
 * replace HTTP without touching the client's logic (leader discovery, retries,
 * exactly-once ids).
 */
import { Pool } from 'undici';
import type { ProtocolError, ProtocolRequest } from './protocol.js';

export interface WireRequest {
  /** Base URL of the member, e.g. `http://127.0.0.1:8081`. */
  readonly endpoint: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query, already encoded. */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array | string;
  readonly timeoutMs: number;
  /** Gives the attempt up (it then fails with a `WireError`, `sent` unless refused). */
  readonly signal?: AbortSignal;
  /**
   * The same request as a client-protocol operation (`ProtocolWire` sends this; the HTTP
   * wire sends method, path and body). Identity and deadline travel in `headers` for both.
   */
  readonly op?: ProtocolRequest;
}

export interface WireResponse {
  readonly status: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: Uint8Array;
  /** The client protocol's decoded answer (the HTTP wire leaves the JSON in `body`). */
  readonly result?: Record<string, unknown>;
  /** The client protocol's error answer. */
  readonly error?: ProtocolError;
  /**
   * How many Raft groups the answering member shards keys over, when the wire learns it
   * outside the answer (the client protocol's hello). HTTP answers say it in the
   * `X-Quorate-Groups` header instead. Absent: not said (a cluster of one group).
   */
  readonly groups?: number;
}

/** Transport-level failures: `sent` says whether the request may have reached the server. */
export class WireError extends Error {
  constructor(
    message: string,
    readonly sent: boolean,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WireError';
  }
}

export interface Wire {
  request(req: WireRequest): Promise<WireResponse>;
  close(): Promise<void>;
}

/** For members serving HTTPS: the CA to trust, and this client's certificate when they require one. */
export interface ClientTls {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface HttpWireOptions {
  /** Keep-alive connections per member. Default 16. */
  connections?: number;
  tls?: ClientTls;
}

/** HTTP/1.1 with keep-alive pools (undici), one pool per member. */
export class HttpWire implements Wire {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly opts: HttpWireOptions = {}) {}

  private pool(endpoint: string): Pool {
    let p = this.pools.get(endpoint);
    if (!p) {
      p = new Pool(endpoint, {
        connections: this.opts.connections ?? 16,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        ...(this.opts.tls ? { connect: { ...this.opts.tls } } : {}),
      });
      this.pools.set(endpoint, p);
    }
    return p;
  }

  async request(req: WireRequest): Promise<WireResponse> {
    let sent = false;
    try {
      const res = await this.pool(req.endpoint).request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body ?? null,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      sent = true;
      const body = new Uint8Array(await res.body.arrayBuffer());
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      return { status: res.statusCode, headers, body };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const refused = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH';
      const timedOut = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
      // A refused connection never carried the request; anything else might have.
      throw new WireError(
        `${req.method} ${req.endpoint}${req.path}: ${(err as Error).message}`,
        sent || !refused,
        timedOut,
        {
          cause: err,
        },
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => {})));
    this.pools.clear();
  }
}
