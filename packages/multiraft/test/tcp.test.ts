/**
 * Real sockets and real LMDB files: three hosts on 127.0.0.1, 50 groups each, one
 * `TcpGroupTransport` (one connection per peer and direction) and one `LmdbGroupStore`
 * per host.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '@quorate/raft';
import { LmdbGroupStore } from '@quorate/storage-lmdb';
import { TcpGroupTransport, TcpTransport } from '@quorate/transport-tcp';
import { describe, expect, it } from 'vitest';
import { MultiRaftHost } from '../src/index.js';
import { bytes, Register, until } from './helpers.js';

const GROUPS = 50;
const secret = 'multiraft-test-secret-0123456789';

interface Member {
  id: NodeId;
  transport: TcpGroupTransport;
  store: LmdbGroupStore;
  host: MultiRaftHost;
}

async function cluster(dir: string, ids: NodeId[], quiesceAfterMs: number): Promise<Member[]> {
  const transports = ids.map(
    (id) =>
      new TcpGroupTransport({ id, clusterId: 'mr', secret, peers: { [id]: '127.0.0.1:0' }, logger: null }),
  );
  const addrs = await Promise.all(transports.map((t) => t.listen()));
  const peers = Object.fromEntries(ids.map((id, i) => [id, addrs[i]!]));
  for (const t of transports) t.setPeers(peers);
  const members: Member[] = [];
  for (const [i, id] of ids.entries()) {
    const store = await LmdbGroupStore.open({ dir: join(dir, id), clusterId: 'mr', nodeId: id });
    const host = new MultiRaftHost({ id, transport: transports[i]!, quiesceAfterMs });
    await host.start();
    members.push({ id, transport: transports[i]!, store, host });
  }
  await Promise.all(
    members.flatMap((m) =>
      Array.from({ length: GROUPS }, (_, g) => {
        const log = m.store.group(g);
        return m.host.addGroup({
          group: g,
          storage: log,
          stateMachine: new Register(),
          members: ids,
          snapshots: { store: log.snapshots, everyEntries: 50 },
        });
      }),
    ),
  );
  return members;
}

const leaderOf = (ms: Member[], g: number) =>
  ms.find((m) => m.host.group(g)?.isLeader)?.host.group<number>(g);

describe('MultiRaftHost over TCP and LMDB', () => {
  it('3 hosts x 50 groups: elections, writes, quiescence, and failover when a host dies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorate-multiraft-'));
    const ids = ['a', 'b', 'c'];
    const ms = await cluster(dir, ids, 1500);
    try {
      const t0 = performance.now();
      await until(
        'a leader in every group',
        () => Array.from({ length: GROUPS }, (_, g) => g).every((g) => leaderOf(ms, g)),
        20_000,
      );
      console.log(
        `every one of ${GROUPS} groups has a leader after ${(performance.now() - t0).toFixed(0)} ms`,
      );
      const counts = ids.map((id) => ms.find((m) => m.id === id)!.host.stats().leaders);
      console.log(`leaders per host: ${counts.join(' / ')}`);

      // Writes to every group commit; their batches share LMDB commits.
      const before = ms.map((m) => m.store.storageStats());
      await Promise.all(
        Array.from({ length: GROUPS }, (_, g) =>
          leaderOf(ms, g)!
            .propose(bytes(`v${g}`))
            .then((n) => expect(n).toBe(1)),
        ),
      );
      const st = ms.map((m, i) => ({
        batches: m.store.storageStats().batches - before[i]!.batches,
        commits: m.store.storageStats().commits - before[i]!.commits,
      }));
      console.log(
        `a write to each of ${GROUPS} groups: LMDB batches/commits per host ${st.map((s) => `${s.batches}/${s.commits}`).join(', ')}`,
      );
      expect(st.every((s) => s.commits < s.batches)).toBe(true);

      // Awake (quiescence held off for 1.5 s): every group heartbeats.
      const rate = async (ms0: number) => {
        const a = ms.reduce((n, m) => n + m.host.stats().raftMessagesSent, 0);
        const h = ms.reduce((n, m) => n + m.host.stats().hostMessagesSent, 0);
        await new Promise((r) => setTimeout(r, ms0));
        return {
          raft: ((ms.reduce((n, m) => n + m.host.stats().raftMessagesSent, 0) - a) * 1000) / ms0,
          host: ((ms.reduce((n, m) => n + m.host.stats().hostMessagesSent, 0) - h) * 1000) / ms0,
        };
      };
      const awake = await rate(800);
      await until(
        'every group quiesced on every host',
        () => ms.every((m) => m.host.stats().quiesced === GROUPS),
        10_000,
      );
      // Idle: measured over a window in which no group woke (on a loaded machine a late
      // liveness message can make a host wake a peer's groups; they quiesce again).
      let woke = 0;
      for (const m of ms) m.host.events.on('woke', () => woke++);
      let idle = { raft: -1, host: 0 };
      for (let attempt = 0; attempt < 10; attempt++) {
        await until(
          'every group quiesced on every host',
          () => ms.every((m) => m.host.stats().quiesced === GROUPS),
          10_000,
        );
        const w = woke;
        idle = await rate(1000);
        if (woke === w) break;
        idle = { raft: -1, host: 0 };
      }
      console.log(
        `messages/s over all hosts: awake ${awake.raft.toFixed(0)} Raft + ${awake.host.toFixed(0)} host; quiesced ${idle.raft.toFixed(0)} Raft + ${idle.host.toFixed(0)} host`,
      );
      expect(awake.raft).toBeGreaterThan(1000);
      expect(idle.raft).toBe(0);
      expect(idle.host).toBeLessThan(200);

      // The host leading the most groups dies: each of its groups gets a new leader.
      const victim = ms.reduce((a, b) => (a.host.stats().leaders >= b.host.stats().leaders ? a : b));
      const led = Array.from({ length: GROUPS }, (_, g) => g).filter((g) => victim.host.group(g)!.isLeader);
      const rest = ms.filter((m) => m !== victim);
      const t1 = performance.now();
      await victim.host.stop();
      await until(
        'a new leader for every group the dead host led',
        () => led.every((g) => rest.some((m) => m.host.group(g)!.isLeader)),
        10_000,
        5,
      );
      console.log(
        `${led.length} quiesced groups led by the dead host have new leaders ${(performance.now() - t1).toFixed(0)} ms later`,
      );
      for (const g of led) await expect(leaderOf(rest, g)!.propose(bytes('after'))).resolves.toBe(2);
    } finally {
      await Promise.all(ms.map((m) => m.host.stop()));
      await Promise.all(ms.map((m) => m.store.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a single-group member and a multi-group host refuse each other with VERSION_MISMATCH', async () => {
    const warnings: string[] = [];
    const logger = { warn: (m: string) => warnings.push(m), info: () => {} };
    const single = new TcpTransport({
      id: 's',
      clusterId: 'mr',
      secret,
      peers: { s: '127.0.0.1:0' },
      logger,
    });
    const multi = new TcpGroupTransport({
      id: 'm',
      clusterId: 'mr',
      secret,
      peers: { m: '127.0.0.1:0' },
      logger,
    });
    const [sa, ma] = await Promise.all([single.listen(), multi.listen()]);
    single.setPeers({ s: sa, m: ma });
    multi.setPeers({ s: sa, m: ma });
    await single.start({ onMessage: () => {} });
    await multi.start({ onMessage: () => {}, onHostMessage: () => {} });
    multi.sendHost('s', { type: 'alive', incarnation: 1 });
    single.send({ type: 'timeoutNow', from: 's', to: 'm', term: 1 });
    try {
      await until(
        'both refusals logged',
        () => warnings.filter((w) => w.includes('VERSION_MISMATCH')).length >= 2,
        5000,
      );
      expect(warnings.join('\n')).toMatch(/protocol version 1 \(one Raft group per connection\)/);
      expect(warnings.join('\n')).toMatch(/protocol version 2 \(many Raft groups per connection/);
      expect(single.stats().messagesReceived).toBe(0);
      expect(multi.stats().messagesReceived).toBe(0);
    } finally {
      await single.close();
      await multi.close();
    }
  });
});
