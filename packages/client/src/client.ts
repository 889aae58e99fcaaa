/**
 * `QuorateClient`: talks to any members of a cluster, finds the leader, follows
 * not-leader hints, retries what is retryable with backoff within a deadline, and makes
 * writes exactly-once by giving each one a (client id, sequence) the cluster remembers.
 */
import { randomBytes } from 'node:crypto';
import {
  ClientError,
  NotLeaderError,
  OutcomeUnknownError,
  RejectedError,
  rejected,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { groupOfKey } from './groups.js';
import type {
  CreatePartitionSetSpec,
  EligibleUpdate,
  KeepAliveResult,
  PartitionSet,
  PartitionSetSummary,
  PartitionState,
  Session,
  SessionState,
} from './partitions.js';
import { isProtocolUrl, type ProtocolRequest } from './protocol.js';
import { ProtocolWire } from './protocol-wire.js';
import { type WatchBatch, type WatchOptions, watchChanges, watchChangesProtocol } from './watch.js';
import {
  type ClientTls,
  HttpWire,
  type Wire,
  WireError,
  type WireRequest,
  type WireResponse,
} from './wire.js';

export interface ClientOptions {
  /**
   * Client URLs of any members: their client-protocol addresses
   * (`['quorate://127.0.0.1:9081', ...]`, one multiplexed binary connection per member:
   * the fast path) or their HTTP API (`['http://127.0.0.1:8081', ...]`). All of one kind.
   */
  endpoints: readonly string[];
  /** Identity for exactly-once writes. Default: random. Use one per logical client. */
  clientId?: string;
  /** Deadline of one operation, all retries included. Default 10,000 ms. */
  timeoutMs?: number;
  /** Deadline of one HTTP attempt. Default 3,000 ms. */
  attemptTimeoutMs?: number;
  /**
   * An attempt that has heard nothing for this long asks the other members who leads
   * (`/health`), and again every half of this while it waits; when another member leads,
   * the attempt is abandoned and the operation retried there with the same exactly-once
   * identity. So a leader that is paused (a stopped VM, a long GC) costs about an
   * election, not `attemptTimeoutMs`. Default 300 ms (twice the default election
   * timeout); 0 turns it off.
   */
  silentLeaderMs?: number;
  /**
   * Backoff between retries: starts at `baseMs`, doubles up to `maxMs`, with jitter.
   * While the cluster has no leader (an election: unreachable members, `NO_LEADER`) the
   * wait stays at most `electionMaxMs` (default 100), so a client notices the new leader
   * within that of its election instead of sleeping through it.
   */
  backoff?: { baseMs?: number; maxMs?: number; electionMaxMs?: number };
  /**
   * Where linearizable reads go. `'leader'` (default): to the member the client knows leads,
   * which it learns from its writes' answers and from redirects; a client that has only read
   * knows no leader yet, and its reads go round the members (each serves them linearizably,
   * through a ReadIndex round with the leader). `'spread'`: always round the members.
   */
  reads?: 'leader' | 'spread';
  /** Bearer token, when the cluster requires one. */
  token?: string;
  /**
   * How far apart the sequences of this client's writes in flight may be (default 64: the
   * window of sequences a quorate node remembers per client); more concurrent writes wait
   * for the oldest to finish, so that none is refused as STALE_SEQUENCE.
   */
  maxWritesInFlight?: number;
  /**
   * The wire; default: the client protocol (`ProtocolWire`) for `quorate://` endpoints,
   * HTTP with keep-alive pools (`HttpWire`) for `http://` ones.
   */
  wire?: Wire;
  /** For `https://` and `quorates://` endpoints: the CA to trust, and a client certificate and key when members require one. */
  tls?: ClientTls;
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

/** A condition on one key: every one given must hold (`version` 0: absent). */
export interface TxnCompare {
  key: string;
  version?: number;
  value?: string;
  exists?: boolean;
}

export type TxnOp =
  | { op: 'put'; key: string; value: string }
  | { op: 'delete'; key: string }
  | { op: 'get'; key: string };

export interface TxnRequest {
  compare?: TxnCompare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

export type TxnOpResult =
  | { op: 'put'; key: string; version: number }
  | { op: 'delete'; key: string; deleted: boolean }
  | { op: 'get'; key: string; value: string | null; version: number };

export interface TxnResponse {
  /** Whether every compare held (the `success` branch ran). */
  succeeded: boolean;
  /** The log index the transaction was applied at. */
  index: number;
  results: TxnOpResult[];
  /** The cluster had already applied this transaction (a retry). */
  duplicate: boolean;
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
  /** The same request on the client protocol. */
  op: ProtocolRequest;
  /**
   * The keys it reads or writes, when it is routed by key (`/kv/<key>`, a transaction):
   * on a sharded cluster it goes to the leader of their Raft group. None: group 0.
   */
  keys?: readonly string[];
}

/** Where an attempt goes on a sharded cluster (see `QuorateClient.routeOf`). */
interface Route {
  readonly group: number;
  /**
   * Whether a leader's success answer tells who leads `group`. Not so for a transaction
   * over keys of several groups: sent to group 0, but whoever serves it may not lead it.
   */
  readonly learns: boolean;
}

/** The routing table as `QuorateClient.routing()` shows it. */
export interface RoutingView {
  /** Raft groups the cluster shards its keys over (1 until a member said otherwise). */
  readonly groups: number;
  /** The member believed to lead each group, where one is known (group 0: the controller). */
  readonly leaders: Readonly<Record<number, string>>;
}

const enc = new TextEncoder();
/** A retry is not started with less than this left of the deadline. */
const MIN_RETRY_MS = 20;
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class QuorateClient {
  readonly clientId: string;
  private readonly endpoints: string[];
  private readonly wire: Wire;
  private readonly opts: ClientOptions;
  /**
   * Who leads each Raft group, as far as this client knows: endpoint by group. A cluster
   * of one group has only group 0, the leader of the cluster; a sharded one (`groups`
   * above 1) has a leader per group, and group 0 (the controller) serves everything that
   * is not routed by key (leases, sessions, partitions, listings, cluster calls).
   */
  private readonly leaders = new Map<number, string>();
  /** Groups the cluster shards keys over: 1 until an answer says otherwise. */
  private groups = 1;
  private seq = 0;
  /** Sequences of writes in flight, oldest first (a Set keeps insertion order). */
  private readonly inFlightSeqs = new Set<number>();
  private readonly seqWaiters: (() => void)[] = [];
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
      if (!['http:', 'https:', 'quorate:', 'quorates:'].includes(u.protocol)) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          `endpoint ${e} must be quorate:// (the client protocol) or http:// (the HTTP API), or their TLS forms quorates:// and https://`,
          false,
        );
      }
    }
    const protocol = opts.endpoints.filter(isProtocolUrl).length;
    if (protocol !== 0 && protocol !== opts.endpoints.length) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        'endpoints mix quorate:// and http:// addresses; give every member in one form',
        false,
      );
    }
    this.protocol = protocol > 0;
    this.opts = opts;
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.clientId = opts.clientId ?? `c-${randomBytes(9).toString('base64url')}`;
    const tls = opts.tls ? { tls: opts.tls } : {};
    this.wire = opts.wire ?? (this.protocol ? new ProtocolWire(tls) : new HttpWire(tls));
  }

  /** Whether this client talks the client protocol (its endpoints are `quorate://`). */
  private readonly protocol: boolean;
  /** The protocol connections watches use, when the wire given is not one. */
  private watchWire: ProtocolWire | null = null;

  /**
   * The changes of the replicated state, one log entry's changes per item, in commit
   * order, from any member; reconnects and resumes after the last index seen (see
   * `WatchOptions`). On a sharded cluster positions are per group: each batch names its
   * `group` and carries `resumeFrom` (every group's position), and a watch starts at
   * `from` rather than `fromIndex`. Throws `WatchCompactedError` when a start is older than
   * every member keeps.
   */
  watch(opts: WatchOptions = {}): AsyncGenerator<WatchBatch> {
    const cx = { knownGroups: () => this.groups };
    if (this.protocol) {
      this.watchWire ??=
        this.wire instanceof ProtocolWire
          ? this.wire
          : new ProtocolWire(this.opts.tls ? { tls: this.opts.tls } : {});
      return watchChangesProtocol(this.endpoints, this.opts.token, opts, cx, this.watchWire);
    }
    return watchChanges(this.endpoints, this.baseHeaders(), opts, cx, this.opts.tls);
  }

  /** The member this client currently believes leads (group 0, on a sharded cluster), if any. */
  get knownLeader(): string | null {
    return this.leaders.get(0) ?? null;
  }

  /**
   * What this client knows of the cluster's sharding: how many Raft groups it has (1 until
   * a member said more) and who leads each group it has heard of. A copy: it does not
   * change as the client learns more.
   */
  routing(): RoutingView {
    const leaders: Record<number, string> = {};
    for (const [g, endpoint] of this.leaders) leaders[g] = endpoint;
    return { groups: this.groups, leaders };
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
    const bytes = typeof value === 'string' ? enc.encode(value) : value;
    const r = await this.call(
      {
        method: 'PUT',
        path: `/kv/${encodeURIComponent(key)}${q}`,
        body: bytes,
        headers,
        target: 'leader',
        write: true,
        keys: [key],
        op: {
          op: 'put',
          key,
          value: bytes,
          ...(opts.ifVersion !== undefined ? { ifVersion: opts.ifVersion } : {}),
          ...(opts.expect !== undefined ? { expect: opts.expect } : {}),
        },
      },
      opts,
    );
    return written<WriteResult>(r);
  }

  /**
   * A multi-key transaction: if every `compare` holds, the `success` operations apply,
   * else the `failure` ones; atomically, in one log entry, exactly once however often
   * the call is retried. `get` operations read inside the transaction.
   */
  async txn(t: TxnRequest, opts: CallOptions = {}): Promise<TxnResponse> {
    const spec = { compare: t.compare ?? [], success: t.success ?? [], failure: t.failure ?? [] };
    const r = await this.call(
      {
        method: 'POST',
        path: '/txn',
        body: JSON.stringify(spec),
        headers: { 'content-type': 'application/json' },
        target: 'leader',
        write: true,
        keys: txnKeys(spec),
        op: { op: 'txn', ...spec },
      },
      opts,
    );
    const j = (r.result ?? json(r)) as {
      succeeded: boolean;
      index: number;
      results: Record<string, unknown>[];
    };
    return {
      succeeded: j.succeeded,
      index: j.index,
      results: j.results.map((x) =>
        x.op === 'get'
          ? {
              op: 'get',
              key: String(x.key),
              value: x.value === null || x.value === undefined ? null : text(x.value as string | Uint8Array),
              version: Number(x.version),
            }
          : x.op === 'put'
            ? { op: 'put', key: String(x.key), version: Number(x.version) }
            : { op: 'delete', key: String(x.key), deleted: Boolean(x.deleted) },
      ),
      duplicate: r.headers['x-quorate-duplicate'] === 'true' || r.result?.duplicate === true,
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
    const r = await this.call(
      {
        method: 'GET',
        path,
        target: 'any',
        write: false,
        keys: [key],
        op: { op: 'get', key, ...(opts.stale ? { stale: true } : {}) },
      },
      opts,
      [404],
    );
    if (r.status === 404) return null;
    if (r.result) {
      const x = r.result;
      if (x.found === false) return null;
      const value = x.value as Uint8Array;
      return {
        value,
        version: x.version as number,
        modIndex: x.modIndex as number,
        readIndex: (x.readIndex as number | undefined) ?? null,
        servedBy: r.endpoint,
        text: () => dec.decode(value),
      };
    }
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
      {
        method: 'DELETE',
        path: `/kv/${encodeURIComponent(key)}`,
        headers,
        target: 'leader',
        write: true,
        keys: [key],
        op: { op: 'delete', key, ...(opts.ifVersion !== undefined ? { ifVersion: opts.ifVersion } : {}) },
      },
      opts,
    );
    return written<DeleteResult>(r);
  }

  async list(
    prefix: string,
    opts: CallOptions & { limit?: number; stale?: boolean } = {},
  ): Promise<{ items: { key: string; value: string; version: number; modIndex: number }[]; more: boolean }> {
    const p = new URLSearchParams({ prefix, limit: String(opts.limit ?? 100) });
    if (opts.stale) p.set('stale', 'true');
    const r = await this.call(
      {
        method: 'GET',
        path: `/kv?${p}`,
        target: 'any',
        write: false,
        op: { op: 'list', prefix, limit: opts.limit ?? 100, ...(opts.stale ? { stale: true } : {}) },
      },
      opts,
    );
    return (r.result ?? json(r)) as {
      items: { key: string; value: string; version: number; modIndex: number }[];
      more: boolean;
    };
  }

  // ---------------------------------------------------------------- leases

  async acquireLease(name: string, holder: string, ttlMs: number, opts: CallOptions = {}): Promise<Lease> {
    return leaseOf(await this.leaseCall(name, 'acquire', { holder, ttlMs }, opts));
  }

  async renewLease(name: string, holder: string, token: number, opts: CallOptions = {}): Promise<Lease> {
    return leaseOf(await this.leaseCall(name, 'renew', { holder, token }, opts));
  }

  async releaseLease(name: string, holder: string, token: number, opts: CallOptions = {}): Promise<boolean> {
    return (answer(await this.leaseCall(name, 'release', { holder, token }, opts)) as { released: boolean })
      .released;
  }

  async getLease(name: string, opts: CallOptions & { stale?: boolean } = {}): Promise<LeaseState | null> {
    const path = `/leases/${encodeURIComponent(name)}${opts.stale ? '?stale=true' : ''}`;
    const r = await this.call(
      {
        method: 'GET',
        path,
        target: 'leader',
        write: false,
        op: { op: 'lease.get', name, ...(opts.stale ? { stale: true } : {}) },
      },
      opts,
      [404],
    );
    if (r.status === 404 || r.result?.found === false) return null;
    const { found: _found, ...lease } = answer(r) as LeaseState & { found?: boolean };
    return lease;
  }

  private leaseCall(
    name: string,
    action: 'acquire' | 'renew' | 'release',
    body: Record<string, unknown>,
    opts: CallOptions,
  ) {
    return this.call(
      {
        method: 'POST',
        path: `/leases/${encodeURIComponent(name)}/${action}`,
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
        target: 'leader',
        write: true,
        op: { op: `lease.${action}`, name, ...body },
      },
      opts,
    );
  }

  // ---------------------------------------------------------------- sessions and partition sets
  // (docs/partitions.md; the HTTP API only). Writes carry the exactly-once identity, as
  // leases do: a retry after an unknown outcome is answered with the original result.

  /** Open a session: one keep-alive keeps everything attached to it (`ttlMs`: the node's lease TTL bounds). */
  async openSession(owner: string, ttlMs: number, opts: CallOptions = {}): Promise<Session> {
    return this.partitionWrite<Session>('POST', '/sessions', { owner, ttlMs }, opts);
  }

  /**
   * Keep a session alive. `led` lists every partition it leads, with its epoch, leader
   * epoch and eligible set, as of the entry that applied this keep-alive.
   * `404 SESSION_NOT_FOUND` once it lapsed or was closed.
   */
  async keepAlive(id: number, opts: CallOptions = {}): Promise<KeepAliveResult> {
    return this.partitionWrite<KeepAliveResult>('POST', `/sessions/${id}/keepalive`, {}, opts);
  }

  /** Close a session, releasing everything attached to it; false if it was already gone. */
  async closeSession(id: number, opts: CallOptions = {}): Promise<boolean> {
    const r = await this.partitionWrite<{ closed: boolean }>('DELETE', `/sessions/${id}`, undefined, opts);
    return r.closed;
  }

  /** A session as the cluster holds it, or null when there is none with this id. */
  async getSession(id: number, opts: CallOptions = {}): Promise<SessionState | null> {
    return this.partitionRead<SessionState>(`/sessions/${id}`, 'leader', opts, 'SESSION_NOT_FOUND');
  }

  /** Create a partition set: replicas round robin (`partitions`, `replicationFactor`) or given (`replicas`). */
  async createPartitionSet(spec: CreatePartitionSetSpec, opts: CallOptions = {}): Promise<PartitionSet> {
    return this.partitionWrite<PartitionSet>('POST', '/partitions', spec, opts);
  }

  async listPartitionSets(opts: CallOptions = {}): Promise<PartitionSetSummary[]> {
    const r = await this.partitionRead<{ sets: PartitionSetSummary[] }>('/partitions', 'any', opts);
    return r!.sets;
  }

  /** The whole set (members and every partition), or null when there is no such set. */
  async getPartitionSet(name: string, opts: CallOptions = {}): Promise<PartitionSet | null> {
    return this.partitionRead<PartitionSet>(
      `/partitions/${encodeURIComponent(name)}`,
      'any',
      opts,
      'PARTITION_SET_NOT_FOUND',
    );
  }

  /**
   * A partition's leader, epochs and eligible set (linearizable). With `epoch` or
   * `leaderEpoch` older than the current one: `StaleEpochError` carrying the current
   * leader, epoch and leader epoch.
   */
  async partitionLeader(
    set: string,
    partition: number,
    opts: CallOptions & { epoch?: number; leaderEpoch?: number } = {},
  ): Promise<PartitionState> {
    const params = new URLSearchParams();
    if (opts.epoch !== undefined) params.set('epoch', String(opts.epoch));
    if (opts.leaderEpoch !== undefined) params.set('leaderEpoch', String(opts.leaderEpoch));
    const q = params.toString() ? `?${params}` : '';
    return (await this.partitionRead<PartitionState>(`${partitionPath(set, partition)}${q}`, 'any', opts))!;
  }

  /** Remove a set; false when there was none of that name. */
  async deletePartitionSet(name: string, opts: CallOptions = {}): Promise<boolean> {
    const path = `/partitions/${encodeURIComponent(name)}`;
    return (await this.partitionWrite<{ deleted: boolean }>('DELETE', path, undefined, opts)).deleted;
  }

  /** The member is live while `session` is; leaderless partitions where it is eligible get a leader. */
  async joinPartitionSet(
    set: string,
    member: string,
    session: number,
    opts: CallOptions = {},
  ): Promise<PartitionSet> {
    const path = `/partitions/${encodeURIComponent(set)}/join`;
    return this.partitionWrite<PartitionSet>('POST', path, { member, session }, opts);
  }

  /** The member is no longer live; what it led is handed on. */
  async leavePartitionSet(
    set: string,
    member: string,
    session: number,
    opts: CallOptions = {},
  ): Promise<PartitionSet> {
    const path = `/partitions/${encodeURIComponent(set)}/leave`;
    return this.partitionWrite<PartitionSet>('POST', path, { member, session }, opts);
  }

  /** The leader (`member` at `epoch`) hands the partition on. */
  async resignPartition(
    set: string,
    partition: number,
    member: string,
    epoch: number,
    opts: CallOptions = {},
  ): Promise<PartitionState> {
    return this.partitionWrite<PartitionState>(
      'POST',
      `${partitionPath(set, partition)}/resign`,
      { member, epoch },
      opts,
    );
  }

  /** Compare-and-set of the eligible set on the epoch, by the leader (`member`) or an admin. */
  async updateEligible(
    set: string,
    partition: number,
    update: EligibleUpdate,
    opts: CallOptions = {},
  ): Promise<PartitionState> {
    return this.partitionWrite<PartitionState>(
      'POST',
      `${partitionPath(set, partition)}/eligible`,
      update,
      opts,
    );
  }

  /** Preferred-leader rebalancing: hand the partition to `to` (eligible and live), at `epoch` if given. */
  async movePartition(
    set: string,
    partition: number,
    to: string,
    epoch?: number,
    opts: CallOptions = {},
  ): Promise<PartitionState> {
    return this.partitionWrite<PartitionState>(
      'POST',
      `${partitionPath(set, partition)}/move`,
      { to, ...(epoch !== undefined ? { epoch } : {}) },
      opts,
    );
  }

  /**
   * Admin only: hand the partition to a live replica that is not eligible (data the old
   * eligible set acknowledged may be lost); its eligible set becomes `[to]`.
   */
  async uncleanPartition(
    set: string,
    partition: number,
    to: string,
    opts: CallOptions = {},
  ): Promise<PartitionState> {
    return this.partitionWrite<PartitionState>(
      'POST',
      `${partitionPath(set, partition)}/unclean`,
      { to },
      opts,
    );
  }

  private async partitionWrite<T = Record<string, unknown>>(
    method: 'POST' | 'DELETE',
    path: string,
    body: unknown,
    opts: CallOptions,
  ): Promise<T> {
    this.httpOnly('sessions and partition sets');
    const r = await this.call(
      {
        method,
        path,
        ...(body !== undefined
          ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
          : {}),
        target: 'leader',
        write: true,
        op: { op: 'health' },
      },
      opts,
    );
    return json(r) as T;
  }

  /** A read; with `absent`, a 404 of that code is null (a 404 of another code still throws). */
  private async partitionRead<T>(
    path: string,
    target: 'leader' | 'any',
    opts: CallOptions,
    absent?: string,
  ): Promise<T | null> {
    this.httpOnly('sessions and partition sets');
    const r = await this.call(
      { method: 'GET', path, target, write: false, op: { op: 'health' } },
      opts,
      absent ? [404] : [],
    );
    if (r.status === 404) {
      const err = errorBody(r);
      if (err.code === absent) return null;
      throw rejected(404, String(err.code ?? 'HTTP_404'), String(err.message ?? ''), err);
    }
    return json(r) as T;
  }

  // ---------------------------------------------------------------- cluster

  /** `/health` of one member (default: the known leader or the first endpoint). */
  async health(endpoint?: string, opts: CallOptions = {}): Promise<Record<string, unknown>> {
    const at = endpoint ?? this.leaders.get(0) ?? this.endpoints[0]!;
    const r = await this.wire.request({
      endpoint: at,
      method: 'GET',
      path: '/health',
      headers: this.baseHeaders(),
      timeoutMs: opts.timeoutMs ?? this.opts.attemptTimeoutMs ?? 3000,
      op: { op: 'health' },
    });
    return answer(r) as Record<string, unknown>;
  }

  async clusterStatus(opts: CallOptions = {}): Promise<Record<string, unknown>> {
    this.httpOnly('clusterStatus');
    return json(
      await this.call(
        { method: 'GET', path: '/cluster/status', target: 'leader', write: false, op: { op: 'health' } },
        opts,
      ),
    ) as Record<string, unknown>;
  }

  async transferLeadership(to?: string, opts: CallOptions = {}): Promise<string | null> {
    this.httpOnly('transferLeadership');
    const r = await this.call(
      {
        method: 'POST',
        path: '/admin/transfer-leadership',
        body: JSON.stringify(to ? { to } : {}),
        target: 'leader',
        write: false,
        op: { op: 'health' },
      },
      opts,
    );
    this.leaders.delete(0);
    return (json(r) as { leaderId: string | null }).leaderId;
  }

  async close(): Promise<void> {
    if (this.watchWire && this.watchWire !== this.wire) await this.watchWire.close();
    await this.wire.close();
  }

  /** Administrative calls are on the HTTP API only. */
  private httpOnly(what: string): void {
    if (this.protocol)
      throw new ClientError(
        'INVALID_ARGUMENT',
        `${what} is served by the HTTP API only; make a client with the members' http:// addresses for it`,
        false,
      );
  }

  // ---------------------------------------------------------------- the retry loop

  private baseHeaders(): Record<string, string> {
    return this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
  }

  /**
   * The group an attempt belongs to: its keys' group when they all fall in one, else
   * group 0 (no key, or a transaction over several groups: the node decides where that
   * runs, and redirects when it is elsewhere). Before the client knows how many groups
   * there are, every key is in group 0: what it was before sharding, and the node's
   * redirect names the right group's leader, so one redirect per group teaches it.
   */
  private routeOf(a: Attempt): Route {
    if (!a.keys || a.keys.length === 0 || this.groups <= 1) return { group: 0, learns: true };
    const first = groupOfKey(a.keys[0]!, this.groups);
    for (const k of a.keys) if (groupOfKey(k, this.groups) !== first) return { group: 0, learns: false };
    return { group: first, learns: true };
  }

  /**
   * Where the next attempt of a request for `group` goes: that group's known leader, else
   * the next member in turn. Never another group's leader: on a sharded cluster it would
   * only redirect.
   */
  private pick(target: 'leader' | 'any', group: number): string {
    if (target === 'any' && this.opts.reads === 'spread')
      return this.endpoints[this.rr++ % this.endpoints.length]!;
    const leader = this.leaders.get(group);
    if (leader) return leader;
    return this.endpoints[this.rr++ % this.endpoints.length]!;
  }

  /**
   * What an answer says of the cluster's sharding: the group count (`X-Quorate-Groups` on
   * HTTP, the hello's `groups` on the client protocol). Absent, nothing changes: 1 until a
   * member says otherwise. When the count changes, every group's leader is forgotten (the
   * keys of a group are not the same ones any more).
   */
  private learnGroups(res: WireResponse): void {
    const said = res.groups ?? positiveInt(res.headers['x-quorate-groups']);
    if (said === null || said === this.groups) return;
    this.groups = said;
    this.leaders.clear();
  }

  /** Set (or, with null, forget) who leads `group`. */
  private setLeader(group: number, endpoint: string | null): void {
    if (endpoint) this.leaders.set(group, endpoint.replace(/\/+$/, ''));
    else this.leaders.delete(group);
  }

  /** Forget `endpoint` as the leader of `group`, if that is what the table says. */
  private forgetLeader(group: number, endpoint: string): void {
    if (this.leaders.get(group) === endpoint) this.leaders.delete(group);
  }

  /**
   * One operation: attempts until a definite answer or the deadline. A write keeps the
   * same (client id, sequence) across attempts, so retrying cannot apply it twice.
   *
   * What the caller is told follows one rule: an error is definite (`ambiguous: false`)
   * only when no attempt of this write can have reached a member that could propose it.
   * A refused connection and a follower's redirect (421) reach nobody who proposes; an
   * attempt that was sent and got no answer, a timeout (504) or an unknown outcome may
   * have been applied, and from then on every error of this call is ambiguous.
   */
  private async call(
    a: Attempt,
    opts: CallOptions,
    okStatuses: number[] = [],
  ): Promise<WireResponse & { endpoint: string }> {
    if (!a.write) return this.attempts(a, opts, okStatuses, null);
    const seq = await this.takeSeq();
    try {
      return await this.attempts(a, opts, okStatuses, seq);
    } finally {
      this.releaseSeq(seq);
    }
  }

  /**
   * A sequence number for a write. The cluster remembers the last `sessionWindow` (64)
   * sequences of each client and refuses older ones (STALE_SEQUENCE), so a client used
   * by many callers at once keeps its writes in flight within that span: a write waits
   * for a sequence until the oldest write still in flight is less than
   * `maxWritesInFlight` behind.
   */
  private async takeSeq(): Promise<number> {
    const span = this.opts.maxWritesInFlight ?? 64;
    for (;;) {
      const oldest = this.inFlightSeqs.values().next();
      if (oldest.done || this.seq + 1 - oldest.value < span) break;
      await new Promise<void>((r) => this.seqWaiters.push(r));
    }
    const seq = ++this.seq;
    this.inFlightSeqs.add(seq);
    return seq;
  }

  private releaseSeq(seq: number): void {
    const wasOldest = this.inFlightSeqs.values().next().value === seq;
    this.inFlightSeqs.delete(seq);
    if (wasOldest) for (const wake of this.seqWaiters.splice(0)) wake();
  }

  private async attempts(
    a: Attempt,
    opts: CallOptions,
    okStatuses: number[],
    seq: number | null,
  ): Promise<WireResponse & { endpoint: string }> {
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? 10_000;
    const deadline = performance.now() + timeoutMs;
    const headers: Record<string, string> = { ...this.baseHeaders(), ...a.headers };
    if (seq !== null) {
      headers['x-quorate-client-id'] = this.clientId;
      headers['x-quorate-seq'] = String(seq);
    }
    const body = typeof a.body === 'string' ? enc.encode(a.body) : a.body;
    const base = this.opts.backoff?.baseMs ?? 20;
    const max = this.opts.backoff?.maxMs ?? 500;
    const electionMax = Math.min(max, this.opts.backoff?.electionMaxMs ?? 100);
    let delay = base;
    let ambiguous = false;
    let last: unknown = null;
    let redirect: { leaderId: string | null; hint: string | null } | null = null;
    let redirects = 0;
    // The group a redirect named, for the rest of this call: a member knows better than
    // the client's guess (the group count may not be known yet; a transaction over several
    // groups runs where the node says).
    let named: number | null = null;
    const pause = async (cap: number) => {
      await sleep(jitter(Math.min(delay, cap, Math.max(0, deadline - performance.now()))));
      delay = Math.min(max, delay * 2);
    };
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw new TimeoutError('the operation was aborted', a.write && ambiguous);
      const left = deadline - performance.now();
      // A retry with almost no time left could not hear an answer: it would only turn a
      // definite failure (a redirect, no leader) into an unknown outcome.
      if (left <= 0 || (attempt > 0 && left < MIN_RETRY_MS)) break;
      const route: Route = named !== null ? { group: named, learns: true } : this.routeOf(a);
      const group = route.group;
      const endpoint = this.pick(a.target, group);
      headers['x-quorate-timeout-ms'] = String(Math.max(1, Math.floor(Math.min(left, 60_000))));
      let res: WireResponse;
      try {
        res = await this.attempt(
          {
            endpoint,
            method: a.method,
            path: a.path,
            headers,
            op: a.op,
            ...(body !== undefined ? { body } : {}),
            timeoutMs: Math.min(left, this.opts.attemptTimeoutMs ?? 3000),
          },
          // The "who leads?" probe asks `/health`, which names group 0's leader only: on a
          // sharded cluster it cannot tell whether another group's leader is paused or just
          // slow (any member leading that group but not group 0 would look abandoned), so
          // it guards only attempts routed to group 0. Another group's paused leader costs
          // `attemptTimeoutMs`; the retry then goes round the members, whose redirects name
          // that group's new leader.
          group === 0 || this.groups <= 1,
        );
      } catch (err) {
        if (err instanceof LeaderMoved) {
          // The attempt was sent to a member that has stopped answering while another
          // leads: its outcome is open; retry at once where the cluster now leads. That is
          // group 0's leader: a request of another group (the group count was learned
          // while this attempt waited) goes round the members instead.
          ambiguous = true;
          redirect = null;
          last = err.cause;
          if (group === 0) this.setLeader(0, err.to);
          else this.forgetLeader(group, endpoint);
          continue;
        }
        if (!(err instanceof WireError)) throw err;
        last = err;
        redirect = null;
        if (err.sent) ambiguous = true;
        this.forgetLeader(group, endpoint);
        if (attempt % this.endpoints.length === this.endpoints.length - 1) await pause(electionMax);
        continue;
      }
      this.learnGroups(res);
      const s = res.status;
      if ((s >= 200 && s < 300) || okStatuses.includes(s)) {
        if (a.target === 'leader' && s < 300) {
          // It was served where it was sent, so that member leads the group the answer
          // names (or, when it names none, the group it was sent for).
          const answered = wholeNumber(res.headers['x-quorate-group']);
          if (answered !== null) this.setLeader(answered, endpoint);
          else if (route.learns) this.setLeader(group, endpoint);
        }
        return { ...res, endpoint };
      }
      const err = errorBody(res);
      last = err;
      redirect = null;
      if (s === 421) {
        // Definite for this attempt: the follower proposed nothing. Go where it points.
        // During an election members point at the old leader or at each other; that is
        // not a failure while the deadline lasts, but every round of redirects waits a
        // little (at most electionMaxMs) so that the client does not spin. On a sharded
        // cluster the hint is the leader of the group the answer names.
        const hint = res.headers['x-quorate-leader'] ?? (err.leaderAddress as string | undefined) ?? null;
        redirect = { leaderId: (err.leaderId as string | undefined) ?? null, hint };
        const said = groupNamed(res, err);
        if (said !== null) named = said;
        const target = said ?? group;
        this.setLeader(target, hint && hint !== endpoint ? hint : null);
        if (!this.leaders.has(target) || ++redirects % this.endpoints.length === 0) await pause(electionMax);
        continue;
      }
      if (s === 507 && !(a.write && ambiguous)) {
        // STORAGE_FULL: refused before proposing, and it lasts until an operator frees
        // space: definite, said at once. (After an attempt that may have been applied it
        // is not: the refusal comes before the cluster could answer with the original
        // result, so such a write goes on retrying like any 5xx.)
        throw new RejectedError(s, String(err.code ?? `HTTP_${s}`), String(err.message ?? ''), err);
      }
      if (s === 503 || s === 429 || s === 504 || s >= 500) {
        // 504 TIMEOUT and OUTCOME_UNKNOWN leave a write's outcome open; retrying with the
        // same sequence settles it (the cluster returns the original result).
        if (answerLeavesOutcomeOpen(s, String(err.code ?? ''))) ambiguous = true;
        const electing = err.code === 'NO_LEADER' || err.code === 'UNAVAILABLE';
        if (electing) this.setLeader(groupNamed(res, err) ?? group, null);
        await pause(electing ? electionMax : delay);
        continue;
      }
      if (a.write && ambiguous && err.code === 'STALE_SEQUENCE') {
        // The cluster retired this sequence before the retry came: whether an earlier
        // attempt was applied can no longer be learned from it.
        throw new OutcomeUnknownError(
          `an earlier attempt of this write may have been applied, and the cluster no longer remembers its sequence (${String(err.message ?? '')}); read the key to find out`,
        );
      }
      // 4xx: a definite refusal, decided by the state machine (or before proposing). An
      // earlier attempt of the same write, if applied, would have made this one a
      // duplicate answered with the original result: so nothing was applied.
      throw rejected(s, String(err.code ?? `HTTP_${s}`), String(err.message ?? ''), err);
    }
    const why = last instanceof Error ? last.message : last ? JSON.stringify(last) : 'no answer';
    if (a.write && ambiguous) {
      throw new TimeoutError(
        `no definite answer within ${timeoutMs} ms (last: ${why}); the write may have been applied — retrying it is safe (exactly-once)`,
        true,
        { cause: last },
      );
    }
    if (redirect) {
      throw new NotLeaderError(
        redirect.leaderId,
        redirect.hint,
        `no member accepted the request as leader within ${timeoutMs} ms (a leader election may be under way); nothing was applied — retry later`,
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

  /**
   * One attempt. While it waits on a member that says nothing, it asks the others who
   * leads (see `silentLeaderMs`) and gives up the attempt with `LeaderMoved` when it is
   * someone else.
   */
  private async attempt(req: WireRequest, probe: boolean): Promise<WireResponse> {
    const silentMs = this.opts.silentLeaderMs ?? 300;
    if (!probe || silentMs <= 0 || this.endpoints.length < 2) return this.wire.request(req);
    const ctrl = new AbortController();
    let moved: string | null = null;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Asked every half of silentMs; each round of answers waits at most that long (a
    // member that answers /health slower than that is as good as silent here).
    const every = Math.min(silentMs, 2000) / 2;
    const ask = async () => {
      const started = performance.now();
      const to = await this.leaderOtherThan(req.endpoint, every).catch(() => null);
      if (settled) return;
      if (to) {
        moved = to;
        ctrl.abort();
      } else timer = setTimeout(ask, Math.max(0, every - (performance.now() - started)));
    };
    timer = setTimeout(ask, silentMs);
    try {
      return await this.wire.request({ ...req, signal: ctrl.signal });
    } catch (err) {
      if (moved) throw new LeaderMoved(moved, err);
      throw err;
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  /**
   * The member the cluster says leads (the highest term claimed in a round of `/health`
   * answers: a leader's own, or a follower's `leaderAddress`), if it is not `silent`.
   * Rounds wait at most `everyMs` for answers, are shared by every call on the same wire
   * and members, and are asked at most every `everyMs`.
   */
  private async leaderOtherThan(silent: string, everyMs: number): Promise<string | null> {
    const now = performance.now();
    // Shared by every client on this wire with the same members (a load generator's
    // hundreds of clients ask once per round, not once each).
    let rounds = probeRounds.get(this.wire);
    if (!rounds) {
      rounds = new Map();
      probeRounds.set(this.wire, rounds);
    }
    const key = this.endpoints.join(' ');
    let round = rounds.get(key);
    if (!round || now - round.at >= everyMs) {
      round = { at: now, claims: this.askWhoLeads(everyMs) };
      rounds.set(key, round);
    }
    const claims = await round.claims;
    let best: { endpoint: string; term: number } | null = null;
    for (const c of claims) if (!best || c.term > best.term) best = c;
    return best && best.endpoint !== silent ? best.endpoint : null;
  }

  private async askWhoLeads(timeoutMs: number): Promise<{ endpoint: string; term: number }[]> {
    const answers = await Promise.all(
      this.endpoints.map(async (endpoint) => {
        try {
          // Bounded here: the wire's own timeouts may be coarse (undici's tick is about a
          // second), and a request queued behind a silent member's busy connections is not
          // even given up when aborted until a connection frees.
          const r = await withDeadline(
            this.wire.request({
              endpoint,
              method: 'GET',
              path: '/health',
              headers: this.baseHeaders(),
              timeoutMs,
              signal: AbortSignal.timeout(timeoutMs),
              op: { op: 'health' },
            }),
            timeoutMs,
          );
          if (r === null) return null;
          if (r.status !== 200) return null;
          const h = answer(r) as {
            isLeader?: boolean;
            leaderAddress?: string | null;
            term?: number;
          };
          if (typeof h.term !== 'number') return null;
          if (h.isLeader) return { endpoint, term: h.term };
          if (typeof h.leaderAddress === 'string' && h.leaderAddress) {
            return { endpoint: h.leaderAddress.replace(/\/+$/, ''), term: h.term };
          }
          return null;
        } catch {
          return null;
        }
      }),
    );
    return answers.filter((x): x is { endpoint: string; term: number } => x !== null);
  }
}

/** The last round of "who leads?" per wire and member list (see `leaderOtherThan`). */
const probeRounds = new WeakMap<
  Wire,
  Map<string, { at: number; claims: Promise<{ endpoint: string; term: number }[]> }>
>();

/** An attempt given up because another member leads (see `silentLeaderMs`). */
class LeaderMoved extends Error {
  constructor(
    readonly to: string,
    cause: unknown,
  ) {
    super(`the leader moved to ${to}`, { cause });
  }
}

/**
 * Whether an error answer of the API leaves a write's outcome open (it may have been, or
 * may still be, applied): 504 `TIMEOUT`, 503 `OUTCOME_UNKNOWN`, and any 5xx but 503 (an
 * internal error can strike after the proposal). Every other 503 (`NO_LEADER`,
 * `PROPOSAL_DROPPED`, `UNAVAILABLE`...) and every 4xx is definite.
 */
export function answerLeavesOutcomeOpen(status: number, code: string): boolean {
  return status === 504 || code === 'OUTCOME_UNKNOWN' || (status >= 500 && status !== 503);
}

/** `p`'s value, or null if it has not settled within `ms` (it is left to settle unheard). */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    }),
  ]);
}

/** The keys a transaction reads or writes (its compares and both branches). */
function txnKeys(t: { compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[] }): string[] {
  return [...t.compare.map((c) => c.key), ...t.success.map((o) => o.key), ...t.failure.map((o) => o.key)];
}

/** A whole number ≥ 1 from a header, or null. */
function positiveInt(v: string | undefined): number | null {
  const n = wholeNumber(v);
  return n !== null && n >= 1 ? n : null;
}

/** A whole number (≥ 0) from a header, or null. */
function wholeNumber(v: string | undefined): number | null {
  if (v === undefined || !/^\s*\d{1,9}\s*$/.test(v)) return null;
  return Number(v);
}

/** The group an error answer names: `group` in its body or frame, else `X-Quorate-Group`. */
function groupNamed(res: WireResponse, err: Record<string, unknown>): number | null {
  const g = err.group;
  if (typeof g === 'number' && Number.isInteger(g) && g >= 0) return g;
  return wholeNumber(res.headers['x-quorate-group']);
}

/** `/partitions/<set>/<p>`. */
function partitionPath(set: string, partition: number): string {
  return `/partitions/${encodeURIComponent(set)}/${partition}`;
}

function jitter(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}

function json(r: WireResponse): unknown {
  return JSON.parse(dec.decode(r.body));
}

/** The answer of either wire: the protocol's decoded result, or the HTTP body's JSON. */
function answer(r: WireResponse): unknown {
  return r.result ?? json(r);
}

/** A lease as both wires give it (the protocol adds whether the call was a retry). */
function leaseOf(r: WireResponse): Lease {
  const { duplicate: _duplicate, ...lease } = answer(r) as Lease & { duplicate?: boolean };
  return lease;
}

/** A write's answer with whether the cluster had applied it before (a retry). */
function written<T extends { duplicate: boolean }>(r: WireResponse): T {
  const x = answer(r) as T;
  return { ...x, duplicate: r.headers['x-quorate-duplicate'] === 'true' || x.duplicate === true };
}

/** A value the protocol sends as bytes and HTTP as a string. */
function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : dec.decode(v);
}

function errorBody(r: WireResponse): Record<string, unknown> {
  if (r.error) return r.error as Record<string, unknown>;
  try {
    const b = JSON.parse(dec.decode(r.body)) as { error?: Record<string, unknown> };
    return b.error ?? { code: `HTTP_${r.status}` };
  } catch {
    return { code: `HTTP_${r.status}`, message: dec.decode(r.body).slice(0, 200) };
  }
}
