import { afterEach, describe, expect, it } from 'vitest';
import {
  InvalidConfigError,
  MemoryNetwork,
  MemoryStorage,
  NotLeaderError,
  RaftError,
  RaftNode,
  type RaftNodeEvent,
} from '../src/index.js';
import { nextByCount } from '../src/runtime/snapshotter.js';
import { cluster, enc, KV, type TestCluster, waitFor } from './helpers.js';

let current: TestCluster | null = null;
afterEach(async () => {
  await current?.stopAll();
  current = null;
});

async function elected(n = 3, extra = {}) {
  current = await cluster(n, extra);
  const leader = await waitFor(() => current!.leader(), 'a leader');
  return { c: current, leader };
}

describe('RaftNode', () => {
  it('elects one leader, replicates a write and applies it everywhere', async () => {
    const { c, leader } = await elected();
    expect([...c.nodes.values()].filter((n) => n.isLeader)).toHaveLength(1);
    expect(await leader.propose(enc('a=1'))).toBeNull();
    expect(await leader.propose(enc('a=2'))).toBe('1');
    await waitFor(
      () => [...c.kvs.values()].every((kv) => kv.data.get('a') === '2'),
      'every replica to apply',
    );
  });

  it('a follower refuses a write with the leader id and address', async () => {
    const { c, leader } = await elected();
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    await waitFor(() => follower.leaderId === leader.id, 'the follower to know the leader');
    const err = await follower.propose(enc('x=1')).catch((e) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err).toMatchObject({ leaderId: leader.id, leaderAddress: `http://${leader.id}.test` });
  });

  it('reads are linearizable on the leader and on followers', async () => {
    const { c, leader } = await elected();
    await leader.propose(enc('k=v1'));
    for (const [id, node] of c.nodes) {
      await node.read();
      expect(c.kvs.get(id)!.data.get('k')).toBe('v1');
    }
  });

  it('waitForLeader: resolves with the leader, waits out an excluded one, times out, and fails on stop', async () => {
    current = await cluster(3);
    const c = current;
    const [a] = [...c.nodes.values()];
    const id = await a!.waitForLeader({ timeoutMs: 10_000 });
    expect(c.nodes.has(id)).toBe(true);
    // A member other than the leader waits out the leader it knows.
    const b = [...c.nodes.values()].find((n) => n.id !== id)!;
    await waitFor(() => b.leaderId === id, 'b to know the leader');
    const other = b.waitForLeader({ excluding: id, timeoutMs: 10_000 });
    await c.nodes.get(id)!.stop();
    const next = await other;
    expect(next).not.toBe(id);
    // A lone node knows no leader: its wait times out, with TIMEOUT.
    const net = new MemoryNetwork();
    const lonely = new RaftNode({
      id: 'x1',
      members: ['x1', 'x2', 'x3'],
      storage: new MemoryStorage(),
      transport: net.transport('x1'),
      stateMachine: new KV(),
    });
    await lonely.start();
    const err = await lonely.waitForLeader({ timeoutMs: 200 }).catch((e) => e);
    expect(err).toBeInstanceOf(RaftError);
    expect(err.code).toBe('TIMEOUT');
    const pending = lonely.waitForLeader({ timeoutMs: 10_000 }).catch((e) => e);
    await lonely.stop();
    expect((await pending).code).toBe('STOPPED');
    expect((await lonely.waitForLeader().catch((e) => e)).code).toBe('STOPPED');
  });

  it('a single-node cluster elects itself at once', async () => {
    const net = new MemoryNetwork();
    const node = new RaftNode({
      id: 'solo',
      storage: new MemoryStorage(),
      transport: net.transport('solo'),
      stateMachine: new KV(),
      members: ['solo'],
    });
    const t0 = performance.now();
    await node.start();
    await waitFor(() => node.isLeader, 'the single node to lead', 2000);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await node.propose(enc('a=1'))).toBeNull();
    await node.stop();
  });

  it('elects a new leader when the leader stops, and writes go on', async () => {
    const { c, leader } = await elected();
    await leader.propose(enc('before=1'));
    await leader.stop();
    const next = await waitFor(
      () => [...c.nodes.values()].find((n) => n.isLeader && n !== leader),
      'a new leader',
    );
    expect(next.term).toBeGreaterThan(1);
    await next.propose(enc('after=1'));
    const kv = c.kvs.get(next.id)!;
    expect(kv.data.get('before')).toBe('1');
    expect(kv.data.get('after')).toBe('1');
  });

  it('a restarted node catches up from its storage and the leader', async () => {
    const { c, leader } = await elected();
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    await follower.stop();
    for (let i = 0; i < 20; i++) await leader.propose(enc(`k${i}=${i}`));
    await c.start(follower.id);
    await waitFor(() => c.kvs.get(follower.id)!.data.get('k19') === '19', 'the restarted node to catch up');
  });

  it('transfers leadership on request, and on a graceful stop', async () => {
    const { c, leader } = await elected();
    await leader.propose(enc('a=1'));
    const target = c.ids.find((id) => id !== leader.id)!;
    await leader.transferLeadership(target);
    await waitFor(() => c.nodes.get(target)!.isLeader, `${target} to lead`);
    const second = c.nodes.get(target)!;
    await second.stop({ transferLeadership: true });
    const third = await waitFor(
      () => [...c.nodes.values()].find((n) => n.isLeader && n !== second),
      'a third leader',
    );
    expect(third.id).not.toBe(target);
  });

  it('a proposal that cannot commit times out with an unknown outcome', async () => {
    const { c, leader } = await elected(3, { requestTimeoutMs: 300 });
    c.net.isolate(leader.id, c.ids);
    const err = await leader.propose(enc('lost=1')).catch((e) => e);
    expect(err).toBeInstanceOf(RaftError);
    expect(['TIMEOUT', 'NOT_LEADER']).toContain(err.code);
  });

  it('reports elections, persistence and applies as events', async () => {
    current = await cluster(3);
    const seen: RaftNodeEvent['type'][] = [];
    for (const n of current.nodes.values()) n.events.onAny((e) => seen.push(e.type));
    const leader = await waitFor(() => current!.leader(), 'a leader');
    await leader.propose(enc('a=1'));
    await waitFor(() => seen.includes('appliedBatch'), 'an apply event');
    for (const t of [
      'electionStarted',
      'electionWon',
      'leaderChanged',
      'persisted',
      'commit',
      'electionDuration',
    ] as const) {
      expect(seen).toContain(t);
    }
  });

  it('stops on a storage failure, failing what is pending, rather than continue unsure', async () => {
    const { c, leader } = await elected();
    const st = c.storages.get(leader.id)!;
    const original = st.persist.bind(st);
    st.persist = () => Promise.reject(new Error('disk on fire'));
    const err = await leader.propose(enc('x=1')).catch((e) => e);
    expect(err).toBeInstanceOf(RaftError);
    await waitFor(() => !leader.status().running, 'the node to stop');
    const again = await leader.propose(enc('y=1')).catch((e) => e);
    expect(again.code).toBe('STORAGE_FAILED');
    st.persist = original;
  });

  it('rejects bad timing with a clear configuration error', async () => {
    const node = new RaftNode({
      id: 'n1',
      storage: new MemoryStorage(),
      transport: new MemoryNetwork().transport('n1'),
      stateMachine: new KV(),
      members: ['n1'],
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 150,
    });
    const err = await node.start().catch((e) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err.message).toContain('electionTimeoutMs (150) must be at least twice heartbeatIntervalMs (100)');
  });
});

describe('RaftNode membership', () => {
  it('a node joins as a learner, is promoted, and the old leader is removed', async () => {
    const { c, leader } = await elected();
    await leader.propose(enc('a=1'));
    // A fresh node with an empty store and no members: it learns everything from the log.
    const kv = new KV();
    const joiner = new RaftNode({
      id: 'n4',
      storage: new MemoryStorage(),
      transport: c.net.transport('n4'),
      stateMachine: kv,
    });
    c.nodes.set('n4', joiner as never);
    await joiner.start();
    await leader.changeMembership({ kind: 'addLearner', node: 'n4' });
    await waitFor(() => kv.data.get('a') === '1', 'the learner to catch up');
    const conf = await leader.changeMembership({ kind: 'addVoter', node: 'n4' });
    expect([...conf.voters].sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    await leader.changeMembership({ kind: 'remove', node: leader.id });
    const next = await waitFor(
      () => [...c.nodes.values()].find((n) => n.isLeader && n !== leader),
      'a new leader',
    );
    expect(next.status().voters).not.toContain(leader.id);
    await next.propose(enc('b=2'));
    await waitFor(() => kv.data.get('b') === '2', 'the promoted node to apply');
  });
});

describe('RaftNode snapshots', () => {
  const snapshots = { store: null as never, everyEntries: 50, keepEntries: 10 };

  it('compacts behind snapshots, and a follower that fell behind installs one', async () => {
    const { c, leader } = await elected(3, { snapshots });
    const lagging = [...c.nodes.values()].find((n) => !n.isLeader)!;
    c.net.isolate(lagging.id, c.ids);
    const events: string[] = [];
    leader.events.onAny((e) => {
      if (e.type === 'snapshotTaken' || e.type === 'snapshotSent') events.push(e.type);
    });
    for (let i = 0; i < 200; i++) await leader.propose(enc(`k${i}=${i}`));
    await waitFor(() => events.includes('snapshotTaken'), 'a snapshot on the leader');
    await waitFor(() => leader.status().firstIndex > 100, 'compaction');
    c.net.heal();
    await waitFor(() => c.kvs.get(lagging.id)!.data.get('k199') === '199', 'the follower to catch up');
    expect(c.kvs.get(lagging.id)!.restored).toBe(1);
    expect(events).toContain('snapshotSent');
    expect(c.kvs.get(lagging.id)!.data).toEqual(c.kvs.get(leader.id)!.data);
  });

  it('takes a snapshot by size too: everyBytes of entry data since the last one', async () => {
    const { leader } = await elected(3, {
      snapshots: { store: null as never, everyEntries: 1_000_000_000, everyBytes: 4000, keepEntries: 2 },
    });
    const taken: number[] = [];
    leader.events.onAny((e) => {
      if (e.type === 'snapshotTaken') taken.push(e.index);
    });
    const value = 'v'.repeat(200);
    for (let i = 0; i < 10; i++) await leader.propose(enc(`k${i}=${value}`));
    expect(taken).toEqual([]); // about 2 KB so far
    for (let i = 10; i < 30; i++) await leader.propose(enc(`k${i}=${value}`));
    await waitFor(() => taken.length > 0, 'a snapshot once 4000 bytes were applied');
  });

  it('with phaseEntries, snapshots by count fall at k × everyEntries + phase', async () => {
    const { leader } = await elected(3, {
      snapshots: { store: null as never, everyEntries: 50, keepEntries: 10, phaseEntries: 20 },
    });
    const taken: number[] = [];
    leader.events.onAny((e) => {
      if (e.type === 'snapshotTaken') taken.push(e.index);
    });
    for (let i = 0; i < 200; i++) await leader.propose(enc(`k${i}=${i}`));
    await waitFor(() => taken.length >= 3, 'three snapshots');
    // One proposal at a time: each batch applies one entry, so each lands on its index.
    for (const at of taken) expect(at % 50).toBe(20);
  });

  it('nextByCount: every entries after the last, or the next phase point at least every/2 on', () => {
    expect(nextByCount(0, 100, undefined)).toBe(100);
    expect(nextByCount(130, 100, undefined)).toBe(230);
    expect(nextByCount(0, 100, 0)).toBe(100);
    expect(nextByCount(0, 100, 66)).toBe(66);
    expect(nextByCount(0, 100, 33)).toBe(133);
    expect(nextByCount(133, 100, 33)).toBe(233);
    // After a snapshot off the phase (one installed from the leader, or by size): back on it.
    expect(nextByCount(190, 100, 33)).toBe(333);
    expect(nextByCount(160, 100, 33)).toBe(233);
    expect(nextByCount(0, 100, 250)).toBe(50);
    expect(nextByCount(0, 100, Number.NaN)).toBe(100);
  });

  it('a restarted node restores its snapshot and applies the log tail', async () => {
    const { c, leader } = await elected(3, { snapshots });
    const f = [...c.nodes.values()].find((n) => !n.isLeader)!;
    for (let i = 0; i < 120; i++) await leader.propose(enc(`k${i}=${i}`));
    await waitFor(
      () => f.status().firstIndex > 1 && c.kvs.get(f.id)!.data.get('k119') === '119',
      'a snapshot on the follower',
    );
    await f.stop();
    await c.start(f.id);
    const kv = c.kvs.get(f.id)!;
    await waitFor(() => kv.data.get('k119') === '119', 'the restarted node to be current');
    expect(kv.restored).toBe(1);
    expect(kv.data.size).toBe(120);
  });
});
