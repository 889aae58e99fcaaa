/**
 * The client protocol (docs/client-protocol.md): msgpack frames on a port of its own, many
 * requests in flight per connection, answered as soon as each is ready. The same port
 * takes the WebSocket form (an HTTP upgrade on `/quorate`, one binary message per frame
 * body). Every byte is untrusted: a malformed frame, an unknown operation, a request
 * before the hello, a wrong token or too many requests in flight gets a typed error
 * answer or a closed connection, is counted, and never reaches the log.
 *
 * The operations are the HTTP API's, with the same validation, the same typed errors (the
 * same codes, and the HTTP status as a field) and the same exactly-once identities.
 * Proposals arriving together go into the log in one turn of the runtime (one persisted
 * batch); linearizable reads arriving together share one ReadIndex round.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import {
  decodeBody,
  encodeFrame,
  FrameReader,
  type FrameTooLargeError,
  PROTOCOL_OPS,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  PROTOCOL_WS_PATH,
} from '@quorate/client';
import type { RaftNode } from '@quorate/raft';
import { type WebSocket, WebSocketServer } from 'ws';
import { type Command, encodeCommand } from '../state/commands.js';
import type { Applied, ApplyResult } from '../state/machine.js';
import { mergedList } from '../state/merged-list.js';
import type { ApiContext } from './api.js';
import { badRequest, fromRaftError, HttpError, inGroup } from './errors.js';
import { admitWrite, check, checkKey, enc, leaseJson, sameSecret } from './http.js';
import { health } from './routes/cluster.js';
import { parseTxn, txnGroup } from './routes/txn.js';
import { openGroupWatches, openWatch, parseFrom } from './routes/watch.js';

export interface ProtocolServerOptions {
  host: string;
  port: number;
  /** Serve TLS (the same certificate and client-certificate rule as the HTTP API). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; requireClientCert?: boolean };
  /** Largest request frame. */
  maxFrameBytes: number;
  /** Requests in flight on one connection, at most. */
  maxInFlight: number;
  /** A connection that has not said hello by then is closed (default 10 s). */
  helloTimeoutMs?: number;
  /** Counts what was refused, by reason (the metric `client_protocol_refused_total`). */
  onRefused?: (reason: RefusalReason) => void;
  onRequest?: () => void;
}

export type RefusalReason =
  | 'frame_too_large'
  | 'malformed_frame'
  | 'no_hello'
  | 'bad_version'
  | 'unauthorized'
  | 'bad_request'
  | 'unknown_op'
  | 'overloaded';

/** A connection, raw or WebSocket: what a session needs of it. */
interface Link {
  send(message: unknown): void;
  /** Bytes written and not yet sent. */
  buffered(): number;
  /** Send this last message, then close. */
  end(message: unknown): void;
  readonly closed: boolean;
}

type Msg = Record<string, unknown>;

export class ProtocolServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 0 });
  private readonly upgrader = createHttpServer();
  /** One read batcher per group (group 0 only, unless sharded). */
  private readonly reads: ReadBatcher[];

  constructor(
    private readonly ctx: ApiContext,
    private readonly opts: ProtocolServerOptions,
  ) {
    this.reads = (ctx.shards?.all() ?? [ctx]).map((g) => new ReadBatcher(g.raft));
    const onSocket = (socket: Socket) => this.accept(socket);
    const tls = opts.tls;
    this.server = tls
      ? createTlsServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca ? { ca: tls.ca } : {}),
            requestCert: tls.requireClientCert ?? false,
            rejectUnauthorized: tls.requireClientCert ?? false,
          },
          onSocket,
        )
      : createNetServer(onSocket);
    this.server.on('error', () => {});
    // The WebSocket form: an HTTP request on the same port, upgraded on one path.
    this.upgrader.on('upgrade', (req: IncomingMessage, socket, head) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== PROTOCOL_WS_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket as Socket, head, (ws) => this.acceptWs(ws));
    });
    this.upgrader.on('request', (_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`the client protocol: connect with TCP frames, or a WebSocket on ${PROTOCOL_WS_PATH}\n`);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get address(): { host: string; port: number } | null {
    const a = this.server.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : null;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private refuse(reason: RefusalReason): void {
    this.opts.onRefused?.(reason);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    // A connection that sends nothing at all is closed after the hello timeout.
    const silent = setTimeout(() => {
      this.refuse('no_hello');
      socket.end(
        encodeFrame({
          t: 'error',
          code: 'HELLO_REQUIRED',
          message: `no hello within ${this.helloTimeoutMs} ms; the connection is closed`,
        }),
      );
      setTimeout(() => socket.destroy(), 1000).unref();
    }, this.helloTimeoutMs);
    silent.unref();
    socket.once('close', () => clearTimeout(silent));
    // The first bytes tell the two forms apart: a frame's length, or an HTTP request line.
    socket.once('data', (first: Buffer) => {
      clearTimeout(silent);
      socket.pause();
      socket.unshift(first);
      if (first.length >= 4 && first.subarray(0, 4).toString('latin1') === 'GET ') {
        this.upgrader.emit('connection', socket);
        socket.resume();
        return;
      }
      this.serveRaw(socket);
      socket.resume();
    });
  }

  private serveRaw(socket: Socket): void {
    const reader = new FrameReader(this.opts.maxFrameBytes);
    let closed = false;
    let corked = false;
    const link: Link = {
      send: (m) => {
        if (closed) return;
        // Answers ready in the same turn go out in one write.
        if (!corked) {
          corked = true;
          socket.cork();
          process.nextTick(() => {
            corked = false;
            socket.uncork();
          });
        }
        socket.write(encodeFrame(m));
      },
      end: (m) => {
        if (closed) return;
        closed = true;
        socket.end(encodeFrame(m));
        // A peer that does not read its answer is not waited for.
        setTimeout(() => socket.destroy(), 1000).unref();
      },
      get closed() {
        return closed || socket.destroyed;
      },
      buffered: () => socket.writableLength,
    };
    const session = new Session(this, link);
    socket.on('close', () => {
      closed = true;
      session.end();
    });
    socket.on('data', (chunk: Buffer) => {
      if (closed) return;
      let bodies: Buffer[];
      try {
        bodies = reader.push(chunk);
      } catch (err) {
        const e = err as FrameTooLargeError;
        this.refuse('frame_too_large');
        link.end({
          t: 'error',
          code: 'FRAME_TOO_LARGE',
          message: `${e.message} (client.maxFrameBytes); the connection is closed`,
        });
        return;
      }
      for (const b of bodies) {
        if (closed) return;
        session.frame(b);
      }
    });
  }

  private acceptWs(ws: WebSocket): void {
    let closed = false;
    const link: Link = {
      send: (m) => {
        if (!closed) ws.send(encodeFrame(m).subarray(4));
      },
      end: (m) => {
        if (closed) return;
        closed = true;
        ws.send(encodeFrame(m).subarray(4), () => ws.close(1008));
      },
      get closed() {
        return closed || ws.readyState !== ws.OPEN;
      },
      buffered: () => ws.bufferedAmount,
    };
    const session = new Session(this, link);
    ws.on('close', () => {
      closed = true;
      session.end();
    });
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (closed) return;
      const body = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (!isBinary) {
        this.refuse('malformed_frame');
        link.end({
          t: 'error',
          code: 'MALFORMED_FRAME',
          message: 'send binary messages (msgpack), not text',
        });
        return;
      }
      if (body.length > this.opts.maxFrameBytes) {
        this.refuse('frame_too_large');
        link.end({
          t: 'error',
          code: 'FRAME_TOO_LARGE',
          message: `a frame of ${body.length} bytes exceeds the limit of ${this.opts.maxFrameBytes} bytes (client.maxFrameBytes)`,
        });
        return;
      }
      session.frame(body);
    });
  }

  // ---------------------------------------------------------------- operations

  /**
   * Run one request; its answer, or throws an `HttpError` (or a runtime error). On a
   * sharded node a key's operation runs in the key's group (a not-leader error names the
   * group), a listing merges every group's, and everything else runs in group 0.
   */
  async run(m: Msg): Promise<Msg> {
    const shards = this.ctx.shards;
    if (!shards) return this.runIn(this.ctx, m);
    const op = m.op as string;
    let group = 0;
    if (op === 'get' || op === 'put' || op === 'delete') group = shards.ofKey(keyOf(m, 'key'));
    else if (op === 'txn') {
      // Parsed once here; `runIn` takes it as parsed (`parsedTxn`).
      const t = parseTxn(m, this.ctx.options.maxValueBytes);
      group = txnGroup(this.ctx, [...t.compare, ...t.success, ...t.failure]);
      const answer = await inGroup(group, () => this.runIn(shards.ctx(group), m, t));
      return { ...answer, group };
    } else if (op === 'list') return this.listAll(m);
    const answer = await inGroup(group, () => this.runIn(shards.ctx(group), m));
    return op === 'get' || op === 'put' || op === 'delete' ? { ...answer, group } : answer;
  }

  /** A listing over every group, merged in key order (each group's read linearizable on its own). */
  private async listAll(m: Msg): Promise<Msg> {
    const groups = this.ctx.shards!.all();
    const { prefix, limit, after } = listParams(m);
    const timeoutMs = this.deadline(m.timeoutMs);
    await Promise.all(groups.map((g) => inGroup(g.group ?? 0, () => this.barrier(g, m, timeoutMs))));
    return listAnswer(
      mergedList(
        groups.map((g) => g.machine),
        prefix,
        limit,
        after,
      ),
    );
  }

  private async runIn(ctx: ApiContext, m: Msg, parsedTxn?: ReturnType<typeof parseTxn>): Promise<Msg> {
    const timeoutMs = this.deadline(m.timeoutMs);
    switch (m.op as string) {
      case 'get': {
        const key = keyOf(m, 'key');
        const readIndex = await this.barrier(ctx, m, timeoutMs);
        const rec = ctx.machine.get(key);
        if (!rec) return { found: false, ...readIndex };
        return { found: true, value: rec.value, version: rec.version, modIndex: rec.modIndex, ...readIndex };
      }
      case 'put': {
        const key = keyOf(m, 'key');
        const value = bytes(m.value, 'value', ctx.options.maxValueBytes);
        const cmd: Command = {
          op: 'put',
          key,
          value,
          ...(m.ifVersion !== undefined ? { ifVersion: version(m.ifVersion) } : {}),
          ...(m.expect !== undefined
            ? { ifValue: bytes(m.expect, 'expect', ctx.options.maxValueBytes) }
            : {}),
          ...ref(m),
        };
        const a = await this.propose(ctx, cmd, timeoutMs);
        const r = a.result as Extract<ApplyResult, { op: 'put' }>;
        return {
          key,
          version: r.version,
          modIndex: r.modIndex,
          index: r.index,
          created: r.created,
          duplicate: a.duplicate,
        };
      }
      case 'delete': {
        const key = keyOf(m, 'key');
        const a = await this.propose(
          ctx,
          {
            op: 'delete',
            key,
            ...(m.ifVersion !== undefined ? { ifVersion: version(m.ifVersion) } : {}),
            ...ref(m),
          },
          timeoutMs,
        );
        const r = a.result as Extract<ApplyResult, { op: 'delete' }>;
        return { key, deleted: r.deleted, index: r.index, duplicate: a.duplicate };
      }
      case 'list': {
        const { prefix, limit, after } = listParams(m);
        await this.barrier(ctx, m, timeoutMs);
        return listAnswer(ctx.machine.list(prefix, limit, after));
      }
      case 'txn': {
        const t = parsedTxn ?? parseTxn(m, ctx.options.maxValueBytes);
        const a = await this.propose(ctx, { op: 'txn', ...t, ...ref(m) }, timeoutMs);
        const r = a.result as Extract<ApplyResult, { op: 'txn' }>;
        return { succeeded: r.succeeded, index: r.index, results: r.results, duplicate: a.duplicate };
      }
      case 'lease.acquire':
      case 'lease.renew':
      case 'lease.release': {
        const name = keyOf(m, 'name');
        const holder = str(m.holder, 'holder', 1, 128);
        const action = (m.op as string).slice('lease.'.length) as 'acquire' | 'renew' | 'release';
        const cmd: Command =
          action === 'acquire'
            ? {
                op: 'acquire',
                name,
                holder,
                ttlMs: integer(
                  m.ttlMs,
                  'ttlMs',
                  ctx.options.leaseTtlMs?.min ?? 100,
                  ctx.options.leaseTtlMs?.max ?? 3_600_000,
                ),
                ...ref(m),
              }
            : {
                op: action,
                name,
                holder,
                token: integer(m.token, 'token', 1, Number.MAX_SAFE_INTEGER),
                ...ref(m),
              };
        const a = await this.propose(ctx, cmd, timeoutMs);
        const r = a.result as Extract<ApplyResult, { ok: true }>;
        if (r.op === 'release') return { released: r.released, duplicate: a.duplicate };
        if (r.op === 'acquire' || r.op === 'renew') return { ...leaseJson(r.lease), duplicate: a.duplicate };
        throw new HttpError(500, 'INTERNAL', `unexpected result ${r.op}`);
      }
      case 'lease.get': {
        const name = keyOf(m, 'name');
        await this.barrier(ctx, m, timeoutMs);
        const l = ctx.machine.leases.get(name);
        if (!l) return { found: false };
        return {
          found: true,
          ...leaseJson(l),
          remainingMs: ctx.raft.isLeader ? ctx.leases.remainingMs(name) : null,
        };
      }
      case 'health': {
        const h = health(ctx);
        return { ...h, leaderAddress: this.protocolAddressOf(h.leaderId) };
      }
    }
    throw new HttpError(400, 'UNKNOWN_OP', `unknown operation ${JSON.stringify(m.op)}`);
  }

  /** Propose, and throw the typed form of a definite refusal (a failed compare, a held lease). */
  private async propose(ctx: ApiContext, cmd: Command, timeoutMs: number): Promise<Applied> {
    admitWrite(ctx, cmd);
    const a = await ctx.raft.propose(encodeCommand(cmd), { timeoutMs });
    check(a.result);
    return a;
  }

  private async barrier(
    ctx: ApiContext,
    m: Msg,
    timeoutMs: number,
  ): Promise<{ readIndex?: number; stale?: true }> {
    if (m.stale === true) return { stale: true };
    if (m.stale !== undefined && m.stale !== false)
      throw badRequest('BAD_REQUEST', '"stale" must be true or false');
    await this.reads[ctx.group ?? 0]!.barrier(timeoutMs);
    return { readIndex: ctx.raft.applied };
  }

  private deadline(v: unknown): number {
    if (v === undefined) return this.ctx.options.defaultTimeoutMs;
    return integer(v, 'timeoutMs', 1, this.ctx.options.maxTimeoutMs);
  }

  /** The client-protocol address of a member, as far as known. */
  protocolAddressOf(id: string | null): string | null {
    if (id === null) return null;
    return this.ctx.members().find((x) => x.id === id)?.protocolAddress ?? null;
  }

  /** An error as the protocol answers it: the HTTP API's code and status. */
  errorAnswer(err: unknown): Msg {
    const e = fromRaftError(err);
    const out: Msg = {
      code: e.code,
      message: e.message,
      status: e.status,
      retryable: e.retryable,
      ...e.extra,
    };
    if (e.code === 'NOT_LEADER')
      out.leaderAddress = this.protocolAddressOf((e.extra.leaderId as string) ?? null);
    return out;
  }

  get helloTimeoutMs(): number {
    return this.opts.helloTimeoutMs ?? 10_000;
  }

  get maxInFlight(): number {
    return this.opts.maxInFlight;
  }

  get token(): string | null {
    return this.ctx.options.token;
  }

  /** Start a watch for a session: its frames go out with the request's id. */
  watch(id: number, m: Msg, link: Link): () => void {
    if (this.ctx.shards) return this.watchGroups(id, m, link);
    const from =
      m.fromIndex === undefined ? undefined : integer(m.fromIndex, 'fromIndex', 1, Number.MAX_SAFE_INTEGER);
    return openWatch(
      this.ctx,
      { ...watchPrefixes(m), ...(from !== undefined ? { fromIndex: from } : {}) },
      {
        batch: (index, changes) => link.send({ id, w: { index, changes } }),
        progress: (index) => link.send({ id, p: index }),
        buffered: () => link.buffered(),
        cutOff: (code, resumeFrom) => link.send(cutOffFrame(id, code, resumeFrom)),
      },
    );
  }

  /**
   * A watch on a sharded node (see `openGroupWatches`): batches carry their group
   * (`w: {group, index, changes}`), progress too (`p: index, g: group`), and a watch
   * resumes with `from: "<group>:<index>,…"`.
   */
  private watchGroups(id: number, m: Msg, link: Link): () => void {
    if (m.fromIndex !== undefined)
      throw badRequest(
        'INVALID_ARGUMENT',
        'this cluster shards its keys over groups, each with its own log index: resume with from: "<group>:<index>,…", not fromIndex',
      );
    return openGroupWatches(
      this.ctx,
      {
        ...watchPrefixes(m),
        from: parseFrom(
          m.from === undefined ? null : str(m.from, 'from', 1, 100_000),
          this.ctx.shards!.count,
        ),
      },
      {
        batch: (group, index, changes) => link.send({ id, w: { group, index, changes } }),
        progress: (group, index) => link.send({ id, p: index, g: group }),
        buffered: () => link.buffered(),
        cutOff: (code, resumeFrom) => link.send(cutOffFrame(id, code, resumeFrom)),
      },
    );
  }

  counted(reason: RefusalReason): void {
    this.refuse(reason);
  }

  request(): void {
    this.opts.onRequest?.();
  }

  hello(): Msg {
    const s = this.ctx.raft.status();
    return {
      t: 'hello',
      version: PROTOCOL_VERSION,
      nodeId: s.id,
      leaderId: s.leaderId,
      leaderAddress: this.protocolAddressOf(s.leaderId),
      ...(this.ctx.shards ? { groups: this.ctx.shards.count } : {}),
    };
  }
}

/** A listing's prefix, page size and start, validated. */
function listParams(m: Msg): { prefix: string; limit: number; after: string | undefined } {
  return {
    prefix: m.prefix === undefined ? '' : str(m.prefix, 'prefix', 0, 512),
    limit: m.limit === undefined ? 100 : integer(m.limit, 'limit', 1, 10_000),
    after: m.after === undefined ? undefined : str(m.after, 'after', 1, 512),
  };
}

/** A listing's answer: values as UTF-8 text. */
function listAnswer(page: ReturnType<typeof mergedList>): Msg {
  const dec = new TextDecoder();
  return {
    items: page.items.map((i) => ({
      key: i.key,
      value: dec.decode(i.value),
      version: i.version,
      modIndex: i.modIndex,
    })),
    more: page.more,
  };
}

/** What a watch request asks for: key, lease and partition-set prefixes (every key when none is given). */
function watchPrefixes(m: Msg): {
  keyPrefix: string | null;
  leasePrefix: string | null;
  partitionPrefix: string | null;
} {
  return {
    keyPrefix:
      m.prefix !== undefined
        ? str(m.prefix, 'prefix', 0, 512)
        : m.lease === undefined && m.partitions === undefined
          ? ''
          : null,
    leasePrefix: m.lease === undefined ? null : str(m.lease, 'lease', 0, 512),
    partitionPrefix: m.partitions === undefined ? null : str(m.partitions, 'partitions', 0, 512),
  };
}

/** A watch cut off for reading too slowly: where to resume (an index, or `g:i,…` when sharded). */
function cutOffFrame(id: number, code: string, resumeFrom: number | string): Msg {
  return {
    id,
    e: {
      code,
      status: 503,
      retryable: true,
      message: 'the watcher read too slowly; watch again from resumeFrom',
      resumeFrom,
    },
  };
}

/** One connection's state: the hello, then requests, each answered by id. */
class Session {
  private said = false;
  private inFlight = 0;
  /** Watches open on this connection, by request id. */
  private readonly watches = new Map<number, () => void>();

  /** A connection that never says hello does not hold a socket for ever. */
  private helloTimer: ReturnType<typeof setTimeout> | null;

  /** The connection is gone: stop its watches. */
  end(): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    for (const stop of this.watches.values()) stop();
    this.watches.clear();
  }

  constructor(
    private readonly server: ProtocolServer,
    private readonly link: Link,
  ) {
    this.helloTimer = setTimeout(() => {
      this.server.counted('no_hello');
      this.link.end({
        t: 'error',
        code: 'HELLO_REQUIRED',
        message: `no hello within ${this.server.helloTimeoutMs} ms; the connection is closed`,
      });
    }, this.server.helloTimeoutMs);
    this.helloTimer.unref();
  }

  frame(body: Buffer): void {
    let m: unknown;
    try {
      m = decodeBody(body);
    } catch (err) {
      this.server.counted('malformed_frame');
      this.link.end({
        t: 'error',
        code: 'MALFORMED_FRAME',
        message: `a frame is not msgpack: ${(err as Error).message}`,
      });
      return;
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m) || m instanceof Uint8Array) {
      this.server.counted('malformed_frame');
      this.link.end({ t: 'error', code: 'MALFORMED_FRAME', message: 'a frame must hold one msgpack map' });
      return;
    }
    const msg = m as Msg;
    if (!this.said) {
      this.hello(msg);
      return;
    }
    const id = msg.id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      this.server.counted('bad_request');
      this.link.end({
        t: 'error',
        code: 'MALFORMED_REQUEST',
        message: 'a request needs "id", an integer from 0 to 2^32-1, to be answered by',
      });
      return;
    }
    if (typeof msg.op !== 'string' || !PROTOCOL_OPS.has(msg.op)) {
      this.server.counted('unknown_op');
      this.link.send({
        id,
        e: {
          code: 'UNKNOWN_OP',
          status: 400,
          retryable: false,
          message: `unknown operation ${JSON.stringify(msg.op)}; known: ${[...PROTOCOL_OPS].join(', ')}`,
        },
      });
      return;
    }
    if (msg.op === 'watch' || msg.op === 'watch.cancel') {
      this.watchOp(id, msg);
      return;
    }
    if (this.inFlight >= this.server.maxInFlight) {
      this.server.counted('overloaded');
      this.link.send({
        id,
        e: {
          code: 'OVERLOADED',
          status: 429,
          retryable: true,
          message: `${this.server.maxInFlight} requests are already in flight on this connection (client.maxInFlight); wait for answers`,
        },
      });
      return;
    }
    this.inFlight++;
    this.server.request();
    this.server.run(msg).then(
      (r) => {
        this.inFlight--;
        this.link.send({ id, r });
      },
      (err) => {
        this.inFlight--;
        if (err instanceof HttpError && err.status === 400) this.server.counted('bad_request');
        this.link.send({ id, e: this.server.errorAnswer(err) });
      },
    );
  }

  private watchOp(id: number, msg: Msg): void {
    if (msg.op === 'watch.cancel') {
      const target = msg.watchId;
      const stop = typeof target === 'number' ? this.watches.get(target) : undefined;
      if (stop) {
        stop();
        this.watches.delete(target as number);
        this.link.send({ id: target, r: { cancelled: true } });
      }
      this.link.send({ id, r: { cancelled: stop !== undefined } });
      return;
    }
    if (this.watches.has(id) || this.watches.size >= this.server.maxInFlight) {
      this.server.counted(this.watches.has(id) ? 'bad_request' : 'overloaded');
      this.link.send({
        id,
        e: this.watches.has(id)
          ? {
              code: 'BAD_REQUEST',
              status: 400,
              retryable: false,
              message: `a watch with id ${id} is already open`,
            }
          : {
              code: 'OVERLOADED',
              status: 429,
              retryable: true,
              message: 'too many watches on this connection',
            },
      });
      return;
    }
    this.server.request();
    try {
      this.watches.set(id, this.server.watch(id, msg, this.link));
    } catch (err) {
      if (err instanceof HttpError && err.status === 400) this.server.counted('bad_request');
      this.link.send({ id, e: this.server.errorAnswer(err) });
    }
  }

  private hello(m: Msg): void {
    if (m.t !== 'hello') {
      this.server.counted('no_hello');
      this.link.end({
        t: 'error',
        code: 'HELLO_REQUIRED',
        message: 'the first frame must be {t: "hello", versions: [1], token?}',
      });
      return;
    }
    const versions = Array.isArray(m.versions) ? m.versions : [];
    if (!versions.includes(PROTOCOL_VERSION)) {
      this.server.counted('bad_version');
      this.link.end({
        t: 'error',
        code: 'UNSUPPORTED_VERSION',
        message: `this member speaks protocol version(s) ${PROTOCOL_VERSIONS.join(', ')}; the client offered ${JSON.stringify(versions).slice(0, 100)}`,
        versions: PROTOCOL_VERSIONS,
      });
      return;
    }
    const token = this.server.token;
    if (token !== null && !(typeof m.token === 'string' && sameSecret(m.token, token))) {
      this.server.counted('unauthorized');
      this.link.end({
        t: 'error',
        code: 'UNAUTHORIZED',
        status: 401,
        message: 'send the token from the node configuration (http.token) in the hello frame',
      });
      return;
    }
    this.said = true;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.link.send(this.server.hello());
  }
}

/**
 * Linearizable reads that arrive in the same turn share one ReadIndex round: the round
 * starts after all of them arrived, so it orders after each.
 */
class ReadBatcher {
  private open: { promise: Promise<void>; timeoutMs: number; start: () => void } | null = null;

  constructor(private readonly raft: RaftNode<Applied>) {}

  barrier(timeoutMs: number): Promise<void> {
    if (this.open) {
      this.open.timeoutMs = Math.max(this.open.timeoutMs, timeoutMs);
      return withDeadline(this.open.promise, timeoutMs);
    }
    let start!: () => void;
    const promise = new Promise<void>((resolve, reject) => {
      start = () => {
        const batch = this.open!;
        this.open = null;
        this.raft.read({ timeoutMs: batch.timeoutMs }).then(resolve, reject);
      };
    });
    // Nobody may hear a failure of a round whose readers all gave up already.
    promise.catch(() => {});
    this.open = { promise, timeoutMs, start };
    setImmediate(start);
    return withDeadline(promise, timeoutMs);
  }
}

function withDeadline(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () =>
        reject(
          new HttpError(
            504,
            'TIMEOUT',
            `the read barrier did not complete within ${ms} ms; retry (a read changes nothing)`,
          ),
        ),
      ms,
    );
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      (err) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}

// ---------------------------------------------------------------- validation

function keyOf(m: Msg, field: string): string {
  const v = m[field];
  if (typeof v !== 'string') throw badRequest('INVALID_KEY', `"${field}" must be a string`);
  return checkKey(v);
}

function str(v: unknown, field: string, min: number, max: number): string {
  if (typeof v !== 'string' || v.length < min || v.length > max)
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be a string of ${min} to ${max} characters`);
  return v;
}

function integer(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be an integer from ${min} to ${max}`);
  return v;
}

function version(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw badRequest('BAD_REQUEST', '"ifVersion" must be a version number (0: only if absent)');
  return v;
}

function bytes(v: unknown, field: string, limit: number): Uint8Array {
  let b: Uint8Array;
  if (v instanceof Uint8Array) b = v;
  else if (typeof v === 'string') b = enc.encode(v);
  else throw badRequest('BAD_REQUEST', `"${field}" must be bytes or a string`);
  if (b.byteLength > limit)
    throw new HttpError(413, 'VALUE_TOO_LARGE', `"${field}" exceeds ${limit} bytes (kv.maxValueBytes)`);
  return b;
}

/** The write's exactly-once identity, when given; both or neither. */
function ref(m: Msg): { ref?: { client: string; seq: number } } {
  if (m.cid === undefined && m.seq === undefined) return {};
  const client = m.cid;
  if (typeof client !== 'string' || client.length < 1 || client.length > 64 || !/^[\x21-\x7e]+$/.test(client))
    throw badRequest('BAD_REQUEST', '"cid" must be 1 to 64 printable ASCII characters, with "seq"');
  const seq = m.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    throw badRequest('BAD_REQUEST', '"seq" must be an integer >= 1, with "cid"');
  return { ref: { client, seq } };
}
