/**
 * Sessions and partition sets (docs/partitions.md):
 * `POST /sessions`, `GET|DELETE /sessions/<id>`, `POST /sessions/<id>/keepalive`;
 * `GET|POST /partitions`, `GET|DELETE /partitions/<set>`, `POST /partitions/<set>/{join,leave}`,
 * `GET /partitions/<set>/<p>`, `POST /partitions/<set>/<p>/{resign,eligible,move,unclean}`.
 *
 * Every argument is checked here, before anything is proposed; what needs the state (a
 * name in use, a stale epoch, a member without a session) is refused by the state machine
 * in the entry, without changing anything.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Command } from '../../state/commands.js';
import type { ApplyResult, PartitionView } from '../../state/machine.js';
import type { PartitionRecord, PartitionSet } from '../../state/partitions.js';
import type { ApiContext } from '../api.js';
import { badRequest, HttpError } from '../errors.js';
import {
  check,
  clientRef,
  dupHeader,
  int,
  notAllowed,
  only,
  propose,
  readBarrier,
  readJson,
  sendJson,
} from '../http.js';

/** Partitions in one set, at most. */
export const MAX_PARTITIONS = 1024;
/** Members of one set, at most. */
export const MAX_SET_MEMBERS = 64;
const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MEMBER = /^[A-Za-z0-9._:@-]{1,128}$/;

function name(v: unknown, field: string, re: RegExp): string {
  if (typeof v !== 'string' || !re.test(v))
    throw badRequest(
      'INVALID_ARGUMENT',
      `"${field}" must be 1 to 128 characters of ${re === NAME ? 'A-Z a-z 0-9 . _ -' : 'A-Z a-z 0-9 . _ : @ -'} (got ${JSON.stringify(v)})`,
    );
  return v;
}

function members(v: unknown, field: string, max: number): string[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > max)
    throw badRequest('INVALID_ARGUMENT', `"${field}" must be a list of 1 to ${max} member names`);
  const out = v.map((m) => name(m, field, MEMBER));
  if (new Set(out).size !== out.length)
    throw badRequest('INVALID_ARGUMENT', `"${field}" names a member twice: ${JSON.stringify(out)}`);
  return out;
}

function ttl(ctx: ApiContext, body: Record<string, unknown>): number {
  return int(body, 'ttlMs', ctx.options.leaseTtlMs?.min ?? 100, ctx.options.leaseTtlMs?.max ?? 3_600_000);
}

/**
 * Propose, with the request's exactly-once identity (`X-Quorate-Client-Id`/`-Seq`) when it
 * has one: a retried resignation, move or eligible-set change then gets the first
 * attempt's answer, not a `STALE_EPOCH` of its own making.
 */
async function run(ctx: ApiContext, req: IncomingMessage, cmd: Command) {
  const ref = clientRef(req);
  const a = await propose(ctx, req, ref && !('ref' in cmd) ? ({ ...cmd, ref } as Command) : cmd);
  check(a.result);
  return { r: a.result as Extract<ApplyResult, { ok: true }>, headers: dupHeader(a) };
}

// ---- sessions ----

export async function openSession(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJson(req);
  const owner = typeof body.owner === 'string' ? body.owner : '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (owner.length < 1 || owner.length > 128 || /[\u0000-\u001f\u007f]/.test(owner))
    throw badRequest(
      'INVALID_ARGUMENT',
      '"owner" must be a string of 1 to 128 characters, without control characters',
    );
  const ref = clientRef(req);
  const { r, headers } = await run(ctx, req, {
    op: 'session-open',
    owner,
    ttlMs: ttl(ctx, body),
    ...(ref ? { ref } : {}),
  });
  if (r.op === 'session') sendJson(res, 200, { id: r.session.id, owner, ttlMs: r.session.ttlMs }, headers);
}

export async function sessionRoute(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const parts = url.pathname.slice('/sessions/'.length).split('/');
  const method = req.method ?? 'GET';
  const id = Number(parts[0]);
  if (!/^\d{1,15}$/.test(parts[0] ?? '') || id < 1)
    throw badRequest(
      'INVALID_ARGUMENT',
      `a session id is a positive integer (got ${JSON.stringify(parts[0])})`,
    );
  if (parts.length === 2 && parts[1] === 'keepalive') {
    if (method !== 'POST') notAllowed(['POST']);
    const { r } = await run(ctx, req, { op: 'session-keepalive', session: id });
    if (r.op === 'session')
      sendJson(res, 200, {
        id,
        owner: r.session.owner,
        ttlMs: r.session.ttlMs,
        led: r.led.map(({ set, partition, member, epoch, leaderEpoch, eligible }) => ({
          set,
          partition,
          member,
          epoch,
          leaderEpoch,
          eligible,
        })),
      });
    return;
  }
  if (parts.length !== 1) throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${url.pathname}`);
  return only(method, ['GET', 'DELETE'], async () => {
    if (method === 'DELETE') {
      const { r } = await run(ctx, req, { op: 'session-close', session: id });
      if (r.op === 'session-close') sendJson(res, 200, { closed: r.ended });
      return;
    }
    const headers = await readBarrier(ctx, req, url);
    const s = ctx.machine.partitions.sessions.get(id);
    if (!s)
      throw new HttpError(404, 'SESSION_NOT_FOUND', `session ${id} does not exist: it lapsed or was closed`);
    sendJson(
      res,
      200,
      {
        id,
        owner: s.owner,
        ttlMs: s.ttlMs,
        members: ctx.machine.partitions.membersOf(id),
        remainingMs: ctx.raft.isLeader ? ctx.leases.sessionRemainingMs(id) : null,
      },
      headers,
    );
  });
}

// ---- partition sets ----

function partitionJson(i: number, p: PartitionRecord | PartitionView) {
  return {
    partition: i,
    leader: p.leader,
    epoch: p.epoch,
    leaderEpoch: p.leaderEpoch,
    eligible: [...p.eligible],
    replicas: [...p.replicas],
  };
}

function setJson(ps: PartitionSet) {
  return {
    name: ps.name,
    members: ps.members.map((id) => ({ id, session: ps.sessionOf.get(id) ?? null })),
    partitions: ps.partitions.map((p, i) => partitionJson(i, p)),
  };
}

/** The replicas of a new set: given, or round robin over the members. */
function replicasOf(body: Record<string, unknown>, ms: string[]): string[][] {
  if (body.replicas !== undefined) {
    const r = body.replicas;
    if (!Array.isArray(r) || r.length < 1 || r.length > MAX_PARTITIONS)
      throw badRequest(
        'INVALID_ARGUMENT',
        `"replicas" must list 1 to ${MAX_PARTITIONS} partitions' replicas`,
      );
    const out = r.map((x, i) => members(x, `replicas[${i}]`, MAX_SET_MEMBERS));
    for (const [i, list] of out.entries())
      for (const m of list)
        if (!ms.includes(m))
          throw badRequest(
            'UNKNOWN_MEMBER',
            `partition ${i} names replica ${JSON.stringify(m)}, which is not one of the set's members`,
          );
    if (body.partitions !== undefined && body.partitions !== out.length)
      throw badRequest(
        'INVALID_ARGUMENT',
        `"partitions" (${String(body.partitions)}) differs from the ${out.length} replica lists`,
      );
    return out;
  }
  const n = int(body, 'partitions', 1, MAX_PARTITIONS);
  const rf = int(body, 'replicationFactor', 1, ms.length);
  return Array.from({ length: n }, (_, p) => Array.from({ length: rf }, (_, k) => ms[(p + k) % ms.length]!));
}

export async function partitionSets(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  if (req.method === 'POST') {
    const body = await readJson(req);
    const setName = name(body.name, 'name', NAME);
    const ms = members(body.members, 'members', MAX_SET_MEMBERS);
    const replicas = replicasOf(body, ms);
    const ref = clientRef(req);
    const { headers } = await run(ctx, req, {
      op: 'pset-create',
      name: setName,
      members: ms,
      replicas,
      ...(ref ? { ref } : {}),
    });
    const ps = ctx.machine.partitions.sets.get(setName);
    sendJson(res, 201, ps ? setJson(ps) : { name: setName }, headers);
    return;
  }
  if (req.method !== 'GET') notAllowed(['GET', 'POST']);
  const headers = await readBarrier(ctx, req, url);
  const sets = [...ctx.machine.partitions.sets.values()].map((ps) => ({
    name: ps.name,
    partitions: ps.partitions.length,
    members: ps.members.length,
    live: ps.sessionOf.size,
    leaderless: ps.partitions.filter((p) => p.leader === null).length,
  }));
  sendJson(res, 200, { sets }, headers);
}

export async function partitionRoute(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const parts = url.pathname.slice('/partitions/'.length).split('/');
  const method = req.method ?? 'GET';
  let raw0: string;
  try {
    raw0 = decodeURIComponent(parts[0] ?? '');
  } catch {
    throw badRequest('INVALID_ARGUMENT', 'the set name in the path is not valid URL-encoded UTF-8');
  }
  const setName = name(raw0, 'set', NAME);
  const lookup = () => {
    const ps = ctx.machine.partitions.sets.get(setName);
    if (!ps)
      throw new HttpError(
        404,
        'PARTITION_SET_NOT_FOUND',
        `no partition set named ${JSON.stringify(setName)}`,
      );
    return ps;
  };
  if (parts.length === 1) {
    return only(method, ['GET', 'DELETE'], async () => {
      if (method === 'DELETE') {
        const { r } = await run(ctx, req, { op: 'pset-delete', name: setName });
        if (r.op === 'pset') sendJson(res, 200, { deleted: r.deleted ?? false });
        return;
      }
      const headers = await readBarrier(ctx, req, url);
      sendJson(res, 200, setJson(lookup()), headers);
    });
  }
  if (parts.length === 2 && (parts[1] === 'join' || parts[1] === 'leave')) {
    if (method !== 'POST') notAllowed(['POST']);
    const body = await readJson(req);
    const member = name(body.member, 'member', MEMBER);
    const session = int(body, 'session', 1, Number.MAX_SAFE_INTEGER);
    await run(ctx, req, {
      op: parts[1] === 'join' ? 'pset-join' : 'pset-leave',
      set: setName,
      member,
      session,
    });
    // The write is done: answer with the set as it is now (deleted since: say so, not 404).
    const ps = ctx.machine.partitions.sets.get(setName);
    sendJson(res, 200, ps ? setJson(ps) : { name: setName, deleted: true });
    return;
  }
  const raw = parts[1] ?? '';
  if (!/^\d{1,4}$/.test(raw))
    throw badRequest('INVALID_ARGUMENT', `a partition is a number from 0 (got ${JSON.stringify(raw)})`);
  const partition = Number(raw);
  if (parts.length === 2) {
    return only(method, ['GET'], async () => {
      const headers = await readBarrier(ctx, req, url);
      const p = lookup().partitions[partition];
      if (!p)
        throw new HttpError(
          404,
          'PARTITION_NOT_FOUND',
          `set ${JSON.stringify(setName)} has no partition ${partition}`,
        );
      // A caller that used an older epoch (or leader epoch) learns the current ones.
      for (const [param, current] of [
        ['epoch', p.epoch],
        ['leaderEpoch', p.leaderEpoch],
      ] as const) {
        const asked = url.searchParams.get(param);
        if (asked === null) continue;
        if (!/^\d{1,15}$/.test(asked))
          throw badRequest('INVALID_ARGUMENT', `${param} must be an integer (got ${asked})`);
        if (Number(asked) < current)
          throw new HttpError(
            409,
            'STALE_EPOCH',
            `partition ${partition} of ${setName} is at ${param} ${current}, led by ${JSON.stringify(p.leader)}; use that`,
            { leader: p.leader, epoch: p.epoch, leaderEpoch: p.leaderEpoch },
          );
      }
      sendJson(res, 200, partitionJson(partition, p), headers);
    });
  }
  if (parts.length !== 3) throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${url.pathname}`);
  if (method !== 'POST') notAllowed(['POST']);
  const body = await readJson(req);
  const epoch = () => int(body, 'epoch', 0, Number.MAX_SAFE_INTEGER);
  let cmd: Command;
  switch (parts[2]) {
    case 'resign':
      cmd = {
        op: 'part-resign',
        set: setName,
        partition,
        member: name(body.member, 'member', MEMBER),
        epoch: epoch(),
      };
      break;
    case 'eligible': {
      const admin = body.admin === true;
      if (!admin && body.member === undefined)
        throw badRequest('INVALID_ARGUMENT', 'give "member" (the partition\'s leader) or "admin": true');
      cmd = {
        op: 'part-eligible',
        set: setName,
        partition,
        member: admin ? null : name(body.member, 'member', MEMBER),
        epoch: epoch(),
        eligible: members(body.eligible, 'eligible', MAX_SET_MEMBERS),
      };
      break;
    }
    case 'move':
      cmd = {
        op: 'part-move',
        set: setName,
        partition,
        to: name(body.to, 'to', MEMBER),
        epoch: body.epoch === undefined ? null : epoch(),
      };
      break;
    case 'unclean':
      cmd = { op: 'part-unclean', set: setName, partition, to: name(body.to, 'to', MEMBER) };
      break;
    default:
      throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${url.pathname}`);
  }
  const { r } = await run(ctx, req, cmd);
  // (An unclean hand-over is logged by every member as it applies it: node.ts.)
  if (r.op === 'partition') sendJson(res, 200, partitionJson(partition, r.state));
}
