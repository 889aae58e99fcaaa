/**
 * Partition leadership across a failure of the quorate cluster itself (real processes):
 * the cluster's Raft leader killed while members hold partitions changes nothing, because
 * the new leader restarts every session's TTL at its election. (Members that fail are in
 * packages/client's tests and in examples/partitioned-log's.)
 */
import { PartitionMember, type PartitionMemberEvent, QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from './helpers.js';

let cluster: LocalCluster;
let admin: QuorateClient;
const members: {
  id: string;
  client: QuorateClient;
  member: PartitionMember;
  events: PartitionMemberEvent[];
}[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp' });
  admin = new QuorateClient({ endpoints: cluster.endpoints });
  await admin.createPartitionSet({ name: 'jobs', members: ['a', 'b'], partitions: 6, replicationFactor: 2 });
  for (const id of ['a', 'b']) {
    const client = new QuorateClient({ endpoints: cluster.endpoints, timeoutMs: 2000 });
    const member = new PartitionMember({
      cluster: client,
      set: 'jobs',
      member: id,
      ttlMs: 3000,
      keepAliveEveryMs: 500,
    });
    const events: PartitionMemberEvent[] = [];
    member.on((e) => events.push(e));
    member.start();
    members.push({ id, client, member, events });
  }
  await waitFor(
    () => members.every((m) => m.member.leading().size === 3),
    'each member to lead its 3 preferred partitions',
    30_000,
  );
});
afterAll(async () => {
  for (const m of members) {
    await m.member.stop().catch(() => {});
    await m.client.close();
  }
  await admin?.close();
  await cluster?.stop();
});

it('killing the cluster leader moves no partition: sessions outlive a failover', async () => {
  const before = (await admin.getPartitionSet('jobs'))!.partitions.map((p) => [p.leader, p.epoch]);
  const lostBefore = members.map((m) => m.events.filter((e) => e.type === 'lost').length);
  const leader = await cluster.waitForLeader(20_000);
  cluster.kill(leader);
  await waitFor(async () => {
    const l = await cluster.leader();
    return l && l.id !== leader.id ? l : null;
  }, 'a new cluster leader');
  // Several keep-alive rounds through the new leader.
  const s = (await admin.getPartitionSet('jobs'))!;
  await waitFor(async () => {
    const ka = await admin.getSession(s.members[0]!.session!);
    return ka !== null && members.every((m) => m.member.leading().size === 3);
  }, 'keep-alives through the new leader');
  // Nothing is to happen: look again once a lapse would have shown (the TTL, and 2 s for
  // an expiry to be proposed and committed on a loaded machine).
  await new Promise((r) => setTimeout(r, 5000));
  const after = (await admin.getPartitionSet('jobs'))!.partitions.map((p) => [p.leader, p.epoch]);
  expect(after).toEqual(before);
  expect(members.map((m) => m.events.filter((e) => e.type === 'lost').length)).toEqual(lostBefore);
  await cluster.restart(leader);
}, 90_000);
