/** The lease routes: `GET /leases/<name>`, `POST /leases/<name>/{acquire,renew,release}`. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Command } from '../../state/commands.js';
import type { ApiContext } from '../api.js';
import { HttpError } from '../errors.js';
import {
  check,
  clientRef,
  dupHeader,
  int,
  leaseJson,
  notAllowed,
  only,
  parseKey,
  propose,
  readBarrier,
  readJson,
  sendJson,
  str,
} from '../http.js';

/** `/leases/<name>` and `/leases/<name>/<action>`. */
export async function leaseRoute(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const rest = url.pathname.slice('/leases/'.length);
  const method = req.method ?? 'GET';
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
