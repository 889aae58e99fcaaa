/**
 * `QuorateClient`: talks to any members of a cluster, finds the leader, follows
 * not-leader hints, retries what is retryable with backoff within a deadline, and makes
 * writes exactly-once by giving each one a (client id, sequence) the cluster remembers.
 */
import { randomBytes } from 'node:crypto';
import { ClientError, NotLeaderError, RejectedError, TimeoutError, UnavailableError } from './errors.js';
import { HttpWire, type Wire, WireError, type WireResponse } from './wire.js';

export interface ClientOptions {
  /** Client URLs of any members, e.g. `['http://127.0.0.1:8081', ...]`. */
  endpoints: readonly string[];
  /** Identity for exactly-once writes. Default: random. Use one per logical client. */
  clientId?: string;
  /** Deadline of one operation, all retries included. Default 10,000 ms. */
  timeoutMs?: number;
  /** Deadline of one HTTP attempt. Default 3,000 ms. */
  attemptTimeoutMs?: number;
  /**
   * Backoff between retries: starts at `baseMs`, doubles up to `maxMs`, with jitter.
   * While the cluster has no leader (an election: unreachable members, `NO_LEADER`) the
   * wait stays at most `electionMaxMs` (default 100), so a client notices the new leader
   * within that of its election instead of sleeping through it.
   */
  backoff?: { baseMs?: number; maxMs?: number; electionMaxMs?: number };
  /** Where linearizable reads go: the leader (default) or spread over every member. */
  reads?: 'leader' | 'spread';
  /** Bearer token, when the cluster requires one. */
  token?: string;
  /** The wire; default HTTP with keep-alive pools. */
  wire?: Wire;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WriteResult {
  key: string;
  version: number;
  modIndex: number;
  index: number;
  created: boolean;
  /** The cluster had already applied this write (a retry). */
  duplicate: boolean;
}

export interface ValueResult {
  value: Uint8Array;
  version: number;
  modIndex: number;
  /** Read index when linearizable; null for a stale read. */
  readIndex: number | null;
  /** The node that served it. */
  servedBy: string;
  text(): string;
}

export interface DeleteResult {
  key: string;
  deleted: boolean;
  index: number;
  duplicate: boolean;
}

export interface Lease {
  name: string;
  holder: string;
  /** Fencing token: grows with every grant, across all leases. */
  token: number;
  ttlMs: number;
}

export interface LeaseState extends Lease {
  remainingMs: number | null;
}

interface Attempt {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  path: string;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** Must go to the leader (writes) or may go to any member (reads). */
  target: 'leader' | 'any';
  /** A write: identity for exactly-once retries. */
  write: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class QuorateClient {
  readonly clientId: string;
  private readonly endpoints: string[];
  private readonly wire: Wire;
  private readonly opts: ClientOptions;
  private leader: string | null = null;
  private seq = 0;
  private rr = 0;

  constructor(opts: ClientOptions) {
    if (!opts.endpoints || opts.endpoints.length === 0) {
      throw new ClientError('INVALID_ARGUMENT', 'endpoints must list at least one member URL', false);
    }
    for (const e of opts.endpoints) {
      let u: URL;
      try {
        u = new URL(e);
      } catch {
        throw new ClientError(
          'INVALID_ARGUMENT',
          `endpoint ${JSON.stringify(e)} is not a URL like http://127.0.0.1:8081`,
          false,
        );
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new ClientError('INVALID_ARGUMENT', `endpoint ${e} must be http:// or https://`, false);
      }
    }
    this.opts = opts;
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.clientId = opts.clientId ?? `c-${randomBytes(9).toString('base64url')}`;
    this.wire = opts.wire ?? new HttpWire();
  }

  /** The member this client currently believes leads, if any. */
  get knownLeader(): string | null {
    return this.leader;
  }

  // ---------------------------------------------------------------- key-value

  async put(
    key: string,
    value: string | Uint8Array,
    opts: CallOptions & { ifVersion?: number; expect?: string } = {},
  ): Promise<WriteResult> {
    const q = opts.expect !== undefined ? `?expect=${encodeURIComponent(opts.expect)}` : '';
    const headers: Record<string, string> = {};
    if (opts.ifVersion !== undefined) headers['if-match'] = String(opts.ifVersion);
    const r = await this.call(
      {
        method: 'PUT',
        path: `/kv/${encodeURIComponent(key)}${q}`,
        body: value,
        headers,
        target: 'leader',
        write: true,
      },
      opts,
    );
    return {
      ...(json(r) as Omit<WriteResult, 'duplicate'>),
      duplicate: r.headers['x-quorate-duplicate'] === 'true',
    };
  }

  /** Compare-and-set on the value: write `next` only if the current value is `expected`. */
  cas(
    key: string,
    expected: string,
    next: string | Uint8Array,
    opts: CallOptions = {},
  ): Promise<WriteResult> {
    return this.put(key, next, { ...opts, expect: expected });
  }

  /** The value, or null when the key does not exist. Linearizable unless `stale`. */
  async get(key: string, opts: CallOptions & { stale?: boolean } = {}): Promise<ValueResult | null> {
    const path = `/kv/${encodeURIComponent(key)}${opts.stale ? '?stale=true' : ''}`;
    const r = await this.call({ method: 'GET', path, target: 'any', write: false }, opts, [404]);
    if (r.status === 404) return null;
    const value = r.body;
    const ri = r.headers['x-quorate-read-index'];
    return {
      value,
      version: Number(r.headers['x-quorate-version']),
      modIndex: Number(r.headers['x-quorate-mod-index']),
      readIndex: ri !== undefined ? Number(ri) : null,
      servedBy: r.endpoint,
      text: () => dec.decode(value),
    };
  }

  async delete(key: string, opts: CallOptions & { ifVersion?: number } = {}): Promise<DeleteResult> {
    const headers: Record<string, string> = {};
    if (opts.ifVersion !== undefined) headers['if-match'] = String(opts.ifVersion);
    const r = await this.call(
      { method: 'DELETE', path: `/kv/${encodeURIComponent(key)}`, headers, target: 'leader', write: true },
      opts,
    );
    return {
      ...(json(r) as Omit<DeleteResult, 'duplicate'>),
      duplicate: r.headers['x-quorate-duplicate'] === 'true',
    };
  }

  async list(
    prefix: string,
    opts: CallOptions & { limit?: number; stale?: boolean } = {},
  ): Promise<{ items: { key: string; value: string; version: number; modIndex: number }[]; more: boolean }> {
    const p = new URLSearchParams({ prefix, limit: String(opts.limit ?? 100) });
    if (opts.stale) p.set('stale', 'true');
    const r = await this.call({ method: 'GET', path: `/kv?${p}`, target: 'any', write: false }, opts);
    return json(r) as {
      items: { key: string; value: string; version: number; modIndex: number }[];
      more: boolean;
    };
  }

  // ---------------------------------------------------------------- leases

  async acquireLease(name: string, holder: string, ttlMs: number, opts: CallOptions = {}): Promise<Lease> {
    return json(await this.leaseCall(name, 'acquire', { holder, ttlMs }, opts)) as Lease;
  }

  async renewLease(name: string, holder: string, token: number, opts: CallOptions = {}): Promise<Lease> {
    return json(await this.leaseCall(name, 'renew', { holder, token }, opts)) as Lease;
  }

  async releaseLease(name: string, holder: string, token: number, opts: CallOptions = {}): Promise<boolean> {
    return (json(await this.leaseCall(name, 'release', { holder, token }, opts)) as { released: boolean })
      .released;
  }

  async getLease(name: string, opts: CallOptions & { stale?: boolean } = {}): Promise<LeaseState | null> {
    const path = `/leases/${encodeURIComponent(name)}${opts.stale ? '?stale=true' : ''}`;
    const r = await this.call({ method: 'GET', path, target: 'leader', write: false }, opts, [404]);
    return r.status === 404 ? null : (json(r) as LeaseState);
  }

  private leaseCall(name: string, action: string, body: unknown, opts: CallOptions) {
    return this.call(
      {
        method: 'POST',
        path: `/leases/${encodeURIComponent(name)}/${action}`,
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
        target: 'leader',
        write: true,
      },
      opts,
    );
  }

  // ---------------------------------------------------------------- cluster

  /** `/health` of one member (default: the known leader or the first endpoint). */
  async health(endpoint?: string, opts: CallOptions = {}): Promise<Record<string, unknown>> {
    const at = endpoint ?? this.leader ?? this.endpoints[0]!;
    const r = await this.wire.request({
      endpoint: at,
      method: 'GET',
      path: '/health',
      headers: this.baseHeaders(),
      timeoutMs: opts.timeoutMs ?? this.opts.attemptTimeoutMs ?? 3000,
    });
    return JSON.parse(dec.decode(r.body)) as Record<string, unknown>;
  }

  async clusterStatus(opts: CallOptions = {}): Promise<Record<string, unknown>> {
    return json(
      await this.call({ method: 'GET', path: '/cluster/status', target: 'leader', write: false }, opts),
    ) as Record<string, unknown>;
  }

  async transferLeadership(to?: string, opts: CallOptions = {}): Promise<string | null> {
    const r = await this.call(
      {
        method: 'POST',
        path: '/admin/transfer-leadership',
        body: JSON.stringify(to ? { to } : {}),
        target: 'leader',
        write: false,
      },
      opts,
    );
    this.leader = null;
    return (json(r) as { leaderId: string | null }).leaderId;
  }

  close(): Promise<void> {
    return this.wire.close();
  }

  // ---------------------------------------------------------------- the retry loop

  private baseHeaders(): Record<string, string> {
    return this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
  }

  private pick(target: 'leader' | 'any'): string {
    if (target === 'any' && this.opts.reads === 'spread')
      return this.endpoints[this.rr++ % this.endpoints.length]!;
    if (this.leader) return this.leader;
    return this.endpoints[this.rr++ % this.endpoints.length]!;
  }

  /**
   * One operation: attempts until a definite answer or the deadline. A write keeps the
   * same (client id, sequence) across attempts, so retrying cannot apply it twice.
   */
  private async call(
    a: Attempt,
    opts: CallOptions,
    okStatuses: number[] = [],
  ): Promise<WireResponse & { endpoint: string }> {
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? 10_000;
    const deadline = performance.now() + timeoutMs;
    const headers: Record<string, string> = { ...this.baseHeaders(), ...a.headers };
    if (a.write) {
      headers['x-quorate-client-id'] = this.clientId;
      headers['x-quorate-seq'] = String(++this.seq);
    }
    const body = typeof a.body === 'string' ? enc.encode(a.body) : a.body;
    const base = this.opts.backoff?.baseMs ?? 20;
    const max = this.opts.backoff?.maxMs ?? 500;
    const electionMax = Math.min(max, this.opts.backoff?.electionMaxMs ?? 100);
    let delay = base;
    let ambiguous = false;
    let last: unknown = null;
    let redirects = 0;
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw new TimeoutError('the operation was aborted', a.write && ambiguous);
      const left = deadline - performance.now();
      if (left <= 0) break;
      const endpoint = this.pick(a.target);
      headers['x-quorate-timeout-ms'] = String(Math.max(1, Math.floor(Math.min(left, 60_000))));
      let res: WireResponse;
      try {
        res = await this.wire.request({
          endpoint,
          method: a.method,
          path: a.path,
          headers,
          ...(body !== undefined ? { body } : {}),
          timeoutMs: Math.min(left, this.opts.attemptTimeoutMs ?? 3000),
        });
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        last = err;
        if (err.sent) ambiguous = true;
        if (this.leader === endpoint) this.leader = null;
        if (attempt % this.endpoints.length === this.endpoints.length - 1) {
          await sleep(jitter(Math.min(delay, electionMax, Math.max(0, deadline - performance.now()))));
          delay = Math.min(max, delay * 2);
        }
        continue;
      }
      const s = res.status;
      if ((s >= 200 && s < 300) || okStatuses.includes(s)) {
        if (a.target === 'leader' && s < 300) this.leader = endpoint;
        return { ...res, endpoint };
      }
      const err = errorBody(res);
      last = err;
      if (s === 421) {
        // Definite: the follower proposed nothing. Go where it points.
        const hint = res.headers['x-quorate-leader'] ?? (err.leaderAddress as string | undefined) ?? null;
        this.leader = hint && hint !== endpoint ? hint.replace(/\/+$/, '') : null;
        if (++redirects > 10) {
          throw new NotLeaderError(
            (err.leaderId as string) ?? null,
            hint,
            'the cluster kept redirecting; the leader may be changing — retry later',
          );
        }
        if (!this.leader) await sleep(jitter(delay));
        continue;
      }
      if (s === 503 || s === 429 || s === 504 || s >= 500) {
        // 504 TIMEOUT and OUTCOME_UNKNOWN leave a write's outcome open; retrying with the
        // same sequence settles it (the cluster returns the original result).
        if (s === 504 || err.code === 'OUTCOME_UNKNOWN' || (s >= 500 && s !== 503)) ambiguous = true;
        const electing = err.code === 'NO_LEADER' || err.code === 'UNAVAILABLE';
        if (electing) this.leader = null;
        const cap = electing ? electionMax : delay;
        await sleep(jitter(Math.min(delay, cap, Math.max(0, deadline - performance.now()))));
        delay = Math.min(max, delay * 2);
        continue;
      }
      // 4xx: a definite refusal.
      throw new RejectedError(s, String(err.code ?? `HTTP_${s}`), String(err.message ?? ''), err);
    }
    const why = last instanceof Error ? last.message : last ? JSON.stringify(last) : 'no answer';
    if (a.write && ambiguous) {
      throw new TimeoutError(
        `no definite answer within ${timeoutMs} ms (last: ${why}); the write may have been applied — retrying it is safe (exactly-once)`,
        true,
        { cause: last },
      );
    }
    throw new UnavailableError(
      `no member could serve the request within ${timeoutMs} ms (last: ${why})`,
      false,
      {
        cause: last,
      },
    );
  }
}

function jitter(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}

function json(r: WireResponse): unknown {
  return JSON.parse(dec.decode(r.body));
}

function errorBody(r: WireResponse): Record<string, unknown> {
  try {
    const b = JSON.parse(dec.decode(r.body)) as { error?: Record<string, unknown> };
    return b.error ?? { code: `HTTP_${r.status}` };
  } catch {
    return { code: `HTTP_${r.status}`, message: dec.decode(r.body).slice(0, 200) };
  }
}
