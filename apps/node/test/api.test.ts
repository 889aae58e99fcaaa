import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
let leaderUrl: string;
let followerUrl: string;

beforeAll(async () => {
  c = await inProcessCluster(3);
  const leader = await waitFor(() => c.leader(), 'a leader');
  leaderUrl = c.url(leader.id);
  followerUrl = c.url(c.nodes.find((n) => n !== leader)!.id);
  await waitFor(async () => (await fetch(`${followerUrl}/health/ready`)).ok, 'followers to be ready');
});
afterAll(() => c.stop());

// Response bodies are checked field by field below; their static type adds nothing.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Json = any;
const j = async (r: Response) => ({ status: r.status, body: (await r.json()) as Json, headers: r.headers });

describe('health and cluster', () => {
  it('GET /health describes the node', async () => {
    const { status, body } = await j(await fetch(`${leaderUrl}/health`));
    expect(status).toBe(200);
    expect(body).toMatchObject({
      state: 'leader',
      isLeader: true,
      leaderAddress: leaderUrl,
      snapshotting: false,
    });
    expect(Object.keys(body).sort()).toEqual(
      [
        'nodeId',
        'state',
        'isLeader',
        'leaderId',
        'leaderAddress',
        'protocolAddress',
        'term',
        'commitIndex',
        'appliedIndex',
        'snapshotting',
        'clock',
        'diskFull',
        'diskFreeBytes',
      ].sort(),
    );
    // No disk guard in this in-process cluster: never full, free space unknown.
    expect(body).toMatchObject({ diskFull: false, diskFreeBytes: null });
    const clock = body.clock as { wallMs: number; monotonicMs: number };
    expect(Math.abs(clock.wallMs - Date.now())).toBeLessThan(60_000);
    expect(clock.monotonicMs).toBeGreaterThan(0);
  });

  it('liveness and readiness', async () => {
    expect((await fetch(`${followerUrl}/health/live`)).status).toBe(200);
    expect((await fetch(`${followerUrl}/health/ready`)).status).toBe(200);
  });

  it('GET /cluster/status lists every member with replication progress on the leader', async () => {
    const { body } = await j(await fetch(`${leaderUrl}/cluster/status`));
    expect(body.members).toHaveLength(3);
    for (const m of body.members) {
      expect(m).toMatchObject({ healthy: true });
      expect(typeof m.matchIndex).toBe('number');
      expect(m.lag).toBeGreaterThanOrEqual(0);
    }
    expect(body.members.filter((m: { role: string }) => m.role === 'leader')).toHaveLength(1);
  });
});

describe('key-value', () => {
  it('put, get with version headers, delete', async () => {
    const put = await j(await fetch(`${leaderUrl}/kv/greeting`, { method: 'PUT', body: 'hello' }));
    expect(put).toMatchObject({ status: 200, body: { key: 'greeting', version: 1, created: true } });
    const get = await fetch(`${leaderUrl}/kv/greeting`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('hello');
    expect(get.headers.get('x-quorate-version')).toBe('1');
    expect(Number(get.headers.get('x-quorate-mod-index'))).toBe(put.body.index);
    expect(Number(get.headers.get('x-quorate-read-index'))).toBeGreaterThanOrEqual(put.body.index);
    const del = await j(await fetch(`${leaderUrl}/kv/greeting`, { method: 'DELETE' }));
    expect(del.body).toMatchObject({ deleted: true });
    expect((await fetch(`${leaderUrl}/kv/greeting`)).status).toBe(404);
  });

  it('reads on a follower are linearizable by default and marked when stale', async () => {
    await fetch(`${leaderUrl}/kv/seen`, { method: 'PUT', body: 'v2' });
    const r = await fetch(`${followerUrl}/kv/seen`);
    expect(await r.text()).toBe('v2');
    const stale = await fetch(`${followerUrl}/kv/seen?stale=true`);
    expect(stale.headers.get('x-quorate-stale')).toBe('true');
  });

  it('compare-and-set by version and by value', async () => {
    await fetch(`${leaderUrl}/kv/cas`, { method: 'PUT', body: 'a', headers: { 'If-Match': '0' } });
    const again = await j(
      await fetch(`${leaderUrl}/kv/cas`, { method: 'PUT', body: 'b', headers: { 'If-Match': '0' } }),
    );
    expect(again).toMatchObject({
      status: 409,
      body: { error: { code: 'CAS_FAILED', current: { version: 1 } } },
    });
    const byVersion = await j(
      await fetch(`${leaderUrl}/kv/cas`, { method: 'PUT', body: 'b', headers: { 'If-Match': '1' } }),
    );
    expect(byVersion.body.version).toBe(2);
    const byValue = await j(await fetch(`${leaderUrl}/kv/cas?expect=b`, { method: 'PUT', body: 'c' }));
    expect(byValue.status).toBe(200);
    const wrong = await j(await fetch(`${leaderUrl}/kv/cas?expect=zzz`, { method: 'PUT', body: 'd' }));
    expect(wrong.body.error.code).toBe('CAS_FAILED');
  });

  it('lists by prefix with a limit', async () => {
    for (const k of ['list/a', 'list/b', 'list/c'])
      await fetch(`${leaderUrl}/kv/${encodeURIComponent(k)}`, { method: 'PUT', body: k });
    const { body } = await j(await fetch(`${leaderUrl}/kv?prefix=list/&limit=2`));
    expect(body).toEqual({
      items: [
        { key: 'list/a', value: 'list/a', version: 1, modIndex: expect.any(Number) },
        { key: 'list/b', value: 'list/b', version: 1, modIndex: expect.any(Number) },
      ],
      more: true,
    });
  });

  it('a write on a follower names the leader (status, headers, body)', async () => {
    const r = await j(await fetch(`${followerUrl}/kv/x`, { method: 'PUT', body: '1' }));
    expect(r.status).toBe(421);
    expect(r.body.error).toMatchObject({ code: 'NOT_LEADER', leaderAddress: leaderUrl, retryable: true });
    expect(r.headers.get('x-quorate-leader')).toBe(leaderUrl);
  });

  it('a retried write with the same client id and sequence is applied once', async () => {
    const h = { 'X-Quorate-Client-Id': 'c-1', 'X-Quorate-Seq': '1' };
    const a = await j(await fetch(`${leaderUrl}/kv/once`, { method: 'PUT', body: 'v', headers: h }));
    const b = await j(await fetch(`${leaderUrl}/kv/once`, { method: 'PUT', body: 'v', headers: h }));
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('x-quorate-duplicate')).toBe('true');
    expect((await fetch(`${leaderUrl}/kv/once`)).headers.get('x-quorate-version')).toBe('1');
  });
});

describe('bad input gets a clear 4xx and never reaches the log', () => {
  const cases: [string, RequestInit & { path: string }, number, string][] = [
    [
      'an oversized value',
      { path: '/kv/big', method: 'PUT', body: 'x'.repeat(2000) },
      413,
      'VALUE_TOO_LARGE',
    ],
    ['an empty key', { path: '/kv/', method: 'PUT', body: 'x' }, 400, 'INVALID_KEY'],
    ['a key with a control character', { path: '/kv/a%01b', method: 'PUT', body: 'x' }, 400, 'INVALID_KEY'],
    ['bad percent-encoding', { path: '/kv/%E0%A4%A', method: 'PUT', body: 'x' }, 400, 'INVALID_KEY'],
    ['malformed JSON', { path: '/leases/l/acquire', method: 'POST', body: '{nope' }, 400, 'MALFORMED_JSON'],
    ['a JSON array', { path: '/leases/l/acquire', method: 'POST', body: '[]' }, 400, 'MALFORMED_JSON'],
    [
      'a missing holder',
      { path: '/leases/l/acquire', method: 'POST', body: '{"ttlMs":1000}' },
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'a TTL out of range',
      { path: '/leases/l/acquire', method: 'POST', body: '{"holder":"h","ttlMs":5}' },
      400,
      'INVALID_ARGUMENT',
    ],
    ['an unknown route', { path: '/nope', method: 'GET' }, 404, 'ROUTE_NOT_FOUND'],
    ['a wrong method', { path: '/kv/a', method: 'POST', body: 'x' }, 405, 'METHOD_NOT_ALLOWED'],
    [
      'a bad If-Match',
      { path: '/kv/a', method: 'PUT', body: 'x', headers: { 'If-Match': 'abc' } },
      400,
      'BAD_REQUEST',
    ],
    [
      'a bad deadline',
      { path: '/kv/a', method: 'GET', headers: { 'X-Quorate-Timeout-Ms': '-1' } },
      400,
      'BAD_REQUEST',
    ],
    [
      'a sequence without a client',
      { path: '/kv/a', method: 'PUT', body: 'x', headers: { 'X-Quorate-Seq': '1' } },
      400,
      'BAD_REQUEST',
    ],
    ['a bad list limit', { path: '/kv?limit=0', method: 'GET' }, 400, 'INVALID_ARGUMENT'],
  ];
  for (const [what, { path, ...init }, status, code] of cases) {
    it(what, async () => {
      const before = c.leader()!.raft.status().lastIndex;
      const r = await j(await fetch(`${leaderUrl}${path}`, init));
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(typeof r.body.error.message).toBe('string');
      expect(c.leader()!.raft.status().lastIndex).toBe(before);
    });
  }
});

describe('leases', () => {
  it('acquire, held by another, renew, release', async () => {
    const post = (action: string, body: unknown) =>
      fetch(`${leaderUrl}/leases/job/${action}`, { method: 'POST', body: JSON.stringify(body) }).then(j);
    const a = await post('acquire', { holder: 'a', ttlMs: 5000 });
    expect(a).toMatchObject({ status: 200, body: { name: 'job', holder: 'a', ttlMs: 5000 } });
    const token = a.body.token;
    expect((await post('acquire', { holder: 'b', ttlMs: 5000 })).body.error).toMatchObject({
      code: 'LEASE_HELD',
      lease: { holder: 'a', token },
    });
    expect((await post('renew', { holder: 'a', token })).body.token).toBe(token);
    expect((await post('renew', { holder: 'b', token })).body.error.code).toBe('LEASE_LOST');
    const got = await j(await fetch(`${leaderUrl}/leases/job`));
    expect(got.body).toMatchObject({ holder: 'a', token });
    expect(got.body.remainingMs).toBeGreaterThan(0);
    expect((await post('release', { holder: 'a', token })).body).toEqual({ released: true });
    expect((await fetch(`${leaderUrl}/leases/job`)).status).toBe(404);
  });

  it('a lease that is not renewed expires through the log', async () => {
    const r = await fetch(`${leaderUrl}/leases/short/acquire`, {
      method: 'POST',
      body: JSON.stringify({ holder: 'h', ttlMs: 200 }),
    }).then(j);
    expect(r.status).toBe(200);
    await waitFor(
      async () => (await fetch(`${followerUrl}/leases/short`)).status === 404,
      'the lease to expire',
      5000,
    );
    const again = await fetch(`${leaderUrl}/leases/short/acquire`, {
      method: 'POST',
      body: JSON.stringify({ holder: 'other', ttlMs: 200 }),
    }).then(j);
    expect(again.body.token).toBeGreaterThan(r.body.token);
  });
});

describe('admin', () => {
  it('replicas at the same applied index have the same state hash', async () => {
    await fetch(`${leaderUrl}/kv/hash-me`, { method: 'PUT', body: 'x' });
    const views = await waitFor(async () => {
      const vs = await Promise.all(
        c.members.map(async (m) => (await fetch(`${m.clientAddress}/admin/state-hash`)).json()),
      );
      const idx = new Set(vs.map((v) => (v as { appliedIndex: number }).appliedIndex));
      return idx.size === 1 ? vs : null;
    }, 'replicas to converge');
    expect(new Set(views.map((v) => (v as { hash: string }).hash)).size).toBe(1);
  });

  it('transfers leadership on request', async () => {
    const leader = c.leader()!;
    const target = c.nodes.find((n) => n !== leader)!.id;
    const r = await j(
      await fetch(`${c.url(leader.id)}/admin/transfer-leadership`, {
        method: 'POST',
        body: JSON.stringify({ to: target }),
      }),
    );
    expect(r.status).toBe(200);
    await waitFor(() => c.leader()?.id === target, 'the transfer');
    leaderUrl = c.url(target);
    followerUrl = c.url(c.nodes.find((n) => n.id !== target)!.id);
  });
});
