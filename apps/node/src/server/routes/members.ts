/** Membership and leadership: `/admin/members[/<id>[/promote]]`, `/admin/transfer-leadership`. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from '../api.js';
import { badRequest, HttpError, inGroup } from '../errors.js';
import { deadline, notAllowed, readJson, sendJson, str } from '../http.js';

function confJson(ctx: ApiContext) {
  const s = ctx.raft.status();
  const byId = new Map(ctx.members().map((m) => [m.id, m]));
  const one = (id: string, role: 'voter' | 'learner') => ({
    id,
    role,
    peerAddress: byId.get(id)?.peerAddress ?? null,
    clientAddress: byId.get(id)?.clientAddress ?? null,
    protocolAddress: byId.get(id)?.protocolAddress ?? null,
  });
  return {
    members: [...s.voters.map((id) => one(id, 'voter')), ...s.learners.map((id) => one(id, 'learner'))],
  };
}

/** How far behind the commit index a learner may be and still be promoted (entries). */
const PROMOTE_MAX_LAG = 1000;

const ADDRESS = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

export async function membersRoute(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL) {
  const method = req.method ?? 'GET';
  const path = url.pathname;
  const timeoutMs = deadline(ctx, req);
  if (path === '/admin/members') {
    if (method === 'GET') return sendJson(res, 200, confJson(ctx));
    if (method !== 'POST') notAllowed(['GET', 'POST']);
    fixedMembers(ctx);
    const body = await readJson(req);
    const id = str(body, 'id', 64);
    const peerAddress = str(body, 'peerAddress', 256);
    const clientAddress = str(body, 'clientAddress', 256);
    if (!ADDRESS.test(peerAddress)) throw badRequest('INVALID_ARGUMENT', '"peerAddress" must be host:port');
    if (!/^https?:\/\/[^\s/]+$/.test(clientAddress)) {
      throw badRequest('INVALID_ARGUMENT', '"clientAddress" must be a URL like http://host:port');
    }
    const protocolAddress =
      body.protocolAddress === undefined ? undefined : str(body, 'protocolAddress', 256);
    if (protocolAddress !== undefined && !/^quorates?:\/\/[^\s/]+:\d{1,5}$/.test(protocolAddress)) {
      throw badRequest('INVALID_ARGUMENT', '"protocolAddress" must be a URL like quorate://host:port');
    }
    if (ctx.members().some((m) => m.id === id))
      throw new HttpError(409, 'ALREADY_MEMBER', `${id} is already a member`);
    await ctx.raft.changeMembership(
      {
        kind: 'addLearner',
        node: id,
        meta: { peerAddress, clientAddress, ...(protocolAddress ? { protocolAddress } : {}) },
      },
      { timeoutMs },
    );
    return sendJson(res, 200, confJson(ctx));
  }
  const rest = path.slice('/admin/members/'.length);
  const [rawId, action] = rest.split('/');
  const id = decodeURIComponent(rawId ?? '');
  const known = ctx.members().find((m) => m.id === id);
  if (!known) throw new HttpError(404, 'NOT_FOUND', `${id} is not a member`);
  fixedMembers(ctx);
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
        meta: {
          peerAddress: known.peerAddress,
          clientAddress: known.clientAddress,
          ...(known.protocolAddress ? { protocolAddress: known.protocolAddress } : {}),
        },
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

/**
 * A sharded cluster's members are fixed when it is created: every group would have to
 * change its membership, one after another, and that is not built yet.
 */
function fixedMembers(ctx: ApiContext): void {
  if (ctx.shards)
    throw new HttpError(
      409,
      'MEMBERSHIP_FIXED',
      `this cluster shards its keys over ${ctx.shards.count} groups, and a sharded cluster's members are fixed when it is created: membership changes are not supported on it yet (docs/sharding.md)`,
    );
}

export async function transferLeadership(
  base: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url?: URL,
): Promise<void> {
  // On a sharded node, `?group=<g>` names the group whose leadership moves (default 0).
  const raw = url?.searchParams.get('group') ?? null;
  let ctx = base;
  if (raw !== null) {
    const g = Number(raw);
    const count = base.shards?.count ?? 1;
    if (!/^\d{1,5}$/.test(raw) || g >= count)
      throw badRequest('INVALID_ARGUMENT', `group must be an integer from 0 to ${count - 1}`);
    ctx = base.shards?.ctx(g) ?? base;
  }
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
  await inGroup(ctx.group ?? 0, () =>
    ctx.raft.transferLeadership(to as string | undefined, { timeoutMs: deadline(ctx, req) }),
  );
  sendJson(res, 200, { leaderId: ctx.raft.leaderId, ...(ctx.shards ? { group: ctx.group ?? 0 } : {}) });
}
