/**
 * The reference node end to end: real `quorate` processes, real LMDB files, real sockets
 * on 127.0.0.1, for each transport.
 */
import { spawnSync } from 'node:child_process';
import { QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';

for (const transport of ['tcp', 'ws'] as const) {
  describe(`a 3-node cluster over ${transport}`, () => {
    let cluster: LocalCluster;
    let client: QuorateClient;
    beforeAll(async () => {
      cluster = await LocalCluster.start({ n: 3, transport });
      client = new QuorateClient({ endpoints: cluster.endpoints, timeoutMs: 15_000 });
    });
    afterAll(async () => {
      await client?.close();
      await cluster?.stop();
    });

    it('forms, and a follower names the leader when asked to write', async () => {
      const leader = (await cluster.waitForLeader(20_000))!;
      const follower = cluster.nodes.find((n) => n !== leader)!;
      // A follower learns who leads from the leader's first message, a moment after the
      // leader itself knows: until then it answers 503 NO_LEADER, which is also right.
      await waitFor(
        async () =>
          ((await (await fetch(`${follower.clientAddress}/health`)).json()) as { leaderId: string | null })
            .leaderId === leader.id,
        'the follower to know the leader',
        20_000,
      );
      const r = await fetch(`${follower.clientAddress}/kv/x`, { method: 'PUT', body: '1' });
      expect(r.status).toBe(421);
      expect(r.headers.get('x-quorate-leader')).toBe(leader.clientAddress);
      expect(((await r.json()) as { error: { leaderId: string } }).error.leaderId).toBe(leader.id);
    });

    it('kill -9 of the leader: a new leader, writes continue, the old one rejoins and catches up', async () => {
      for (let i = 0; i < 50; i++) await client.put(`before-${i}`, String(i));
      const leader = (await cluster.waitForLeader(20_000))!;
      cluster.kill(leader);
      const next = await waitFor(
        async () => {
          const l = await cluster.leader();
          return l && l !== leader ? l : null;
        },
        'a new leader',
        20_000,
      );
      for (let i = 0; i < 50; i++) await client.put(`after-${i}`, String(i));
      await cluster.restart(leader);
      await waitFor(
        async () => {
          const r = await fetch(`${leader.clientAddress}/kv/after-49?stale=true`).catch(() => null);
          return r?.status === 200;
        },
        'the restarted node to catch up',
        30_000,
      );
      expect(next.id).not.toBe(leader.id);
    });

    it('each node process serves Prometheus metrics that promtool accepts, fed by its real storage and transport', async () => {
      const leader = (await cluster.waitForLeader(20_000))!;
      for (const n of cluster.nodes) {
        const r = await fetch(`${n.clientAddress}/metrics`);
        expect(r.status).toBe(200);
        const text = await r.text();
        const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        expect(check.error, 'promtool must be installed (Debian package prometheus)').toBeUndefined();
        expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
        const value = (name: string) => {
          const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
          return m ? Number(m[1]) : Number.NaN;
        };
        expect(value('quorate_raft_is_leader')).toBe(n === leader ? 1 : 0);
        expect(value('quorate_raft_commit_index')).toBeGreaterThan(0);
        // Fed by the node's LMDB store and its network transport, not only by the core.
        expect(value('quorate_storage_writes_total')).toBeGreaterThan(0);
        expect(text).toMatch(/^quorate_transport_messages_sent_total\{[^}]*\} [1-9]/m);
      }
    });

    it('every replica ends with the same state (hash at the same applied index)', async () => {
      const hashes = await waitFor(
        async () => {
          const vs = await Promise.all(
            cluster.nodes.map(
              async (n) =>
                (await fetch(`${n.clientAddress}/admin/state-hash`)).json() as Promise<{
                  appliedIndex: number;
                  hash: string;
                }>,
            ),
          );
          return new Set(vs.map((v) => v.appliedIndex)).size === 1 ? vs : null;
        },
        'replicas to converge',
        20_000,
      );
      expect(new Set(hashes.map((h) => h.hash)).size).toBe(1);
    });
  });
}
