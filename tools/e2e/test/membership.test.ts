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
  let changesFrom = 0n;
  let changesTo = 0n;
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
    changesFrom = process.hrtime.bigint();
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
    // First the leader, itself: moved off n3 (the clients' anchor) if it is there, and the
    // removal sent to the leader, so it commits its own removal and steps down.
    const removedLeader = await waitFor(
      async (): Promise<SpawnedNode | null> => {
        const l = await cluster.leader();
        if (!l) return null;
        if (l === n3) {
          await fetch(`${n3.clientAddress}/admin/transfer-leadership`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ to: n1.id }),
            signal: AbortSignal.timeout(5000),
          });
          return null;
        }
        const r = await fetch(`${l.clientAddress}/admin/members/${l.id}`, {
          method: 'DELETE',
          signal: AbortSignal.timeout(5000),
        });
        return r.status === 200 || r.status === 404 ? l : null;
      },
      'the leader to remove itself',
      60_000,
    );
    console.log(`membership: ${removedLeader.id} removed itself as the leader`);
    // Then another original (not n3).
    const other = [n1, n2].find((n) => n !== removedLeader)!;
    const victims = [removedLeader, other];
    for (const v of victims) {
      if (v === other) await remove(v.id);
      await waitFor(
        async () => !(await members(n3)).some((m) => m.id === v.id),
        `${v.id} to be gone`,
        30_000,
      );
      await waitFor(
        async () => {
          const l = await cluster.leader();
          return l !== null && l !== v;
        },
        `a leader other than the removed ${v.id}`,
        30_000,
      );
      await cluster.stopNode(v);
    }
    changesTo = process.hrtime.bigint();
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
  // "Under load": writes were acknowledged while the members changed, not only around it.
  const during = history.events.filter(
    (e) => e.type === 'ok' && e.f === 'put' && e.time > changesFrom && e.time < changesTo,
  );
  expect(during.length).toBeGreaterThan(0);
  expect(result.stats.ops).toBeGreaterThan(0);
});
