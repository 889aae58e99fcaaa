/**
 * The HTTP API of docs/http-api.md. Input is validated here, before anything is proposed:
 * nothing malformed reaches the log. Every request has a deadline.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeId, RaftNode } from '@quorate/raft';
import { type ClientRef, type Command, encodeCommand } from '../state/commands.js';
import type { Applied, ApplyResult, LeaseRecord, QuorateMachine } from '../state/machine.js';
import { badRequest, fromRaftError, HttpError } from './errors.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { PeerMonitor } from './peer-monitor.js';

export interface Member {
  readonly id: NodeId;
  readonly peerAddress: string;
  readonly clientAddress: string;
}

export interface ApiOptions {
  /** Largest value accepted, in bytes. */
  maxValueBytes: number;
  /** Default and largest request deadline. */
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** Bearer token required on every route but /health/live, when set. */
  token: string | null;
  /** Shortest and longest TTL a lease may ask for. */
  leaseTtlMs?: { min: number; max: number };
}

export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

export interface ApiContext {
  readonly raft: RaftNode<Applied>;
  readonly machine: QuorateMachine;
  /** The current members (voters and learners) with their addresses. */
  members(): readonly Member[];
  readonly leases: LeaseKeeper;
  readonly peers: PeerMonitor;
  readonly options: ApiOptions;
  readonly metrics?: MetricsEndpoint;
  readonly dashboardHtml?: string;
}

const MAX_KEY_BYTES = 512;
const MAX_JSON_BYTES = 64 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function createApi(ctx: ApiContext): Handler {
  return (req, res) => {
    handle(ctx, req, res).catch((err) => sendError(res, fromRaftError(err)));
  };
}

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (path === '/health/live') return sendJson(res, 200, { ok: true });
  if (ctx.options.token !== null && !authorized(req, url, method, ctx.options.token)) {
    throw new HttpError(
      401,
      'UNAUTHORIZED',
      'send "Authorization: Bearer <token>" with the token from the node configuration (the dashboard: open /?token=<token>)',
    );
  }

  if (path === '/health') return only(method, ['GET'], () => sendJson(res, 200, health(ctx)));
  if (path === '/health/ready') {
    return only(method, ['GET'], () => {
      const h = health(ctx);
      sendJson(res, h.leaderId !== null && h.appliedIndex >= h.commitIndex ? 200 : 503, h);
    });
  }
  if (path === '/cluster/status') return only(method, ['GET'], () => sendJson(res, 200, clusterStatus(ctx)));
  if (path === '/cluster/events') return only(method, ['GET'], () => streamEvents(ctx, req, res));
  if (path === '/metrics') {
    return only(method, ['GET'], async () => {
      if (!ctx.metrics)
        throw new HttpError(404, 'ROUTE_NOT_FOUND', "metrics are disabled in this node's configuration");
      const body = await ctx.metrics.render();
      res.writeHead(200, { 'Content-Type': ctx.metrics.contentType });
      res.end(body);
    });
  }
  if (path === '/' || path === '/index.html') {
    return only(method, ['GET'], () => {
      if (!ctx.dashboardHtml) throw new HttpError(404, 'ROUTE_NOT_FOUND', 'no dashboard');
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(ctx.dashboardHtml);
    });
  }
  if (path === '/kv') return only(method, ['GET'], () => listKeys(ctx, req, url, res));
  if (path.startsWith('/kv/')) {
    const key = parseKey(path.slice(4));
    if (method === 'GET') return getKey(ctx, req, url, res, key);
    if (method === 'PUT') return putKey(ctx, req, url, res, key);
    if (method === 'DELETE') return deleteKey(ctx, req, res, key);
    return notAllowed(['GET', 'PUT', 'DELETE']);
  }
  if (path.startsWith('/leases/')) return leaseRoute(ctx, req, url, res, path.slice(8), method);
  if (path === '/admin/transfer-leadership') {
    return only(method, ['POST'], async () => {
      const body = await readJson(req);
      const to = body.to;
      if (to !== undefined && (typeof to !== 'string' || !ctx.members().some((m) => m.id === to))) {
        throw badRequest(
          'INVALID_ARGUMENT',
          `"to" must be the id of a member (${ctx
            .members()
            .map((m) => m.id)
            .join(', ')})`,
        );
      }
      await ctx.raft.transferLeadership(to as string | undefined, { timeoutMs: deadline(ctx, req) });
      sendJson(res, 200, { leaderId: ctx.raft.leaderId });
    });
  }
  if (path === '/admin/members' || path.startsWith('/admin/members/'))
    return membersRoute(ctx, req, res, url, method);
  if (path === '/admin/state-hash') {
    // A digest of the replicated state, to compare replicas at the same applied index.
    return only(method, ['GET'], () =>
      sendJson(res, 200, { appliedIndex: ctx.raft.applied, hash: ctx.machine.hash() }),
    );
  }
  throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${path}; see docs/http-api.md`);
}

// ---------------------------------------------------------------- membership

function confJson(ctx: ApiContext) {
  const s = ctx.raft.status();
  const byId = new Map(ctx.members().map((m) => [m.id, m]));
  const one = (id: string, role: 'voter' | 'learner') => ({
    id,
    role,
    peerAddress: byId.get(id)?.peerAddress ?? null,
    clientAddress: byId.get(id)?.clientAddress ?? null,
  });
  return {
    members: [...s.voters.map((id) => one(id, 'voter')), ...s.learners.map((id) => one(id, 'learner'))],
  };
}

/** How far behind the commit index a learner may be and still be promoted (entries). */
const PROMOTE_MAX_LAG = 1000;

const ADDRESS = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

async function membersRoute(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  method: string,
) {
  const path = url.pathname;
  const timeoutMs = deadline(ctx, req);
  if (path === '/admin/members') {
    if (method === 'GET') return sendJson(res, 200, confJson(ctx));
    if (method !== 'POST') notAllowed(['GET', 'POST']);
    const body = await readJson(req);
    const id = str(body, 'id', 64);
    const peerAddress = str(body, 'peerAddress', 256);
    const clientAddress = str(body, 'clientAddress', 256);
    if (!ADDRESS.test(peerAddress)) throw badRequest('INVALID_ARGUMENT', '"peerAddress" must be host:port');
    if (!/^https?:\/\/[^\s/]+$/.test(clientAddress)) {
      throw badRequest('INVALID_ARGUMENT', '"clientAddress" must be a URL like http://host:port');
    }
    if (ctx.members().some((m) => m.id === id))
      throw new HttpError(409, 'ALREADY_MEMBER', `${id} is already a member`);
    await ctx.raft.changeMembership(
      { kind: 'addLearner', node: id, meta: { peerAddress, clientAddress } },
      { timeoutMs },
    );
    return sendJson(res, 200, confJson(ctx));
  }
  const rest = path.slice('/admin/members/'.length);
  const [rawId, action] = rest.split('/');
  const id = decodeURIComponent(rawId ?? '');
  const known = ctx.members().find((m) => m.id === id);
  if (!known) throw new HttpError(404, 'NOT_FOUND', `${id} is not a member`);
  if (action === 'promote') {
    if (method !== 'POST') notAllowed(['POST']);
    // A voter that is far behind cannot help commit anything until it has caught up, so
    // promoting it early only makes the quorum harder to reach: refuse, unless forced.
    const s = ctx.raft.status();
    const pr = s.progress?.[id];
    const force = url.searchParams.get('force') === 'true';
    if (pr?.isLearner && !force && s.commit - pr.match > PROMOTE_MAX_LAG) {
      throw new HttpError(
        409,
        'LEARNER_BEHIND',
        `${id} has ${pr.match} of ${s.commit} committed entries; promote it once it has caught up (within ${PROMOTE_MAX_LAG}), or pass ?force=true`,
        { match: pr.match, commitIndex: s.commit },
      );
    }
    await ctx.raft.changeMembership(
      {
        kind: 'addVoter',
        node: id,
        meta: { peerAddress: known.peerAddress, clientAddress: known.clientAddress },
      },
      { timeoutMs },
    );
    return sendJson(res, 200, confJson(ctx));
  }
  if (action === undefined) {
    if (method !== 'DELETE') notAllowed(['DELETE']);
    await ctx.raft.changeMembership({ kind: 'remove', node: id }, { timeoutMs });
    return sendJson(res, 200, confJson(ctx));
  }
  throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${path}`);
}

// ---------------------------------------------------------------- helpers

function only(method: string, allowed: string[], fn: () => void | Promise<void>): void | Promise<void> {
  if (!allowed.includes(method)) return notAllowed(allowed);
  return fn();
}

function notAllowed(allowed: string[]): never {
  throw new HttpError(
    405,
    'METHOD_NOT_ALLOWED',
    `use ${allowed.join(' or ')}`,
    {},
    { Allow: allowed.join(', ') },
  );
}

/**
 * Routes a browser opens without being able to set headers (the dashboard page and its
 * event stream): there, and for GET only, the token may come as `?token=`.
 */
const TOKEN_IN_QUERY = new Set(['/', '/index.html', '/cluster/events']);

function authorized(req: IncomingMessage, url: URL, method: string, token: string): boolean {
  const h = req.headers.authorization;
  let given: string | null = null;
  if (typeof h === 'string' && h.startsWith('Bearer ')) given = h.slice('Bearer '.length);
  else if (method === 'GET' && TOKEN_IN_QUERY.has(url.pathname)) given = url.searchParams.get('token');
  return given !== null && sameSecret(given, token);
}

/** Compare without leaking, through timing, how much of the token a guess got right. */
function sameSecret(a: string, b: string): boolean {
  const digest = (x: string) => createHash('sha256').update(x).digest();
  return timingSafeEqual(digest(a), digest(b));
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const s = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(s),
    ...headers,
  });
  res.end(s);
}

export function sendError(res: ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = e.body();
  res.writeHead(e.status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    ...e.headers,
  });
  res.end(body);
}

function deadline(ctx: ApiContext, req: IncomingMessage): number {
  const h = req.headers['x-quorate-timeout-ms'];
  if (h === undefined) return ctx.options.defaultTimeoutMs;
  const n = Number(h);
  if (!Number.isInteger(n) || n < 1 || n > ctx.options.maxTimeoutMs) {
    throw badRequest(
      'BAD_REQUEST',
      `X-Quorate-Timeout-Ms must be an integer from 1 to ${ctx.options.maxTimeoutMs}`,
    );
  }
  return n;
}

function parseKey(raw: string): string {
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw badRequest('INVALID_KEY', 'the key is not valid URL-encoded UTF-8');
  }
  const bytes = Buffer.byteLength(key);
  if (bytes === 0) throw badRequest('INVALID_KEY', 'the key is empty; use /kv/<key>');
  if (bytes > MAX_KEY_BYTES)
    throw badRequest('INVALID_KEY', `the key has ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(key))
    throw badRequest('INVALID_KEY', 'keys may not contain control characters');
  return key;
}

function clientRef(req: IncomingMessage): ClientRef | undefined {
  const client = req.headers['x-quorate-client-id'];
  const seq = req.headers['x-quorate-seq'];
  if (client === undefined && seq === undefined) return undefined;
  if (
    typeof client !== 'string' ||
    client.length < 1 ||
    client.length > 64 ||
    !/^[\x21-\x7e]+$/.test(client)
  ) {
    throw badRequest(
      'BAD_REQUEST',
      'X-Quorate-Client-Id must be 1 to 64 printable ASCII characters, with X-Quorate-Seq',
    );
  }
  const n = Number(seq);
  if (typeof seq !== 'string' || !Number.isSafeInteger(n) || n < 1) {
    throw badRequest('BAD_REQUEST', 'X-Quorate-Seq must be an integer >= 1, with X-Quorate-Client-Id');
  }
  return { client, seq: n };
}

function ifVersion(req: IncomingMessage): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const v = Number(String(h).replace(/^"|"$/g, ''));
  if (!Number.isSafeInteger(v) || v < 0)
    throw badRequest('BAD_REQUEST', 'If-Match must be a version number (0: only if absent)');
  return v;
}

async function readBody(req: IncomingMessage, limit: number, tooLarge: () => HttpError): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(
    req,
    MAX_JSON_BYTES,
    () => new HttpError(413, 'BAD_REQUEST', 'the JSON body is too large'),
  );
  if (body.byteLength === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(body));
  } catch (err) {
    throw badRequest('MALFORMED_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw badRequest('MALFORMED_JSON', 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

async function propose(ctx: ApiContext, req: IncomingMessage, cmd: Command): Promise<Applied> {
  return ctx.raft.propose(encodeCommand(cmd), { timeoutMs: deadline(ctx, req) });
}

/** Throws the HTTP form of a definite failure result. */
function check(r: ApplyResult): asserts r is Extract<ApplyResult, { ok: true }> {
  if (r.ok) return;
  if (r.code === 'CAS_FAILED') {
    throw new HttpError(409, 'CAS_FAILED', 'the compare-and-set precondition does not hold', {
      current: r.current,
    });
  }
  if (r.code === 'STALE_SEQUENCE') {
    throw new HttpError(
      409,
      'STALE_SEQUENCE',
      `this sequence is older than the client's window (highest ${r.highest}); use a new sequence`,
      {
        highest: r.highest,
      },
    );
  }
  throw new HttpError(
    409,
    r.code,
    r.code === 'LEASE_HELD' ? 'the lease is held by another holder' : 'this holder no longer holds the lease',
    { lease: r.lease ? leaseJson(r.lease) : null },
  );
}

function dupHeader(a: Applied): Record<string, string> {
  return a.duplicate ? { 'X-Quorate-Duplicate': 'true' } : {};
}

async function readBarrier(ctx: ApiContext, req: IncomingMessage, url: URL): Promise<Record<string, string>> {
  if (url.searchParams.get('stale') === 'true') return { 'X-Quorate-Stale': 'true' };
  await ctx.raft.read({ timeoutMs: deadline(ctx, req) });
  return { 'X-Quorate-Read-Index': String(ctx.raft.applied) };
}

// ---------------------------------------------------------------- key-value

async function getKey(
  ctx: ApiContext,
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
  key: string,
): Promise<void> {
  const headers = await readBarrier(ctx, req, url);
  const rec = ctx.machine.get(key);
  if (!rec) throw new HttpError(404, 'NOT_FOUND', `no key ${JSON.stringify(key)}`);
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': rec.value.byteLength,
    'X-Quorate-Version': String(rec.version),
    'X-Quorate-Mod-Index': String(rec.modIndex),
    ...headers,
  });
  res.end(rec.value);
}

async function putKey(
  ctx: ApiContext,
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
  key: string,
): Promise<void> {
  const ref = clientRef(req);
  const version = ifVersion(req);
  const expect = url.searchParams.get('expect');
  const limit = ctx.options.maxValueBytes;
  const value = await readBody(
    req,
    limit,
    () => new HttpError(413, 'VALUE_TOO_LARGE', `the value exceeds ${limit} bytes (kv.maxValueBytes)`),
  );
  const cmd: Command = {
    op: 'put',
    key,
    value,
    ...(version !== undefined ? { ifVersion: version } : {}),
    ...(expect !== null ? { ifValue: enc.encode(expect) } : {}),
    ...(ref ? { ref } : {}),
  };
  const a = await propose(ctx, req, cmd);
  check(a.result);
  const r = a.result as Extract<ApplyResult, { op: 'put' }>;
  sendJson(
    res,
    200,
    { key, version: r.version, modIndex: r.modIndex, index: r.index, created: r.created },
    dupHeader(a),
  );
}

async function deleteKey(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  key: string,
): Promise<void> {
  const ref = clientRef(req);
  const version = ifVersion(req);
  req.resume();
  const a = await propose(ctx, req, {
    op: 'delete',
    key,
    ...(version !== undefined ? { ifVersion: version } : {}),
    ...(ref ? { ref } : {}),
  });
  check(a.result);
  const r = a.result as Extract<ApplyResult, { op: 'delete' }>;
  sendJson(res, 200, { key, deleted: r.deleted, index: r.index }, dupHeader(a));
}

async function listKeys(ctx: ApiContext, req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
  const prefix = url.searchParams.get('prefix') ?? '';
  const limitRaw = url.searchParams.get('limit');
  const limit = limitRaw === null ? 100 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw badRequest('INVALID_ARGUMENT', 'limit must be an integer from 1 to 10000');
  }
  const encoding = url.searchParams.get('encoding') ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64')
    throw badRequest('INVALID_ARGUMENT', 'encoding must be utf8 or base64');
  const after = url.searchParams.get('after') || undefined;
  const headers = await readBarrier(ctx, req, url);
  const { items, more } = ctx.machine.list(prefix, limit, after);
  sendJson(
    res,
    200,
    {
      items: items.map((i) => ({
        key: i.key,
        value: Buffer.from(i.value.buffer, i.value.byteOffset, i.value.byteLength).toString(encoding),
        version: i.version,
        modIndex: i.modIndex,
      })),
      more,
    },
    headers,
  );
}

// ---------------------------------------------------------------- leases

function leaseJson(l: LeaseRecord) {
  return { name: l.name, holder: l.holder, token: l.token, ttlMs: l.ttlMs };
}

function str(body: Record<string, unknown>, field: string, max: number): string {
  const v = body[field];
  if (typeof v !== 'string' || v.length < 1 || v.length > max) {
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be a string of 1 to ${max} characters`);
  }
  return v;
}

function int(body: Record<string, unknown>, field: string, min: number, max: number): number {
  const v = body[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

async function leaseRoute(
  ctx: ApiContext,
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
  rest: string,
  method: string,
): Promise<void> {
  const slash = rest.lastIndexOf('/');
  const action = slash >= 0 ? rest.slice(slash + 1) : '';
  const isAction = ['acquire', 'renew', 'release'].includes(action);
  const name = parseKey(isAction ? rest.slice(0, slash) : rest);
  if (!isAction) {
    return only(method, ['GET'], async () => {
      const headers = await readBarrier(ctx, req, url);
      const l = ctx.machine.leases.get(name);
      if (!l) throw new HttpError(404, 'NOT_FOUND', `no lease ${JSON.stringify(name)} is held`);
      sendJson(
        res,
        200,
        { ...leaseJson(l), remainingMs: ctx.raft.isLeader ? ctx.leases.remainingMs(name) : null },
        headers,
      );
    });
  }
  if (method !== 'POST') notAllowed(['POST']);
  const ref = clientRef(req);
  const body = await readJson(req);
  const holder = str(body, 'holder', 128);
  let cmd: Command;
  if (action === 'acquire') {
    cmd = {
      op: 'acquire',
      name,
      holder,
      ttlMs: int(body, 'ttlMs', ctx.options.leaseTtlMs?.min ?? 100, ctx.options.leaseTtlMs?.max ?? 3_600_000),
      ...(ref ? { ref } : {}),
    };
  } else {
    const token = int(body, 'token', 1, Number.MAX_SAFE_INTEGER);
    cmd = { op: action as 'renew' | 'release', name, holder, token, ...(ref ? { ref } : {}) };
  }
  const a = await propose(ctx, req, cmd);
  check(a.result);
  const r = a.result;
  if (r.op === 'release') return sendJson(res, 200, { released: r.released }, dupHeader(a));
  if (r.op === 'acquire' || r.op === 'renew') return sendJson(res, 200, leaseJson(r.lease), dupHeader(a));
}

// ---------------------------------------------------------------- health and cluster

export function health(ctx: ApiContext) {
  const s = ctx.raft.status();
  const leader = s.leaderId;
  return {
    nodeId: s.id,
    state: s.role,
    isLeader: s.role === 'leader',
    leaderId: leader,
    leaderAddress: leader ? (ctx.members().find((m) => m.id === leader)?.clientAddress ?? null) : null,
    term: s.term,
    commitIndex: s.commit,
    appliedIndex: ctx.raft.applied,
    snapshotting: ctx.raft.snapshotting,
  };
}

export function clusterStatus(ctx: ApiContext) {
  const s = ctx.raft.status();
  const last = s.lastIndex;
  return {
    nodeId: s.id,
    leaderId: s.leaderId,
    term: s.term,
    members: ctx.members().map((m) => {
      const pr = s.progress?.[m.id];
      const seen = ctx.peers.get(m.id);
      const self = m.id === s.id;
      return {
        id: m.id,
        role: self ? s.role : (seen?.state ?? (pr ? (pr.isLearner ? 'learner' : 'follower') : 'unknown')),
        healthy: self ? true : pr ? pr.recentActive : (seen?.healthy ?? false),
        peerAddress: m.peerAddress,
        clientAddress: m.clientAddress,
        term: self ? s.term : (seen?.term ?? null),
        commitIndex: self ? s.commit : (seen?.commitIndex ?? null),
        appliedIndex: self ? ctx.raft.applied : (seen?.appliedIndex ?? null),
        matchIndex: pr ? pr.match : null,
        lag: pr ? Math.max(0, last - pr.match) : null,
      };
    }),
  };
}

function streamEvents(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'Access-Control-Allow-Origin': '*',
  });
  const push = () => {
    res.write(
      `event: status\ndata: ${JSON.stringify({ at: Date.now(), health: health(ctx), cluster: clusterStatus(ctx) })}\n\n`,
    );
  };
  push();
  const timer = setInterval(push, 1000);
  const stop = () => clearInterval(timer);
  req.on('close', stop);
  res.on('error', stop);
}
