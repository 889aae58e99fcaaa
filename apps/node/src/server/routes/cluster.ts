/** Health, cluster status, its event stream, metrics, the dashboard and the state hash. */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from '../api.js';
import { HttpError } from '../errors.js';
import { sendJson } from '../http.js';

export function health(ctx: ApiContext) {
  const s = ctx.raft.status();
  const leader = s.leaderId;
  return {
    nodeId: s.id,
    state: s.role,
    isLeader: s.role === 'leader',
    leaderId: leader,
    leaderAddress: leader ? (ctx.members().find((m) => m.id === leader)?.clientAddress ?? null) : null,
    /** This member's client-protocol address, when it serves the protocol. */
    protocolAddress: ctx.members().find((m) => m.id === s.id)?.protocolAddress ?? null,
    term: s.term,
    commitIndex: s.commit,
    appliedIndex: ctx.raft.applied,
    snapshotting: ctx.raft.snapshotting,
    /**
     * This process's clocks as it reads them: the wall clock (ms since the epoch) and the
     * monotonic clock its timers run on (ms since it started). Fault-injection tools compare
     * them with their own to show a clock fault reached the node.
     */
    clock: { wallMs: Date.now(), monotonicMs: performance.now() },
    /** The data directory's filesystem is below `storage.reserveBytes`: writes are refused. */
    diskFull: ctx.disk?.full ?? false,
    diskFreeBytes: ctx.disk?.free ?? null,
    ...(ctx.shards ? { groups: groupsHealth(ctx) } : {}),
  };
}

/** Each group as this member sees it (sharded nodes: `/health` lists them). */
export function groupsHealth(ctx: ApiContext) {
  return ctx.shards!.all().map((g) => {
    const s = g.raft.status();
    return {
      group: g.group ?? 0,
      leaderId: s.leaderId,
      isLeader: s.role === 'leader',
      term: s.term,
      commitIndex: s.commit,
      appliedIndex: g.raft.applied,
      quiesced: ctx.shards!.host.isQuiesced(g.group ?? 0),
    };
  });
}

/** The groups summed up: how many, leaders per member, leaderless and quiesced ones. */
export function groupsSummary(ctx: ApiContext) {
  const leaders: Record<string, number> = {};
  for (const m of ctx.members()) leaders[m.id] = 0;
  let leaderless = 0;
  let quiesced = 0;
  for (const g of ctx.shards!.all()) {
    const l = g.raft.leaderId;
    if (l === null) leaderless++;
    else leaders[l] = (leaders[l] ?? 0) + 1;
    if (ctx.shards!.host.isQuiesced(g.group ?? 0)) quiesced++;
  }
  return { count: ctx.shards!.count, leaders, leaderless, quiesced };
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
    ...(ctx.shards ? { groups: groupsSummary(ctx) } : {}),
  };
}

export function streamEvents(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'Access-Control-Allow-Origin': '*',
  });
  // The first status brings the past (commit index samples); every one brings the leader
  // changes this node saw, with the time it saw each.
  let first = true;
  const push = () => {
    const status = {
      at: Date.now(),
      health: health(ctx),
      cluster: clusterStatus(ctx),
      leaders: ctx.history?.leaderChanges() ?? [],
      ...(first ? { commits: ctx.history?.commitSamples() ?? [] } : {}),
    };
    first = false;
    res.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`);
  };
  push();
  const timer = setInterval(push, 1000);
  const stop = () => clearInterval(timer);
  req.on('close', stop);
  res.on('error', stop);
}

export function ready(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): void {
  const h = health(ctx);
  const ok = (h.groups ?? [h]).every((g) => g.leaderId !== null && g.appliedIndex >= g.commitIndex);
  sendJson(res, ok ? 200 : 503, h);
}

export async function metrics(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!ctx.metrics)
    throw new HttpError(404, 'ROUTE_NOT_FOUND', "metrics are disabled in this node's configuration");
  const body = await ctx.metrics.render();
  res.writeHead(200, { 'Content-Type': ctx.metrics.contentType });
  res.end(body);
}

export function dashboard(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): void {
  if (!ctx.dashboardHtml) throw new HttpError(404, 'ROUTE_NOT_FOUND', 'no dashboard');
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(ctx.dashboardHtml);
}

/** A digest of the replicated state, to compare replicas at the same applied index. */
export function stateHash(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse): void {
  if (!ctx.shards) {
    sendJson(res, 200, { appliedIndex: ctx.raft.applied, hash: ctx.machine.hash() });
    return;
  }
  // Sharded: every group's hash at its own applied index; `appliedIndex` names them all,
  // so two members compare hashes only where every group applied the same index.
  const groups = ctx.shards.all().map((g) => ({
    group: g.group ?? 0,
    appliedIndex: g.raft.applied,
    hash: g.machine.hash(),
  }));
  const h = createHash('sha256');
  for (const g of groups) h.update(`${g.group}:${g.appliedIndex}:${g.hash};`);
  sendJson(res, 200, {
    appliedIndex: groups.map((g) => `${g.group}:${g.appliedIndex}`).join(','),
    hash: h.digest('hex'),
    groups,
  });
}
