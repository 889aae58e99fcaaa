/**
 * Membership changes end to end, under load: a 3-node cluster grows to 5 with
 * `quorate start --join`, then two of the original members are removed — the leader among
 * them — while clients keep writing and reading. The history is checked afterwards.
 */
import { HistoryFile, LocalCluster, run, type SpawnedNode } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkHistory, waitFor } from './helpers.js';

let cluster: LocalCluster;
beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--log.level', 'info'] });
});
afterAll(async () => {
  await cluster?.stop();
});

interface Members {
  members: { id: string; role: 'voter' | 'learner' }[];
}

async function members(via: SpawnedNode): Promise<Members['members']> {
  const r = await fetch(`${via.clientAddress}/admin/members`, { signal: AbortSignal.timeout(2000) });
  return ((await r.json()) as Members).members;
}

async function remove(id: string): Promise<void> {
  await waitFor(
    async () => {
      const leader = await cluster.leader();
      if (!leader) return false;
      const r = await fetch(`${leader.clientAddress}/admin/members/${id}`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(5000),
      });
      return r.status === 200 || r.status === 404;
    },
    `the removal of ${id}`,
    30_000,
  );
}

it('grows 3 → 5 and removes two originals including the leader, under load, losing nothing', async () => {
  const [n1, n2, n3] = cluster.nodes as [SpawnedNode, SpawnedNode, SpawnedNode];
  const history = new HistoryFile(null, true);
  const ac = new AbortController();
  const load = run({
    endpoints: [n1.clientAddress, n2.clientAddress, n3.clientAddress],
    clients: 8,
    durationMs: 120_000,
    workload: { mode: 'mixed', readRatio: 0.5, keys: 50, zipf: 0, valueSize: 32, seed: 7 },
    timeoutMs: 10_000,
    history,
    signal: ac.signal,
  });
  try {
    await waitFor(() => history.events.length > 200, 'load to start', 20_000);
    const n4 = await cluster.join(n3);
    await waitFor(
      async () => (await members(n3)).some((m) => m.id === n4.id && m.role === 'voter'),
      'n4 to become a voter',
      60_000,
    );
    const n5 = await cluster.join(n3);
    await waitFor(
      async () => (await members(n3)).some((m) => m.id === n5.id && m.role === 'voter'),
      'n5 to become a voter',
      60_000,
    );
    // Remove the leader if it is an original, and another original (never n3, the
    // clients' anchor), until two originals are gone.
    const leader = (await cluster.waitForLeader(20_000))!;
    const victims = [leader, n1, n2].filter((n, i, a) => n !== n3 && a.indexOf(n) === i).slice(0, 2);
    for (const v of victims) {
      await remove(v.id);
      await waitFor(
        async () => !(await members(n3)).some((m) => m.id === v.id),
        `${v.id} to be gone`,
        30_000,
      );
      await cluster.stopNode(v);
    }
    const left = await members(n3);
    expect(left.map((m) => m.id).sort()).toEqual(
      ['n1', 'n2', 'n3', 'n4', 'n5'].filter((id) => !victims.some((v) => v.id === id)).sort(),
    );
    expect(left.every((m) => m.role === 'voter')).toBe(true);
    const writesBefore = history.events.length;
    await waitFor(
      () => history.events.length > writesBefore + 200,
      'load to go on after the removals',
      30_000,
    );
  } finally {
    ac.abort();
  }
  const result = await load;
  await history.close();
  const remaining = cluster.nodes.filter((n) => n.proc !== null);
  expect(remaining).toHaveLength(3);
  // Every replica converges on the same state...
  await waitFor(
    async () => {
      const hs = await Promise.all(
        remaining.map(
          async (n) =>
            (await (await fetch(`${n.clientAddress}/admin/state-hash`)).json()) as {
              appliedIndex: number;
              hash: string;
            },
        ),
      );
      return new Set(hs.map((h) => `${h.appliedIndex}:${h.hash}`)).size === 1;
    },
    'the remaining replicas to converge',
    30_000,
  );
  // ...and what the clients saw is linearizable, with every acknowledged write present.
  const verdict = await checkHistory(
    history,
    remaining.map((n) => n.clientAddress),
  );
  expect(verdict.linearizable).toBe(true);
  expect(verdict.lostWrites).toBe(0);
  expect(result.stats.ops).toBeGreaterThan(1000);
});
