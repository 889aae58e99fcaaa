/**
 * Snapshots and compaction end to end: nodes snapshot every few hundred entries and
 * compact their logs, so a follower that was down, and a brand-new member, can only catch
 * up through a snapshot streamed over the real transport into real LMDB files.
 */
import { QuorateClient } from '@quorate/client';
import { LocalCluster, type SpawnedNode } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from './helpers.js';

let cluster: LocalCluster;
let client: QuorateClient;
beforeAll(async () => {
  cluster = await LocalCluster.start({
    n: 3,
    transport: 'ws',
    extraArgs: [
      '--raft.snapshot-entries',
      '300',
      '--raft.snapshot-trailing-entries',
      '20',
      '--log.level',
      'info',
    ],
  });
  client = new QuorateClient({ endpoints: cluster.endpoints, timeoutMs: 15_000 });
});
afterAll(async () => {
  await client?.close();
  await cluster?.stop();
});

async function writeMany(prefix: string, n: number): Promise<void> {
  const lanes = 16;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let i = lane; i < n; i += lanes)
        await client.put(`${prefix}/${String(i).padStart(5, '0')}`, `${prefix}-${i}`);
    }),
  );
}

const stateOf = async (n: SpawnedNode) =>
  (await (await fetch(`${n.clientAddress}/admin/state-hash`)).json()) as {
    appliedIndex: number;
    hash: string;
  };

async function converged(nodes: SpawnedNode[]): Promise<void> {
  await waitFor(
    async () => {
      const hs = await Promise.all(nodes.map(stateOf));
      return new Set(hs.map((h) => `${h.appliedIndex}:${h.hash}`)).size === 1;
    },
    'replicas to converge on one state',
    60_000,
  );
}

it('a follower that was down while the log was compacted catches up from a snapshot', async () => {
  await writeMany('a', 200);
  const leader = await cluster.waitForLeader(20_000);
  const follower = cluster.nodes.find((n) => n !== leader)!;
  cluster.kill(follower);
  await writeMany('b', 1500); // several snapshots and compactions while it is down
  await cluster.restart(follower);
  await converged(cluster.nodes);
  expect(follower.log.some((l) => /snapshot/i.test(l))).toBe(true);
  const r = await fetch(`${follower.clientAddress}/kv/b/01499?stale=true`);
  expect(await r.text()).toBe('b-1499');
});

it('a new member joins through a snapshot and ends with the same state', async () => {
  const n4 = await cluster.join(cluster.nodes[0]!);
  await waitFor(
    async () => {
      const r = await fetch(`${cluster.nodes[0]!.clientAddress}/admin/members`);
      const ms = ((await r.json()) as { members: { id: string; role: string }[] }).members;
      return ms.some((m) => m.id === n4.id && m.role === 'voter');
    },
    'n4 to become a voter',
    60_000,
  );
  await client.put('after-join', 'yes');
  await converged(cluster.nodes.filter((n) => n.proc !== null));
  const r = await fetch(`${n4.clientAddress}/kv/a/00007?stale=true`);
  expect(await r.text()).toBe('a-7');
});

it("a member restarted after the log was compacted past a join still knows the new member's addresses", async () => {
  const n4 = cluster.nodes.find((n) => n.id === 'n4')!;
  await writeMany('c', 700); // snapshots and compactions past n4's membership change
  const leader = await cluster.waitForLeader(20_000);
  const original = cluster.nodes.find((n) => n !== leader && n !== n4 && n.proc !== null)!;
  cluster.kill(original);
  await cluster.restart(original);
  const seen = await waitFor(
    async () => {
      const r = await fetch(`${original.clientAddress}/admin/members`);
      const ms = ((await r.json()) as { members: { id: string; peerAddress: string | null }[] }).members;
      return ms.find((m) => m.id === n4.id);
    },
    'the restarted member to list n4',
    30_000,
  );
  expect(seen.peerAddress).toBe(n4.peerAddress);
  await client.put('after-restart', 'yes');
  await converged(cluster.nodes.filter((n) => n.proc !== null));
});
