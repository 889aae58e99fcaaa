/**
 * The client protocol as a `Wire`: one connection per member, every request of every
 * caller multiplexed on it, answers matched by id in whatever order they come. Requests
 * wait for the member's hello before they are written, so a request that never left
 * (connection refused, hello refused) is known not to have been sent.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  decodeBody,
  encodeFrame,
  FrameReader,
  PROTOCOL_VERSIONS,
  type ProtocolError,
  type ProtocolRequest,
} from './protocol.js';
import { type ClientTls, type Wire, WireError, type WireRequest, type WireResponse } from './wire.js';

export interface ProtocolWireOptions {
  /** For `quorates://` members. */
  tls?: ClientTls;
  /** Largest answer frame accepted (default 64 MiB). */
  maxFrameBytes?: number;
  /** How long a connection and its hello may take (default 3 s). */
  connectTimeoutMs?: number;
}

interface Waiter {
  resolve(r: WireResponse): void;
  reject(e: WireError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  label: string;
}

const EMPTY = new Uint8Array(0);

interface StreamWaiter {
  message(m: Record<string, unknown>): void;
  closed(err: WireError): void;
}

/**
 * A request answered by many messages (a watch): each message with the request's id, until
 * a final result (`r`) or error (`e`), or the connection breaks (the iterator then throws
 * a `WireError`). `cancel()` asks the member to stop and ends the iteration.
 */
export interface ProtocolStream extends AsyncIterable<Record<string, unknown>> {
  cancel(): void;
}

class Connection {
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private readonly waiting = new Map<number, Waiter>();
  private readonly streams = new Map<number, StreamWaiter>();
  private nextId = 1;
  /** Settles once the member said hello (or the connection failed before it did). */
  readonly ready: Promise<ProtocolError | null>;
  private helloDone = false;
  /** The Raft groups the member's hello said it shards keys over (absent: one). */
  private groups: number | undefined;
  closed = false;

  constructor(
    readonly endpoint: string,
    token: string | undefined,
    opts: ProtocolWireOptions,
    private readonly onClose: (c: Connection) => void,
  ) {
    const u = new URL(endpoint);
    const port = Number(u.port || (u.protocol === 'quorates:' ? 9443 : 9081));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    this.reader = new FrameReader(opts.maxFrameBytes ?? 64 << 20);
    this.socket =
      u.protocol === 'quorates:'
        ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...(opts.tls ?? {}) })
        : netConnect({ host, port });
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        reject(
          new WireError(`${endpoint}: no hello within ${opts.connectTimeoutMs ?? 3000} ms`, false, true),
        );
      }, opts.connectTimeoutMs ?? 3000);
      this.helloWaiter = (err, hello) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(hello);
      };
    });
    // Nobody may be waiting on `ready` when it fails: the failure is seen by request().
    this.ready.catch(() => {});
    this.socket.on(u.protocol === 'quorates:' ? 'secureConnect' : 'connect', () => {
      this.socket.write(
        encodeFrame({ t: 'hello', versions: PROTOCOL_VERSIONS, ...(token ? { token } : {}) }),
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => {});
    this.socket.on('close', () => this.onClosed());
  }

  private helloWaiter: ((err: WireError | null, refusal: ProtocolError | null) => void) | null = null;

  private onData(chunk: Buffer): void {
    let bodies: Buffer[];
    try {
      bodies = this.reader.push(chunk);
    } catch (err) {
      this.fail(`${this.endpoint}: ${(err as Error).message}`);
      return;
    }
    for (const body of bodies) {
      let m: Record<string, unknown>;
      try {
        m = decodeBody(body) as Record<string, unknown>;
      } catch (err) {
        this.fail(`${this.endpoint}: an answer is not msgpack (${(err as Error).message})`);
        return;
      }
      if (m === null || typeof m !== 'object') {
        this.fail(`${this.endpoint}: an answer is not a map`);
        return;
      }
      if (m.t === 'hello') {
        this.helloDone = true;
        const g = m.groups;
        this.groups = typeof g === 'number' && Number.isInteger(g) && g >= 1 ? g : undefined;
        this.helloWaiter?.(null, null);
        this.helloWaiter = null;
        continue;
      }
      if (m.t === 'error') {
        // The member refused the connection itself: before the hello, that is an answer
        // for every request waiting to be written (nothing was sent).
        const e = { status: 400, ...(m as object) } as unknown as ProtocolError;
        if (!this.helloDone) {
          this.helloWaiter?.(null, e);
          this.helloWaiter = null;
        }
        this.fail(`${this.endpoint}: ${String(m.code)}: ${String(m.message)}`);
        return;
      }
      const id = m.id;
      if (typeof id !== 'number') continue;
      const s = this.streams.get(id);
      if (s) {
        if (m.r !== undefined || m.e !== undefined) this.streams.delete(id);
        s.message(m);
        continue;
      }
      const w = this.waiting.get(id);
      if (!w) continue; // given up already
      this.waiting.delete(id);
      clearTimeout(w.timer);
      const groups = this.groups !== undefined ? { groups: this.groups } : {};
      if (m.e && typeof m.e === 'object') {
        const e = m.e as ProtocolError;
        w.resolve({
          status: typeof e.status === 'number' ? e.status : 500,
          headers: {},
          body: EMPTY,
          error: e,
          ...groups,
        });
      } else {
        w.resolve({
          status: 200,
          headers: {},
          body: EMPTY,
          result: m.r as Record<string, unknown>,
          ...groups,
        });
      }
    }
  }

  /** Send one request; the answer or a `WireError` (sent: it was written). */
  send(op: ProtocolRequest, extra: Record<string, unknown>, req: WireRequest): Promise<WireResponse> {
    if (this.closed)
      return Promise.reject(new WireError(`${this.endpoint}: the connection closed`, false, false));
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise<WireResponse>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined, label: `${op.op} ${this.endpoint}` };
      w.timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new WireError(`${w.label}: no answer within ${req.timeoutMs} ms`, true, true));
      }, req.timeoutMs);
      if (req.signal) {
        if (req.signal.aborted) {
          clearTimeout(w.timer);
          reject(new WireError(`${w.label}: aborted`, false, false));
          return;
        }
        req.signal.addEventListener(
          'abort',
          () => {
            if (!this.waiting.delete(id)) return;
            clearTimeout(w.timer);
            reject(new WireError(`${w.label}: aborted`, true, false));
          },
          { once: true },
        );
      }
      this.waiting.set(id, w);
      this.write(encodeFrame({ ...op, ...extra, id }));
    });
  }

  /** Open a stream: `op` is sent with a fresh id; its messages go to `waiter`. */
  openStream(op: ProtocolRequest, waiter: StreamWaiter): { cancel(): void } {
    const id = this.nextId++;
    if (this.closed) {
      waiter.closed(new WireError(`${this.endpoint}: the connection closed`, false, false));
      return { cancel: () => {} };
    }
    this.streams.set(id, waiter);
    this.write(encodeFrame({ ...op, id }));
    return {
      cancel: () => {
        if (!this.streams.delete(id) || this.closed) return;
        this.write(encodeFrame({ op: 'watch.cancel', watchId: id, id: this.nextId++ }));
      },
    };
  }

  private corked = false;

  /** Requests of one turn go out in one write (one system call, one TCP segment when they fit). */
  private write(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  private fail(why: string): void {
    this.socket.destroy();
    this.onClosed(why);
  }

  private onClosed(why = `${this.endpoint}: the connection closed`): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    const refused = !this.helloDone;
    this.helloWaiter?.(new WireError(why, false, false), null);
    this.helloWaiter = null;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new WireError(`${w.label}: ${why}`, !refused, false));
    }
    this.waiting.clear();
    for (const s of this.streams.values()) s.closed(new WireError(why, !refused, false));
    this.streams.clear();
  }

  close(): void {
    this.socket.destroy();
    this.onClosed();
  }
}

/** quorate's binary client protocol (`quorate://host:port` members). */
export class ProtocolWire implements Wire {
  private readonly conns = new Map<string, Connection>();

  constructor(private readonly opts: ProtocolWireOptions = {}) {}

  private conn(endpoint: string, token: string | undefined): Connection {
    let c = this.conns.get(endpoint);
    if (!c || c.closed) {
      c = new Connection(endpoint, token, this.opts, (gone) => {
        if (this.conns.get(endpoint) === gone) this.conns.delete(endpoint);
      });
      this.conns.set(endpoint, c);
    }
    return c;
  }

  async request(req: WireRequest): Promise<WireResponse> {
    if (!req.op) {
      throw new WireError(
        `${req.method} ${req.endpoint}${req.path}: the client protocol carries operations, not HTTP paths`,
        false,
        false,
      );
    }
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const c = this.conn(req.endpoint, token);
    const refusal = await c.ready;
    if (refusal) return { status: refusal.status, headers: {}, body: EMPTY, error: refusal };
    const extra: Record<string, unknown> = {};
    const cid = req.headers['x-quorate-client-id'];
    const seq = req.headers['x-quorate-seq'];
    const timeout = req.headers['x-quorate-timeout-ms'];
    if (cid !== undefined && seq !== undefined) {
      extra.cid = cid;
      extra.seq = Number(seq);
    }
    if (timeout !== undefined) extra.timeoutMs = Number(timeout);
    return c.send(req.op, extra, req);
  }

  /**
   * A streaming request (a watch). Resolves once the member said hello; a refused hello
   * resolves to its error. The stream ends at the member's final answer, or throws when
   * the connection breaks.
   */
  async stream(
    endpoint: string,
    token: string | undefined,
    op: ProtocolRequest,
  ): Promise<ProtocolStream | ProtocolError> {
    const c = this.conn(endpoint, token);
    const refusal = await c.ready;
    if (refusal) return refusal;
    const queue: Record<string, unknown>[] = [];
    let failure: WireError | null = null;
    let done = false;
    let wake: (() => void) | null = null;
    const poke = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const handle = c.openStream(op, {
      message: (m) => {
        queue.push(m);
        if (m.r !== undefined || m.e !== undefined) done = true;
        poke();
      },
      closed: (err) => {
        failure = err;
        done = true;
        poke();
      },
    });
    const cancel = () => {
      if (done) return;
      done = true;
      handle.cancel();
      poke();
    };
    return {
      cancel,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            while (queue.length > 0) yield queue.shift()!;
            if (failure) throw failure;
            if (done) return;
            await new Promise<void>((r) => {
              wake = r;
            });
          }
        } finally {
          cancel();
        }
      },
    };
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}
