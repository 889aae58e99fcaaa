/**
 * `POST /txn`: a multi-key transaction, as etcd has it. If every compare holds, the
 * `success` operations apply, else the `failure` ones; atomically, in one log entry,
 * exactly once (with the client's id and sequence, as every write).
 *
 *   {"compare":[{"key":"a","version":3},{"key":"b","value":"x"},{"key":"c","exists":false}],
 *    "success":[{"op":"put","key":"a","value":"1"},{"op":"delete","key":"b"},{"op":"get","key":"c"}],
 *    "failure":[{"op":"get","key":"a"}]}
 *
 * → `200 {"succeeded":true,"index":17,"results":[{"op":"put","key":"a","version":4},
 *   {"op":"delete","key":"b","deleted":true},{"op":"get","key":"c","value":null,"version":0}]}`.
 * Values are UTF-8 strings (`valueBase64` for bytes); a `get` answers both.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TxnCompare, TxnOp } from '../../state/commands.js';
import type { ApplyResult } from '../../state/machine.js';
import type { ApiContext } from '../api.js';
import { badRequest, HttpError, inGroup } from '../errors.js';
import { check, clientRef, dupHeader, enc, parseKey, propose, readJson, sendJson } from '../http.js';

/** Operations and compares per transaction, at most. */
export const MAX_TXN_OPS = 128;

type Json = Record<string, unknown>;

function value(o: Json, where: string, limit: number): Uint8Array {
  let v: Uint8Array;
  if (typeof o.value === 'string') v = enc.encode(o.value);
  else if (o.value instanceof Uint8Array) v = o.value;
  else if (typeof o.valueBase64 === 'string') v = new Uint8Array(Buffer.from(o.valueBase64, 'base64'));
  else throw badRequest('BAD_REQUEST', `${where}: give "value" (a string) or "valueBase64"`);
  if (v.byteLength > limit)
    throw badRequest('VALUE_TOO_LARGE', `${where}: the value exceeds ${limit} bytes (kv.maxValueBytes)`);
  return v;
}

function key(o: Json, where: string): string {
  if (typeof o.key !== 'string') throw badRequest('BAD_REQUEST', `${where}: "key" must be a string`);
  return parseKey(encodeURIComponent(o.key));
}

function list(body: Json, field: string): Json[] {
  const x = body[field] ?? [];
  if (!Array.isArray(x) || x.some((o) => o === null || typeof o !== 'object' || Array.isArray(o))) {
    throw badRequest('BAD_REQUEST', `"${field}" must be an array of objects`);
  }
  return x as Json[];
}

function ops(body: Json, field: 'success' | 'failure', limit: number): TxnOp[] {
  return list(body, field).map((o, i) => {
    const where = `${field}[${i}]`;
    if (o.op === 'put') return { op: 'put', key: key(o, where), value: value(o, where, limit) };
    if (o.op === 'delete' || o.op === 'get') return { op: o.op, key: key(o, where) };
    throw badRequest('BAD_REQUEST', `${where}: "op" must be "put", "delete" or "get"`);
  });
}

/**
 * A transaction's compares and branches, validated (from JSON, or from the client
 * protocol, where values may also be bytes).
 */
export function parseTxn(
  body: Json,
  limit: number,
): { compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[] } {
  const compare: TxnCompare[] = list(body, 'compare').map((o, i) => {
    const where = `compare[${i}]`;
    const c: { key: string; version?: number; value?: Uint8Array; exists?: boolean } = { key: key(o, where) };
    if (o.version !== undefined) {
      if (!Number.isSafeInteger(o.version) || (o.version as number) < 0)
        throw badRequest('BAD_REQUEST', `${where}: "version" must be an integer >= 0 (0: absent)`);
      c.version = o.version as number;
    }
    if (o.value !== undefined || o.valueBase64 !== undefined) c.value = value(o, where, limit);
    if (o.exists !== undefined) {
      if (typeof o.exists !== 'boolean')
        throw badRequest('BAD_REQUEST', `${where}: "exists" must be true or false`);
      c.exists = o.exists;
    }
    if (c.version === undefined && c.value === undefined && c.exists === undefined) {
      throw badRequest('BAD_REQUEST', `${where}: compare "version", "value" or "exists"`);
    }
    return c;
  });
  const success = ops(body, 'success', limit);
  const failure = ops(body, 'failure', limit);
  const n = compare.length + success.length + failure.length;
  if (n > MAX_TXN_OPS)
    throw badRequest(
      'BAD_REQUEST',
      `a transaction has at most ${MAX_TXN_OPS} compares and operations (got ${n})`,
    );
  return { compare, success, failure };
}

export async function txn(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ref = clientRef(req);
  const limit = ctx.options.maxValueBytes;
  // Room for a few values at the largest size, base64 included.
  const body = await readJson(req, Math.min(64 << 20, 4 * limit + (64 << 10)));
  const { compare, success, failure } = parseTxn(body, limit);
  const group = txnGroup(ctx, [...compare, ...success, ...failure]);
  if (ctx.shards) res.setHeader('X-Quorate-Group', String(group));
  const a = await inGroup(group, () =>
    propose(ctx.shards?.ctx(group) ?? ctx, req, {
      op: 'txn',
      compare,
      success,
      failure,
      ...(ref ? { ref } : {}),
    }),
  );
  check(a.result);
  const r = a.result as Extract<ApplyResult, { op: 'txn' }>;
  const results = r.results.map((x) =>
    x.op === 'get'
      ? {
          op: 'get',
          key: x.key,
          value: x.value === null ? null : Buffer.from(x.value).toString('utf8'),
          valueBase64: x.value === null ? null : Buffer.from(x.value).toString('base64'),
          version: x.version,
        }
      : x,
  );
  sendJson(res, 200, { succeeded: r.succeeded, index: r.index, results }, dupHeader(a));
}

/**
 * The group a transaction runs in: on a sharded node, the one group that holds all its
 * keys (a transaction over keys of several groups is refused: it would need a commit
 * protocol across groups, which quorate does not have). Group 0 without keys.
 */
export function txnGroup(ctx: ApiContext, items: readonly { key: string }[]): number {
  if (!ctx.shards || items.length === 0) return 0;
  const groups = new Set(items.map((i) => ctx.shards!.ofKey(i.key)));
  if (groups.size > 1) {
    throw new HttpError(
      400,
      'CROSS_GROUP_TXN',
      `the transaction's keys are in ${groups.size} groups (${[...groups].sort((a, b) => a - b).join(', ')}): a transaction runs in one group; split it, or choose keys of one group (docs/sharding.md)`,
      { groups: [...groups].sort((a, b) => a - b) },
    );
  }
  return [...groups][0]!;
}
