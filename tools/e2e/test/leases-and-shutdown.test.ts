/** Leases across a Raft failover, and a graceful stop that hands leadership over. */
import { QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from './helpers.js';

let cluster: LocalCluster;
let client: QuorateClient;
beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--log.level', 'info'] });
  client = new QuorateClient({ endpoints: cluster.endpoints, timeoutMs: 15_000 });
});
afterAll(async () => {
  await client?.close();
  await cluster?.stop();
});

it("a lease holder's lease survives a leader failover, and expires once it stops renewing", async () => {
  const lease = await client.acquireLease('svc', 'holder-1', 3000);
  const leader = (await cluster.waitForLeader(20_000))!;
  cluster.kill(leader);
  await waitFor(
    async () => {
      const l = await cluster.leader();
      return l && l !== leader ? l : null;
    },
    'a new leader',
    20_000,
  );
  // Renewals keep it, through the new leader, with the same token.
  let lastRenewalSent = 0;
  for (let i = 0; i < 3; i++) {
    lastRenewalSent = performance.now();
    expect((await client.renewLease('svc', 'holder-1', lease.token)).token).toBe(lease.token);
    await new Promise((r) => setTimeout(r, 500));
  }
  await cluster.restart(leader);
  // The holder stops renewing: the lease goes, and never before its TTL has passed since
  // the holder sent its last renewal (the promise holders rely on; the time the restart
  // above takes on a loaded machine is no part of it).
  await waitFor(async () => (await client.getLease('svc')) === null, 'the lease to expire', 15_000);
  expect(performance.now() - lastRenewalSent).toBeGreaterThanOrEqual(3000);
  const next = await client.acquireLease('svc', 'holder-2', 3000);
  expect(next.token).toBeGreaterThan(lease.token);
});

it('SIGTERM on the leader hands leadership over before it exits', async () => {
  const leader = (await cluster.waitForLeader(20_000))!;
  const term = ((await (await fetch(`${leader.clientAddress}/health`)).json()) as { term: number }).term;
  leader.proc!.kill('SIGTERM');
  await waitFor(() => leader.proc === null, 'the leader to exit', 15_000);
  expect(leader.log.join('\n')).toMatch(/handed leadership over before stopping/);
  const next = (await cluster.waitForLeader(20_000))!;
  const h = (await (await fetch(`${next.clientAddress}/health`)).json()) as { term: number };
  // A hand-over is one election (TimeoutNow): the term moves by exactly one.
  expect(h.term).toBe(term + 1);
  await cluster.restart(leader);
});
