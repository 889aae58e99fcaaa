/** The key-value routes: `GET /kv` (list), `GET|PUT|DELETE /kv/<key>`. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Command } from '../../state/commands.js';
import type { ApplyResult } from '../../state/machine.js';
import { mergedList } from '../../state/merged-list.js';
import type { ApiContext } from '../api.js';
import { badRequest, HttpError, inGroup } from '../errors.js';
import {
  check,
  clientRef,
  dupHeader,
  enc,
  ifVersion,
  notAllowed,
  parseKey,
  propose,
  readBarrier,
  readBody,
  sendJson,
} from '../http.js';

/** `/kv/<key>`: the key is the rest of the path. */
export function kvRoute(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const key = parseKey(url.pathname.slice(4));
  const method = req.method ?? 'GET';
  if (method === 'GET') return getKey(ctx, req, url, res, key);
  if (method === 'PUT') return putKey(ctx, req, url, res, key);
  if (method === 'DELETE') return deleteKey(ctx, req, res, key);
  return notAllowed(['GET', 'PUT', 'DELETE']);
}

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

export async function listKeys(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
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
  const { items, more, headers } = await listAll(ctx, req, url, prefix, limit, after);
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

/**
 * A page of keys in order: on a sharded node, every group's page (each read made
 * linearizable on its own group) merged, so the next page (`after` the last key) misses
 * nothing in any group.
 */
async function listAll(
  ctx: ApiContext,
  req: IncomingMessage,
  url: URL,
  prefix: string,
  limit: number,
  after: string | undefined,
): Promise<{
  items: ReturnType<ApiContext['machine']['list']>['items'];
  more: boolean;
  headers: Record<string, string>;
}> {
  if (!ctx.shards) {
    const headers = await readBarrier(ctx, req, url);
    return { ...ctx.machine.list(prefix, limit, after), headers };
  }
  const groups = ctx.shards.all();
  const barriers = await Promise.all(
    groups.map((g) => inGroup(g.group ?? 0, () => readBarrier(g, req, url))),
  );
  const headers: Record<string, string> =
    barriers[0]?.['X-Quorate-Stale'] === 'true'
      ? { 'X-Quorate-Stale': 'true' }
      : { 'X-Quorate-Read-Index': barriers.map((b) => b['X-Quorate-Read-Index']).join(',') };
  return {
    ...mergedList(
      groups.map((g) => g.machine),
      prefix,
      limit,
      after,
    ),
    headers,
  };
}
