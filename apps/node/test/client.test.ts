/**
 * @quorate/client against real nodes (in-process Raft, real sockets on loopback), once over
 * each wire: the HTTP API and the client protocol.
 */
import {
  NotLeaderError,
  QuorateClient,
  RejectedError,
  TimeoutError,
  UnavailableError,
} from '@quorate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
beforeAll(async () => {
  c = await inProcessCluster(3);
  await c.settled();
});
afterAll(() => c.stop());

describe.each(['http', 'protocol'] as const)('QuorateClient over %s', (kind) => {
  const addr = (m: { clientAddress: string; protocolAddress?: string }) =>
    kind === 'http' ? m.clientAddress : m.protocolAddress!;
  const urls = () => c.members.map(addr);
  const urlOf = (id: string) => (kind === 'http' ? c.url(id) : c.protocolUrl(id));

  it('finds the leader from a follower and follows the hint', async () => {
    const leader = c.leader()!;
    const follower = addr(c.members.find((m) => m.id !== leader.id)!);
    const client = new QuorateClient({ endpoints: [follower] });
    const w = await client.put(`k-${kind}`, 'v');
    expect(w).toMatchObject({ key: `k-${kind}`, version: 1, created: true, duplicate: false });
    expect(client.knownLeader).toBe(urlOf(leader.id));
    expect((await client.get(`k-${kind}`))!.text()).toBe('v');
    expect(await client.get('absent')).toBeNull();
    await client.close();
  });

  it('compare-and-set failures are definite RejectedErrors with the server code', async () => {
    const client = new QuorateClient({ endpoints: urls() });
    await client.put(`cas-${kind}`, 'a');
    await client.cas(`cas-${kind}`, 'a', 'b');
    const err = await client.cas(`cas-${kind}`, 'a', 'c').catch((e) => e);
    expect(err).toBeInstanceOf(RejectedError);
    expect(err).toMatchObject({ serverCode: 'CAS_FAILED', ambiguous: false, code: 'REJECTED' });
    await client.close();
  });

  it('one client shared by 300 concurrent writers: every write lands, none refused as a stale sequence', async () => {
    const client = new QuorateClient({ endpoints: urls() });
    const rs = await Promise.all(
      Array.from({ length: 300 }, (_, i) => client.put(`many-${kind}/${i % 20}`, `v${i}`)),
    );
    expect(rs.every((r) => r.version >= 1)).toBe(true);
    await client.close();
  });

  it('leases with fencing tokens', async () => {
    const client = new QuorateClient({ endpoints: urls() });
    const l = await client.acquireLease('svc', 'me', 5000);
    expect(l).toMatchObject({ name: 'svc', holder: 'me', ttlMs: 5000 });
    expect((await client.renewLease('svc', 'me', l.token)).token).toBe(l.token);
    const held = await client.acquireLease('svc', 'you', 5000).catch((e) => e);
    expect(held).toMatchObject({ serverCode: 'LEASE_HELD' });
    expect(await client.getLease('svc')).toMatchObject({ holder: 'me', token: l.token });
    expect(await client.releaseLease('svc', 'me', l.token)).toBe(true);
    expect(await client.getLease('svc')).toBeNull();
    await client.close();
  });

  it('every member down: reads fail as unavailable, definitely', async () => {
    const scheme = kind === 'http' ? 'http' : 'quorate';
    const dead = [`${scheme}://127.0.0.1:${await freePort()}`, `${scheme}://127.0.0.1:${await freePort()}`];
    const client = new QuorateClient({ endpoints: dead, timeoutMs: 400 });
    const err = await client.get('x').catch((e) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err.ambiguous).toBe(false);
    await client.close();
  });

  it('rejects bad endpoints at construction', () => {
    expect(() => new QuorateClient({ endpoints: [] })).toThrow(/at least one/);
    expect(() => new QuorateClient({ endpoints: ['not a url'] })).toThrow(/not a URL/);
  });

  it('keeps writing through a leader change, within its deadline', async () => {
    const client = new QuorateClient({ endpoints: urls(), timeoutMs: 10_000 });
    await client.put(`before-${kind}`, '1');
    const leader = c.leader()!;
    const target = c.nodes.find((n) => n !== leader)!.id;
    await leader.raft.transferLeadership(target);
    const w = await client.put(`after-${kind}`, '2');
    expect(w.version).toBe(1);
    expect(client.knownLeader).toBe(urlOf(target));
    await client.close();
  });

  it('without a quorum, a write times out as ambiguous (and NotLeader never escapes as such)', async () => {
    const leader = c.leader()!;
    c.net.isolate(
      leader.id,
      c.members.map((m) => m.id),
    );
    try {
      const client = new QuorateClient({
        endpoints: [urlOf(leader.id)],
        timeoutMs: 700,
        attemptTimeoutMs: 300,
      });
      const err = await client.put('nowhere', 'x').catch((e) => e);
      expect(err).not.toBeInstanceOf(NotLeaderError);
      expect(err instanceof TimeoutError || err instanceof UnavailableError).toBe(true);
      await client.close();
    } finally {
      c.net.heal();
    }
    await waitFor(() => c.leader(), 'a leader again');
  });
});
