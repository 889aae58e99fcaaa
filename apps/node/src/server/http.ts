/**
 * What every route shares: method checks, authentication, JSON answers and errors,
 * deadlines, keys, exactly-once headers, bodies, proposals and read barriers. Input is
 * validated here, before anything is proposed: nothing malformed reaches the log.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ClientRef, type Command, encodeCommand } from '../state/commands.js';
import type { Applied, ApplyResult, LeaseRecord } from '../state/machine.js';
import type { ApiContext } from './api.js';
import { badRequest, HttpError } from './errors.js';

export const MAX_KEY_BYTES = 512;
const MAX_JSON_BYTES = 64 * 1024;
export const enc = new TextEncoder();
export const dec = new TextDecoder('utf-8', { fatal: true });

export function only(
  method: string,
  allowed: string[],
  fn: () => void | Promise<void>,
): void | Promise<void> {
  if (!allowed.includes(method)) return notAllowed(allowed);
  return fn();
}

export function notAllowed(allowed: string[]): never {
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
const TOKEN_IN_QUERY = new Set(['/', '/index.html', '/cluster/events', '/watch']);

export function authorized(req: IncomingMessage, url: URL, method: string, token: string): boolean {
  const h = req.headers.authorization;
  let given: string | null = null;
  if (typeof h === 'string' && h.startsWith('Bearer ')) given = h.slice('Bearer '.length);
  else if (method === 'GET' && TOKEN_IN_QUERY.has(url.pathname)) given = url.searchParams.get('token');
  return given !== null && sameSecret(given, token);
}

/** Compare without leaking, through timing, how much of the token a guess got right. */
export function sameSecret(a: string, b: string): boolean {
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

export function deadline(ctx: ApiContext, req: IncomingMessage): number {
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

export function parseKey(raw: string): string {
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw badRequest('INVALID_KEY', 'the key is not valid URL-encoded UTF-8');
  }
  return checkKey(key);
}

/** A key (or lease name) as given, checked: 1 to 512 bytes of UTF-8, no control characters. */
export function checkKey(key: string): string {
  const bytes = Buffer.byteLength(key);
  if (bytes === 0) throw badRequest('INVALID_KEY', 'the key is empty; use /kv/<key>');
  if (bytes > MAX_KEY_BYTES)
    throw badRequest('INVALID_KEY', `the key has ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(key))
    throw badRequest('INVALID_KEY', 'keys may not contain control characters');
  return key;
}

export function clientRef(req: IncomingMessage): ClientRef | undefined {
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

export function ifVersion(req: IncomingMessage): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const v = Number(String(h).replace(/^"|"$/g, ''));
  if (!Number.isSafeInteger(v) || v < 0)
    throw badRequest('BAD_REQUEST', 'If-Match must be a version number (0: only if absent)');
  return v;
}

export async function readBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: () => HttpError,
): Promise<Uint8Array> {
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

export async function readJson(
  req: IncomingMessage,
  limit = MAX_JSON_BYTES,
): Promise<Record<string, unknown>> {
  const body = await readBody(
    req,
    limit,
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

export async function propose(ctx: ApiContext, req: IncomingMessage, cmd: Command): Promise<Applied> {
  admitWrite(ctx, cmd);
  return ctx.raft.propose(encodeCommand(cmd), { timeoutMs: deadline(ctx, req) });
}

/** Throws the HTTP form of a definite failure result. */
export function check(r: ApplyResult): asserts r is Extract<ApplyResult, { ok: true }> {
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
  if ('message' in r) {
    const status = r.code.endsWith('_NOT_FOUND')
      ? 404
      : r.code === 'UNKNOWN_MEMBER' || r.code === 'INVALID_ELIGIBLE'
        ? 400
        : 409;
    throw new HttpError(status, r.code, r.message, r.current ? { ...r.current } : undefined);
  }
  throw new HttpError(
    409,
    r.code,
    r.code === 'LEASE_HELD' ? 'the lease is held by another holder' : 'this holder no longer holds the lease',
    { lease: r.lease ? leaseJson(r.lease) : null },
  );
}

export function dupHeader(a: Applied): Record<string, string> {
  return a.duplicate ? { 'X-Quorate-Duplicate': 'true' } : {};
}

export async function readBarrier(
  ctx: ApiContext,
  req: IncomingMessage,
  url: URL,
): Promise<Record<string, string>> {
  if (url.searchParams.get('stale') === 'true') return { 'X-Quorate-Stale': 'true' };
  await ctx.raft.read({ timeoutMs: deadline(ctx, req) });
  return { 'X-Quorate-Read-Index': String(ctx.raft.applied) };
}

export function leaseJson(l: LeaseRecord) {
  return { name: l.name, holder: l.holder, token: l.token, ttlMs: l.ttlMs };
}

export function str(body: Record<string, unknown>, field: string, max: number): string {
  const v = body[field];
  if (typeof v !== 'string' || v.length < 1 || v.length > max) {
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be a string of 1 to ${max} characters`);
  }
  return v;
}

export function int(body: Record<string, unknown>, field: string, min: number, max: number): number {
  const v = body[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** How long a member's report of a full disk holds after it was last heard (ms). */
const FULL_REPORT_HOLD_MS = 10_000;

/**
 * Refuse a client write while this node's data directory is below its free-space reserve,
 * or (on the leader) while a member reported it is: the write would fill a disk that Raft
 * needs for its own records. `STORAGE_FULL`, 507, not retryable until space is freed.
 * Deletes, lease renewals and releases, session keep-alives and partition hand-overs
 * still pass: they shrink the state or keep what is held alive (rather than let a lease
 * or session lapse because of a disk elsewhere).
 */
/** Writes that pass a full disk: they shrink the state or keep what is held alive. */
const PASS_WHEN_FULL = new Set<Command['op']>([
  'delete',
  'renew',
  'release',
  'expire',
  'session-keepalive',
  'session-close',
  'session-expire',
  'pset-delete',
  'pset-leave',
  'part-resign',
  'part-eligible',
  'part-move',
  'part-unclean',
]);

export function admitWrite(ctx: ApiContext, cmd: Command): void {
  if (PASS_WHEN_FULL.has(cmd.op)) return;
  if (ctx.disk?.full)
    throw new HttpError(
      507,
      'STORAGE_FULL',
      `node ${ctx.raft.id}: the filesystem of its data directory has ${ctx.disk.free} bytes free, below the reserve of ${ctx.disk.reserveBytes} (storage.reserveBytes); writes are refused until space is freed (reads still work)`,
    );
  if (!ctx.raft.isLeader) return;
  const member = ctx.peers.reportingFull(FULL_REPORT_HOLD_MS);
  if (member !== null)
    throw new HttpError(
      507,
      'STORAGE_FULL',
      `member ${member} reports its data directory below its free-space reserve; the cluster refuses writes until space is freed there (reads still work)`,
      { member },
    );
}
