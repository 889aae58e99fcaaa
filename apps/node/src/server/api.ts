/**
 * The HTTP API of docs/http-api.md: one route table; the routes live in `routes/`, one
 * file per family, and share `http.ts`. Every request has a deadline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MultiRaftHost } from '@quorate/multiraft';
import type { NodeId, RaftNode } from '@quorate/raft';
import type { DiskGuard } from '../disk-guard.js';
import type { LeaseKeeper } from '../state/lease-keeper.js';
import type { Applied, QuorateMachine } from '../state/machine.js';
import { fromRaftError, HttpError, inGroup } from './errors.js';
import { authorized, notAllowed, parseKey, sendError, sendJson } from './http.js';
import type { PeerMonitor } from './peer-monitor.js';
import { backup } from './routes/backup.js';
import {
  clusterStatus,
  dashboard,
  health,
  metrics,
  ready,
  stateHash,
  streamEvents,
} from './routes/cluster.js';
import { kvRoute, listKeys } from './routes/kv.js';
import { leaseRoute } from './routes/leases.js';
import { membersRoute, transferLeadership } from './routes/members.js';
import { openSession, partitionRoute, partitionSets, sessionRoute } from './routes/partitions.js';
import { txn } from './routes/txn.js';
import { watch } from './routes/watch.js';
import type { StatusHistory } from './status-history.js';

export interface Member {
  readonly id: NodeId;
  readonly peerAddress: string;
  readonly clientAddress: string;
  /** `quorate://host:port` of its client protocol, when it serves one. */
  readonly protocolAddress?: string;
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
  /** The data directory's free-space guard (absent: no check). */
  readonly disk?: DiskGuard | null;
  readonly machine: QuorateMachine;
  /** The current members (voters and learners) with their addresses. */
  members(): readonly Member[];
  readonly leases: LeaseKeeper;
  readonly peers: PeerMonitor;
  readonly options: ApiOptions;
  readonly metrics?: MetricsEndpoint;
  readonly dashboardHtml?: string;
  /** The commit index and leader changes over time, for the status page. */
  readonly history?: StatusHistory;
  /** The cluster's id (written into backups). */
  readonly clusterId?: string;
  /** The Raft group this context serves (0, the only one, unless the key space is sharded). */
  readonly group?: number;
  /** On a node that shards its key space: every group's context. */
  readonly shards?: Shards;
}

/** The groups of a node that shards its key space (docs/sharding.md). */
export interface Shards {
  readonly count: number;
  /** The group that holds a key. */
  ofKey(key: string): number;
  /** A group's context (its `raft` and `machine`; everything else shared). */
  ctx(group: number): ApiContext;
  /** Every group's context, group 0 first. */
  all(): readonly ApiContext[];
  readonly host: MultiRaftHost;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function createApi(ctx: ApiContext): Handler {
  return (req, res) => {
    handle(ctx, req, res).catch((err) => sendError(res, fromRaftError(err)));
  };
}

type Route = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/** Exact paths, by method. */
const ROUTES: Record<string, Record<string, Route>> = {
  '/health': { GET: (ctx, _req, res) => sendJson(res, 200, health(ctx)) },
  '/health/ready': { GET: ready },
  '/cluster/status': { GET: (ctx, _req, res) => sendJson(res, 200, clusterStatus(ctx)) },
  '/cluster/events': { GET: streamEvents },
  '/metrics': { GET: metrics },
  '/': { GET: dashboard },
  '/index.html': { GET: dashboard },
  '/kv': { GET: listKeys },
  '/watch': { GET: watch },
  '/txn': { POST: txn },
  '/sessions': { POST: openSession },
  '/partitions': { GET: partitionSets, POST: partitionSets },
  '/admin/transfer-leadership': { POST: transferLeadership },
  '/admin/state-hash': { GET: stateHash },
  '/admin/snapshot': { GET: backup },
};

/** Path families whose routes read the rest of the path (and check the method) themselves. */
const FAMILIES: [matches: (path: string) => boolean, route: Route][] = [
  [(p) => p.startsWith('/kv/'), kvRoute],
  [(p) => p.startsWith('/leases/'), leaseRoute],
  [(p) => p.startsWith('/sessions/'), sessionRoute],
  [(p) => p.startsWith('/partitions/'), partitionRoute],
  [(p) => p === '/admin/members' || p.startsWith('/admin/members/'), membersRoute],
];

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (ctx.shards) res.setHeader('X-Quorate-Groups', String(ctx.shards.count));

  if (path === '/health/live') return sendJson(res, 200, { ok: true });
  if (ctx.options.token !== null && !authorized(req, url, method, ctx.options.token)) {
    throw new HttpError(
      401,
      'UNAUTHORIZED',
      'send "Authorization: Bearer <token>" with the token from the node configuration (the dashboard: open /?token=<token>)',
    );
  }
  // Own properties only: a path or method never reaches Object.prototype.
  const exact = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
  if (exact) {
    const route = Object.hasOwn(exact, method) ? exact[method] : undefined;
    if (!route) return notAllowed(Object.keys(exact));
    return route(ctx, req, res, url);
  }
  if (ctx.shards && path.startsWith('/kv/')) {
    // The key's group answers; a member that does not lead it names that group's leader.
    const group = ctx.shards.ofKey(parseKey(path.slice(4)));
    res.setHeader('X-Quorate-Group', String(group));
    return inGroup(group, () => kvRoute(ctx.shards!.ctx(group), req, res, url));
  }
  for (const [matches, route] of FAMILIES) if (matches(path)) return route(ctx, req, res, url);
  throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${path}; see docs/http-api.md`);
}
