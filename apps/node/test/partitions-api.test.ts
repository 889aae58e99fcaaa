/**
 * The HTTP API of sessions and partition sets (docs/partitions.md) on a 3-node cluster:
 * creation and its refusals, joins, lookups with a stale epoch, hand-over when a session
 * lapses on the leader's clock, and the watch stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
let url: string;
let followerUrl: string;

beforeAll(async () => {
  c = await inProcessCluster(3);
  const leader = await waitFor(() => c.leader(), 'a leader');
  url = c.url(leader.id);
  followerUrl = c.url(c.nodes.find((n) => n !== leader)!.id);
  await waitFor(async () => (await fetch(`${followerUrl}/health/ready`)).ok, 'followers to be ready');
});
afterAll(() => c.stop());

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
async function call(method: string, path: string, body?: unknown, base = url) {
  const r = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined
      ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
      : {}),
  });
  const got = (await r.json()) as Json;
  // An error's fields ({code, message, …}) are under `error`: flattened for the checks.
  return { status: r.status, body: got?.error ? { ...got.error } : got };
}

describe('partition sets over HTTP', () => {
  it('creates a set round robin, and refuses bad input with typed 4xx errors that change nothing', async () => {
    const created = await call('POST', '/partitions', {
      name: 'orders',
      members: ['b1', 'b2', 'b3'],
      partitions: 6,
      replicationFactor: 2,
    });
    expect(created.status).toBe(201);
    expect(created.body.partitions.map((p: Json) => p.replicas)).toEqual([
      ['b1', 'b2'],
      ['b2', 'b3'],
      ['b3', 'b1'],
      ['b1', 'b2'],
      ['b2', 'b3'],
      ['b3', 'b1'],
    ]);
    expect(created.body.partitions[0]).toMatchObject({ leader: null, epoch: 0, eligible: ['b1', 'b2'] });
    const before = (await call('GET', '/admin/state-hash')).body;
    const bad: [unknown, number, string][] = [
      [{ name: 'x', members: ['a'], replicas: [['a', 'zz']] }, 400, 'UNKNOWN_MEMBER'],
      [{ name: 'x', members: ['a'], partitions: 0, replicationFactor: 1 }, 400, 'INVALID_ARGUMENT'],
      [{ name: 'x', members: ['a'], partitions: 1025, replicationFactor: 1 }, 400, 'INVALID_ARGUMENT'],
      [{ name: 'x', members: ['a'], partitions: 2, replicationFactor: 2 }, 400, 'INVALID_ARGUMENT'],
      [{ name: 'x', members: ['a', 'a'], partitions: 1, replicationFactor: 1 }, 400, 'INVALID_ARGUMENT'],
      [{ name: 'x', members: [], partitions: 1, replicationFactor: 1 }, 400, 'INVALID_ARGUMENT'],
      [{ name: 'bad name!', members: ['a'], partitions: 1, replicationFactor: 1 }, 400, 'INVALID_ARGUMENT'],
      [{ name: 'orders', members: ['a'], partitions: 1, replicationFactor: 1 }, 409, 'ALREADY_EXISTS'],
    ];
    for (const [body, status, code] of bad) {
      const r = await call('POST', '/partitions', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.code).toBe(code);
      expect(r.body.message.length).toBeGreaterThan(10);
    }
    const after = (await call('GET', '/admin/state-hash')).body;
    expect(after.hash).toBe(before.hash);
    // Bad sessions and paths: typed, nothing proposed.
    expect(await call('POST', '/sessions', { owner: 'a\nb', ttlMs: 1000 })).toMatchObject({
      status: 400,
      body: { code: 'INVALID_ARGUMENT' },
    });
    expect(await call('POST', '/sessions', { owner: 'a', ttlMs: 5 })).toMatchObject({ status: 400 });
    expect(await call('GET', '/partitions/%E0')).toMatchObject({
      status: 400,
      body: { code: 'INVALID_ARGUMENT' },
    });
    expect(await call('GET', '/partitions/orders/x')).toMatchObject({ status: 400 });
    expect(await call('GET', '/partitions/orders/99')).toMatchObject({
      status: 404,
      body: { code: 'PARTITION_NOT_FOUND' },
    });
    expect((await call('GET', '/admin/state-hash')).body.hash).toBe(before.hash);
    const list = await call('GET', '/partitions', undefined, followerUrl);
    expect(list.body.sets).toEqual([{ name: 'orders', partitions: 6, members: 3, live: 0, leaderless: 6 }]);
  });

  it('members join with sessions; lookups answer leader and epoch, and a stale epoch gets the current ones', async () => {
    const s1 = await call('POST', '/sessions', { owner: 'b1', ttlMs: 60_000 });
    expect(s1.status).toBe(200);
    const s2 = await call('POST', '/sessions', { owner: 'b2', ttlMs: 60_000 });
    const s3 = await call('POST', '/sessions', { owner: 'b3', ttlMs: 60_000 });
    for (const [m, s] of [
      ['b1', s1],
      ['b2', s2],
      ['b3', s3],
    ] as const)
      expect((await call('POST', '/partitions/orders/join', { member: m, session: s.body.id })).status).toBe(
        200,
      );
    const set = (await call('GET', '/partitions/orders', undefined, followerUrl)).body;
    expect(set.partitions.map((p: Json) => p.leader)).toEqual(['b1', 'b2', 'b3', 'b1', 'b2', 'b3']);
    // b1 again under another session: taken.
    const other = await call('POST', '/sessions', { owner: 'impostor', ttlMs: 60_000 });
    const taken = await call('POST', '/partitions/orders/join', { member: 'b1', session: other.body.id });
    expect(taken).toMatchObject({ status: 409, body: { code: 'MEMBER_TAKEN' } });
    const p0 = (await call('GET', '/partitions/orders/0')).body;
    expect(p0).toMatchObject({ partition: 0, leader: 'b1' });
    expect((await call('GET', `/partitions/orders/0?epoch=${p0.epoch}`)).status).toBe(200);
    const stale = await call('GET', `/partitions/orders/0?epoch=${p0.epoch - 1}`);
    expect(stale).toMatchObject({
      status: 409,
      body: { code: 'STALE_EPOCH', leader: 'b1', epoch: p0.epoch },
    });
    // The leader epoch counts leader changes only: b1 took partition 0 once.
    expect(p0.leaderEpoch).toBe(1);
    expect(await call('GET', '/partitions/orders/0?leaderEpoch=0')).toMatchObject({
      status: 409,
      body: { code: 'STALE_EPOCH', leader: 'b1', leaderEpoch: 1 },
    });
    // The keep-alive answers what the session leads.
    const ka = await call('POST', `/sessions/${s1.body.id}/keepalive`, {});
    expect(ka.body.led.map((x: Json) => x.partition)).toEqual([0, 3]);
    // A move to a member that is not eligible: refused, typed, the epoch unchanged.
    const shrink = await call('POST', '/partitions/orders/0/eligible', {
      member: 'b1',
      epoch: p0.epoch,
      eligible: ['b1'],
    });
    expect(shrink).toMatchObject({
      status: 200,
      body: { eligible: ['b1'], epoch: p0.epoch + 1, leaderEpoch: 1 },
    });
    const move = await call('POST', '/partitions/orders/0/move', { to: 'b2' });
    expect(move).toMatchObject({ status: 409, body: { code: 'NOT_ELIGIBLE' } });
    const staleCas = await call('POST', '/partitions/orders/0/eligible', {
      member: 'b1',
      epoch: p0.epoch,
      eligible: ['b1', 'b2'],
    });
    expect(staleCas).toMatchObject({ status: 409, body: { code: 'STALE_EPOCH', epoch: p0.epoch + 1 } });
    const grow = await call('POST', '/partitions/orders/0/eligible', {
      member: 'b1',
      epoch: p0.epoch + 1,
      eligible: ['b2', 'b1'],
    });
    expect(grow.body).toMatchObject({ eligible: ['b1', 'b2'], epoch: p0.epoch + 2 });
    const moved = await call('POST', '/partitions/orders/0/move', { to: 'b2', epoch: p0.epoch + 2 });
    expect(moved.body).toMatchObject({ leader: 'b2', epoch: p0.epoch + 3, leaderEpoch: 2 });
    await call('DELETE', `/sessions/${other.body.id}`);
    // A retried move (same client id and sequence) gets the first attempt's answer, not a
    // STALE_EPOCH of its own making.
    const retry = async () => {
      const r = await fetch(`${url}/partitions/orders/0/move`, {
        method: 'POST',
        body: JSON.stringify({ to: 'b1', epoch: p0.epoch + 3 }),
        headers: { 'x-quorate-client-id': 'retrier', 'x-quorate-seq': '1' },
      });
      return { status: r.status, body: (await r.json()) as Json };
    };
    const first = await retry();
    expect(first.body).toMatchObject({ leader: 'b1', epoch: p0.epoch + 4 });
    expect(await retry()).toEqual(first);
  });

  it('a session left to lapse hands its partitions on, announced on the watch stream', async () => {
    await call('POST', '/partitions', {
      name: 'short',
      members: ['x', 'y'],
      partitions: 4,
      replicationFactor: 2,
    });
    // Watch from here on (by index, so that nothing is missed however slow this machine is).
    const fromIndex = (await call('GET', '/health', undefined, followerUrl)).body.appliedIndex + 1;
    const sx = (await call('POST', '/sessions', { owner: 'x', ttlMs: 2000 })).body.id;
    const sy = (await call('POST', '/sessions', { owner: 'y', ttlMs: 60_000 })).body.id;
    await call('POST', '/partitions/short/join', { member: 'x', session: sx });
    await call('POST', '/partitions/short/join', { member: 'y', session: sy });
    const before = (await call('GET', '/partitions/short')).body.partitions;
    expect(before.map((p: Json) => p.leader)).toEqual(['x', 'y', 'x', 'y']);
    // Watch from a follower while x's session lapses (no keep-alive is sent).
    const ac = new AbortController();
    const seen: Json[] = [];
    const watching = (async () => {
      const r = await fetch(`${followerUrl}/watch?partitions=short&fromIndex=${fromIndex}`, {
        signal: ac.signal,
      });
      const reader = r.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += new TextDecoder().decode(value);
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (ev.includes('event: batch'))
            seen.push(...JSON.parse(ev.slice(ev.indexOf('data: ') + 6)).changes);
        }
      }
    })().catch(() => {});
    const after = await waitFor(
      async () => {
        const ps = (await call('GET', '/partitions/short')).body.partitions;
        return ps.every((p: Json) => p.leader === 'y') ? ps : null;
      },
      'x to lapse and y to lead everything',
      10_000,
    );
    for (const i of [0, 2]) {
      expect(after[i].epoch).toBe(before[i].epoch + 1);
      expect(after[i].eligible).toEqual(['y']);
    }
    expect(await call('GET', `/sessions/${sx}`)).toMatchObject({
      status: 404,
      body: { code: 'SESSION_NOT_FOUND' },
    });
    const handedOn = await waitFor(
      () => seen.find((s) => s.type === 'partition' && s.partition === 0 && s.leader === 'y'),
      'the watch to show partition 0 handed to y',
      10_000,
    );
    expect(handedOn).toMatchObject({
      type: 'partition',
      set: 'short',
      leader: 'y',
      epoch: before[0].epoch + 1,
      eligible: ['y'],
    });
    ac.abort();
    await watching;
  });
});
