/** Membership through the admin API, on in-process nodes behind real HTTP servers. */
import { MemoryStorage } from '@quorate/raft';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { QuorateNode } from '../src/node.js';
import { freePort, type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
let joiner: QuorateNode;
beforeAll(async () => {
  c = await inProcessCluster(3);
  await waitFor(() => c.leader(), 'a leader');
});
afterAll(async () => {
  await joiner?.stop({ transferLeadership: false });
  await c.stop();
});

const post = (url: string, body?: unknown, method = 'POST') =>
  fetch(url, { method, ...(body ? { body: JSON.stringify(body) } : {}) }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as { members?: { id: string; role: string }[]; error?: { code: string } },
  }));

it('a node joins as a learner, is promoted, and the leader is removed; writes go on throughout', async () => {
  const leader = c.leader()!;
  const url = c.url(leader.id);
  await fetch(`${url}/kv/before`, { method: 'PUT', body: '1' });
  const port = await freePort();
  // The in-memory transport ignores peer addresses; the API still wants host:port.
  const me = { id: 'n4', peerAddress: '127.0.0.1:1', clientAddress: `http://127.0.0.1:${port}` };
  joiner = new QuorateNode({
    id: 'n4',
    members: [],
    knownMembers: [...c.members, me],
    storage: new MemoryStorage(),
    transport: c.net.transport('n4'),
    http: { host: '127.0.0.1', port },
  });
  await joiner.start();
  const added = await post(`${url}/admin/members`, me);
  expect(added.status).toBe(200);
  expect(added.body.members).toContainEqual(expect.objectContaining({ id: 'n4', role: 'learner' }));
  await waitFor(
    async () => (await fetch(`${me.clientAddress}/kv/before?stale=true`)).status === 200,
    'the learner to catch up',
  );
  const again = await post(`${url}/admin/members`, me);
  expect(again.body.error?.code).toBe('ALREADY_MEMBER');
  const promoted = await post(`${url}/admin/members/n4/promote`);
  expect(promoted.body.members).toContainEqual(expect.objectContaining({ id: 'n4', role: 'voter' }));
  const removed = await post(`${url}/admin/members/${leader.id}`, undefined, 'DELETE');
  expect(removed.status).toBe(200);
  const next = await waitFor(
    () => [...c.nodes, joiner].find((n) => n.raft.isLeader && n !== leader),
    'a new leader',
  );
  const w = await fetch(`${next.url}/kv/after`, { method: 'PUT', body: '2' });
  expect(w.status).toBe(200);
  const st = (await (await fetch(`${next.url}/admin/members`)).json()) as { members: { id: string }[] };
  expect(st.members.map((m) => m.id).sort()).toEqual(
    c.members
      .map((m) => m.id)
      .filter((id) => id !== leader.id)
      .concat('n4')
      .sort(),
  );
});

it('bad membership requests are refused clearly', async () => {
  const url = c.url(c.leader()!.id);
  expect(
    (await post(`${url}/admin/members`, { id: 'x', peerAddress: 'nope', clientAddress: 'http://a:1' })).body
      .error?.code,
  ).toBe('INVALID_ARGUMENT');
  expect((await post(`${url}/admin/members/zz/promote`)).status).toBe(404);
});

it('a learner far behind is not promoted unless forced', async () => {
  const leader = await waitFor(() => c.leader(), 'a leader');
  const url = c.url(leader.id);
  // More than the promotion lag limit (1,000 entries) committed...
  for (let i = 0; i < 1100; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) => fetch(`${url}/kv/bulk-${i + j}`, { method: 'PUT', body: 'x' })),
    );
  }
  // ...and a learner that never receives any of it (no such node runs).
  const ghost = { id: 'n9', peerAddress: '127.0.0.1:9', clientAddress: 'http://127.0.0.1:9' };
  expect((await post(`${url}/admin/members`, ghost)).status).toBe(200);
  const refused = await post(`${url}/admin/members/n9/promote`);
  expect(refused.status).toBe(409);
  expect(refused.body.error?.code).toBe('LEARNER_BEHIND');
  const forced = await post(`${url}/admin/members/n9/promote?force=true`);
  expect(forced.status).toBe(200);
  expect(forced.body.members).toContainEqual(expect.objectContaining({ id: 'n9', role: 'voter' }));
  expect((await post(`${url}/admin/members/n9`, undefined, 'DELETE')).status).toBe(200);
});
