/**
 * Sessions, partition sets and `PartitionMember` against a real 3-node cluster (separate
 * `quorate` processes, real HTTP): leaders spread as members join, a member cut off from
 * the cluster stops acting before its partitions move on, a restarted member waits for
 * its old session to lapse, an eligible-set change carries a leadership on to the new
 * epoch while a move ends it, and stale epochs are refused, typed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  HttpWire,
  PartitionMember,
  PartitionMemberConfigError,
  type PartitionMemberEvent,
  QuorateClient,
  RejectedError,
  StaleEpochError,
  type Wire,
  WireError,
  type WireRequest,
} from '../src/index.js';
import { type RealCluster, startCluster } from './real-cluster.js';

let cluster: RealCluster;
let admin: QuorateClient;
beforeAll(async () => {
  cluster = await startCluster(3);
  admin = new QuorateClient({ endpoints: cluster.endpoints, timeoutMs: 5000 });
}, 90_000);
afterAll(async () => {
  await admin?.close();
  await cluster?.stop();
});

async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The real HTTP wire, with a switch that cuts this client off, and one that holds its keep-alives. */
class TestWire implements Wire {
  cut = false;
  private held: { promise: Promise<void>; release: () => void } | null = null;
  private readonly inner = new HttpWire();
  request(req: WireRequest) {
    if (this.cut) return Promise.reject(new WireError('cut off from the cluster', false, false));
    if (this.held && req.path.endsWith('/keepalive'))
      return this.held.promise.then(() => this.inner.request(req));
    return this.inner.request(req);
  }
  holdKeepAlives(): () => void {
    let release = () => {};
    const promise = new Promise<void>((r) => {
      release = r;
    });
    this.held = { promise, release };
    return () => {
      this.held = null;
      release();
    };
  }
  close() {
    return this.inner.close();
  }
}

interface Instance {
  member: PartitionMember;
  wire: TestWire;
  events: { at: number; e: PartitionMemberEvent }[];
  /** When each leadership (partition@leaderEpoch) was taken and when its signal aborted. */
  spans: { partition: number; leaderEpoch: number; from: number; abortedAt: number | null }[];
}
const live: { member: PartitionMember; client: QuorateClient; wire: TestWire }[] = [];
afterEach(async () => {
  for (const x of live.splice(0)) {
    x.wire.cut = false;
    await x.member.stop();
    await x.client.close();
  }
});

function instance(
  set: string,
  id: string,
  ttlMs = 1000,
  keepAliveEveryMs = 250,
  opts: { watch?: boolean } = {},
): Instance {
  const wire = new TestWire();
  const client = new QuorateClient({ endpoints: cluster.endpoints, wire, timeoutMs: 2000 });
  if (opts.watch === false) {
    // A watch that never says anything: the member learns only from its keep-alive answers.
    client.watch = async function* ({ signal } = {}) {
      await new Promise((r) => signal?.addEventListener('abort', r, { once: true }));
    };
  }
  const member = new PartitionMember({ cluster: client, set, member: id, ttlMs, keepAliveEveryMs });
  const x: Instance = { member, wire, events: [], spans: [] };
  member.on((e) => {
    const at = performance.now();
    x.events.push({ at, e });
    if (e.type === 'leading') {
      const span = {
        partition: e.partition,
        leaderEpoch: e.leaderEpoch,
        from: at,
        abortedAt: null as number | null,
      };
      x.spans.push(span);
      e.signal.addEventListener('abort', () => {
        span.abortedAt = performance.now();
      });
    }
  });
  live.push({ member, client, wire });
  return x;
}

const ledBy = (x: Instance) => [...x.member.leading().keys()].sort((a, b) => a - b);

/** The events of one type an instance has had, for one partition. */
function eventsOf<T extends PartitionMemberEvent['type']>(x: Instance, type: T, partition: number) {
  return x.events
    .map(({ e }) => e)
    .filter((e): e is Extract<PartitionMemberEvent, { type: T }> => e.type === type)
    .filter((e) => !('partition' in e) || e.partition === partition);
}

/** Partition changes of `set` as the cluster commits them, with when this process heard of each. */
function observe(set: string) {
  const seen: { at: number; partition: number; leader: string | null; epoch: number; leaderEpoch: number }[] =
    [];
  const ctrl = new AbortController();
  let ready = false;
  const done = (async () => {
    try {
      for await (const b of admin.watch({
        partitions: set,
        signal: ctrl.signal,
        onProgress: () => (ready = true),
      }))
        for (const c of b.changes)
          if (c.type === 'partition' && c.set === set)
            seen.push({
              at: performance.now(),
              partition: c.partition,
              leader: c.leader,
              epoch: c.epoch,
              leaderEpoch: c.leaderEpoch,
            });
    } catch {
      // stopped
    }
  })();
  return {
    seen,
    live: () => waitFor(() => ready, 'the watch to be live'),
    stop: async () => {
      ctrl.abort();
      await done;
    },
  };
}

describe('PartitionMember', () => {
  it('refuses a keep-alive interval that is not well under the TTL', () => {
    const client = new QuorateClient({ endpoints: ['http://127.0.0.1:1'] });
    const base = { cluster: client, set: 's', member: 'a', ttlMs: 1000 };
    expect(() => new PartitionMember({ ...base, keepAliveEveryMs: 400 })).toThrow(PartitionMemberConfigError);
    expect(() => new PartitionMember({ ...base, set: 'no spaces', keepAliveEveryMs: 200 })).toThrow(/set/);
    expect(() => new PartitionMember({ ...base, keepAliveEveryMs: 200, safetyMarginMs: 600 })).toThrow(
      /safetyMarginMs/,
    );
  });

  it('two members of a set of 4 partitions (RF 2) lead 2 each, at the epochs the cluster holds', async () => {
    const set = 'spread';
    const created = await admin.createPartitionSet({
      name: set,
      members: ['a', 'b'],
      partitions: 4,
      replicationFactor: 2,
    });
    expect(created.partitions.map((p) => p.replicas)).toEqual([
      ['a', 'b'],
      ['b', 'a'],
      ['a', 'b'],
      ['b', 'a'],
    ]);
    expect(created.partitions.every((p) => p.leader === null && p.epoch === 0 && p.leaderEpoch === 0)).toBe(
      true,
    );
    const a = instance(set, 'a');
    const b = instance(set, 'b');
    a.member.start();
    // Alone, a leads every partition it is eligible for: all four.
    await waitFor(() => a.member.leading().size === 4, 'a to lead all four');
    b.member.start();
    await waitFor(
      () => ledBy(a).join() === '0,2' && ledBy(b).join() === '1,3',
      'the preferred leaders a: 0, 2 and b: 1, 3',
    );
    const s = (await admin.getPartitionSet(set))!;
    expect(s.partitions.map((p) => p.leader)).toEqual(['a', 'b', 'a', 'b']);
    expect(s.members.every((m) => typeof m.session === 'number')).toBe(true);
    for (const p of s.partitions) {
      const x = p.leader === 'a' ? a : b;
      expect(x.member.epochOf(p.partition)).toBe(p.epoch);
      expect(x.member.leaderEpochOf(p.partition)).toBe(p.leaderEpoch);
      expect(x.member.leading().get(p.partition)).toMatchObject({
        epoch: p.epoch,
        leaderEpoch: p.leaderEpoch,
        eligible: p.eligible,
      });
      expect(x.member.leading().get(p.partition)!.signal.aborted).toBe(false);
    }
    // a gave 1 and 3 up when b came: those signals aborted, at the older leader epochs.
    const given = a.events
      .filter((x) => x.e.type === 'lost')
      .map((x) => x.e as { partition: number; leaderEpoch: number; reason: string });
    expect(given.map((l) => l.partition).sort()).toEqual([1, 3]);
    for (const l of given) {
      expect(l.reason).toBe('moved');
      expect(s.partitions[l.partition]!.leaderEpoch).toBeGreaterThan(l.leaderEpoch);
    }
    const list = await admin.listPartitionSets();
    expect(list.find((x) => x.name === set)).toMatchObject({ partitions: 4, members: 2, leaderless: 0 });
  });

  it('a member cut off from the cluster stops leading before its partitions move, and they move within the TTL', async () => {
    const set = 'failover';
    const ttlMs = 1000;
    await admin.createPartitionSet({ name: set, members: ['a', 'b'], partitions: 4, replicationFactor: 2 });
    const a = instance(set, 'a', ttlMs);
    const b = instance(set, 'b', ttlMs);
    a.member.start();
    b.member.start();
    await waitFor(() => ledBy(a).join() === '0,2' && ledBy(b).join() === '1,3', 'leaders 2 and 2');
    const before = new Map([...a.member.leading()].map(([p, l]) => [p, l.leaderEpoch]));
    const watch = observe(set);
    await watch.live();

    const cutAt = performance.now();
    a.wire.cut = true;
    await waitFor(() => ledBy(b).join() === '0,1,2,3', 'b to lead every partition', ttlMs + 5000);
    await watch.stop();
    for (const [p, leaderEpoch] of before) {
      const span = a.spans.find((s) => s.partition === p && s.leaderEpoch === leaderEpoch)!;
      const moved = watch.seen.find(
        (c) => c.partition === p && c.leader === 'b' && c.leaderEpoch > leaderEpoch,
      );
      expect(moved, `the move of partition ${p}`).toBeDefined();
      // a stopped acting on its own clock before the cluster handed the partition on...
      expect(span.abortedAt).not.toBeNull();
      expect(span.abortedAt!).toBeLessThan(moved!.at);
      // ...and the hand-over came within the TTL (plus a margin for a loaded machine).
      expect(moved!.at - cutAt).toBeLessThan(ttlMs + 2000);
      expect(b.member.leaderEpochOf(p)).toBe(moved!.leaderEpoch);
    }
    const lostAfterCut = a.events.filter((x) => x.at >= cutAt && x.e.type === 'lost');
    expect(lostAfterCut.map((x) => (x.e as { reason: string }).reason)).toEqual([
      'unconfirmed',
      'unconfirmed',
    ]);
    // a's session lapsed: a left the eligible sets of what b leads now.
    const s = (await admin.getPartitionSet(set))!;
    for (const p of s.partitions) {
      expect(p.leader).toBe('b');
      expect(p.eligible).toEqual(['b']);
      expect(b.member.epochOf(p.partition)).toBe(p.epoch);
      expect(b.member.leaderEpochOf(p.partition)).toBe(p.leaderEpoch);
    }

    // Back on the network: the session is gone, so a opens a new one and joins again,
    // leading nothing until b has it back in sync.
    const oldSession = a.member.sessionId;
    a.wire.cut = false;
    await waitFor(() => a.events.some((x) => x.e.type === 'session-lost'), 'a to find its session gone');
    await waitFor(
      () => a.events.some((x) => x.e.type === 'joined' && x.e.session !== oldSession),
      'a to join with a new session',
    );
    expect(a.member.leading().size).toBe(0);
    const e0 = b.member.epochOf(0)!;
    const l0 = b.member.leaderEpochOf(0)!;
    const signal = b.member.leading().get(0)!.signal;
    const r = await b.member.setEligible(0, ['a', 'b']);
    expect(r).toMatchObject({ leader: 'b', eligible: ['a', 'b'], epoch: e0 + 1, leaderEpoch: l0 });
    expect(b.member.epochOf(0)).toBe(e0 + 1);
    expect(b.member.leaderEpochOf(0)).toBe(l0);
    expect(signal.aborted).toBe(false);
    // Preferred-leader rebalancing hands 0 back to a, at a newer leader epoch.
    const moved = await admin.movePartition(set, 0, 'a', e0 + 1);
    expect(moved).toMatchObject({ leader: 'a', epoch: e0 + 2, leaderEpoch: l0 + 1 });
    await waitFor(() => a.member.leaderEpochOf(0) === l0 + 1, 'a to lead 0 again');
    expect(a.member.epochOf(0)).toBe(e0 + 2);
    await waitFor(() => signal.aborted && b.member.epochOf(0) === null, 'b to give 0 up');
    expect(eventsOf(b, 'lost', 0).at(-1)).toMatchObject({ leaderEpoch: l0, reason: 'moved' });
  });

  it('a second process for a member waits, with MEMBER_TAKEN, until the old session lapses', async () => {
    const set = 'taken';
    await admin.createPartitionSet({ name: set, members: ['x'], partitions: 1, replicationFactor: 1 });
    const x1 = instance(set, 'x');
    x1.member.start();
    await waitFor(() => x1.member.epochOf(0) !== null, 'x1 to lead 0');
    const l1 = x1.member.leaderEpochOf(0)!;
    x1.wire.cut = true;
    const x2 = instance(set, 'x');
    x2.member.start();
    await waitFor(() => x2.member.epochOf(0) !== null, 'x2 to lead 0', 6000);
    const refusals = x2.events.filter(
      (x) =>
        x.e.type === 'error' && x.e.error instanceof RejectedError && x.e.error.serverCode === 'MEMBER_TAKEN',
    );
    expect(refusals.length).toBeGreaterThan(0);
    const old = x1.spans.find((s) => s.partition === 0 && s.leaderEpoch === l1)!;
    const now = x2.spans.find((s) => s.partition === 0)!;
    expect(old.abortedAt).not.toBeNull();
    expect(old.abortedAt!).toBeLessThan(now.from);
    expect(now.leaderEpoch).toBeGreaterThan(l1);
  });

  it('an eligible-set change keeps the leadership (same signal, an epoch event); a move ends it', async () => {
    const set = 'eligible';
    await admin.createPartitionSet({ name: set, members: ['a', 'b'], partitions: 2, replicationFactor: 2 });
    const a = instance(set, 'a', 3000, 500);
    // b learns only from its keep-alive answers: the authority, without the watch's help.
    const b = instance(set, 'b', 3000, 500, { watch: false });
    a.member.start();
    b.member.start();
    await waitFor(() => ledBy(a).join() === '0' && ledBy(b).join() === '1', 'a: 0 and b: 1');
    const e = b.member.epochOf(1)!;
    const l = b.member.leaderEpochOf(1)!;
    const signal = b.member.leading().get(1)!.signal;
    expect(eventsOf(b, 'leading', 1)).toHaveLength(1);

    // An admin shrinks the eligible set while b hears nothing of it (its keep-alives held).
    const release = b.wire.holdKeepAlives();
    try {
      const r = await admin.updateEligible(set, 1, { admin: true, epoch: e, eligible: ['b'] });
      expect(r).toMatchObject({ leader: 'b', epoch: e + 1, leaderEpoch: l, eligible: ['b'] });
      // b's change at the epoch it knows is refused, typed; the leadership goes on.
      const refused = await b.member.setEligible(1, ['a', 'b']).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StaleEpochError);
      expect(refused).toMatchObject({ leader: 'b', epoch: e + 1, leaderEpoch: l });
      expect(signal.aborted).toBe(false);
      expect(b.member.leaderEpochOf(1)).toBe(l);
    } finally {
      release();
    }
    // The next keep-alive answer carries the leadership on to the new epoch: same signal.
    await waitFor(() => b.member.epochOf(1) === e + 1, 'b to know epoch e + 1');
    expect(signal.aborted).toBe(false);
    expect(b.member.leading().get(1)).toMatchObject({ epoch: e + 1, leaderEpoch: l, eligible: ['b'] });
    expect(eventsOf(b, 'epoch', 1)).toEqual([
      { type: 'epoch', partition: 1, epoch: e + 1, leaderEpoch: l, eligible: ['b'] },
    ]);
    // Its own change, at the new epoch: again the same leadership, and one event.
    const r = await b.member.setEligible(1, ['a', 'b']);
    expect(r).toMatchObject({ leader: 'b', epoch: e + 2, leaderEpoch: l, eligible: ['b', 'a'] });
    expect(b.member.epochOf(1)).toBe(e + 2);
    await new Promise((x) => setTimeout(x, 1200)); // two keep-alives: they change nothing
    expect(eventsOf(b, 'epoch', 1).map((x) => x.epoch)).toEqual([e + 1, e + 2]);
    expect(eventsOf(b, 'leading', 1)).toHaveLength(1);
    expect(eventsOf(b, 'lost', 1)).toHaveLength(0);
    expect(signal.aborted).toBe(false);

    // A move changes the leader: the leadership is over, at its leader epoch.
    const moved = await admin.movePartition(set, 1, 'a', e + 2);
    expect(moved).toMatchObject({ leader: 'a', epoch: e + 3, leaderEpoch: l + 1 });
    await waitFor(() => signal.aborted && b.member.epochOf(1) === null, 'b to give 1 up');
    expect(eventsOf(b, 'lost', 1)).toEqual([
      { type: 'lost', partition: 1, epoch: e + 2, leaderEpoch: l, reason: 'moved' },
    ]);
    await waitFor(() => a.member.leaderEpochOf(1) === l + 1, 'a to lead 1');
    expect(a.member.epochOf(1)).toBe(e + 3);
    expect(eventsOf(a, 'leading', 1).at(-1)).toMatchObject({ epoch: e + 3, leaderEpoch: l + 1 });
  });

  it('stale epochs are refused, typed, carrying the current leader, epoch and leader epoch', async () => {
    const set = 'stale';
    await admin.createPartitionSet({ name: set, members: ['a', 'b'], partitions: 2, replicationFactor: 2 });
    const a = instance(set, 'a', 3000, 500);
    const b = instance(set, 'b', 3000, 500);
    a.member.start();
    b.member.start();
    await waitFor(() => ledBy(a).join() === '0' && ledBy(b).join() === '1', 'a: 0 and b: 1');
    const e = b.member.epochOf(1)!;
    const l = b.member.leaderEpochOf(1)!;
    expect(await admin.partitionLeader(set, 1, { epoch: e })).toMatchObject({
      leader: 'b',
      epoch: e,
      leaderEpoch: l,
    });
    const signal = b.member.leading().get(1)!.signal;

    // An admin shrinks the eligible set while b's keep-alives are held: the watch tells b.
    const release = b.wire.holdKeepAlives();
    try {
      const r = await admin.updateEligible(set, 1, { admin: true, epoch: e, eligible: ['b'] });
      expect(r.epoch).toBe(e + 1);
      const lookup = await admin.partitionLeader(set, 1, { epoch: e }).catch((err: unknown) => err);
      expect(lookup).toBeInstanceOf(StaleEpochError);
      expect(lookup).toMatchObject({
        serverCode: 'STALE_EPOCH',
        leader: 'b',
        epoch: e + 1,
        leaderEpoch: l,
        status: 409,
      });
      // The leader epoch did not change: a lookup naming it is current.
      expect(await admin.partitionLeader(set, 1, { leaderEpoch: l })).toMatchObject({
        leader: 'b',
        epoch: e + 1,
      });
      await waitFor(() => b.member.epochOf(1) === e + 1, 'b to know epoch e + 1 from the watch');
      expect(signal.aborted).toBe(false);
      expect(eventsOf(b, 'epoch', 1).at(-1)).toMatchObject({ epoch: e + 1, leaderEpoch: l, eligible: ['b'] });
    } finally {
      release();
    }
    const r = await b.member.setEligible(1, ['a', 'b']);
    expect(r).toMatchObject({ epoch: e + 2, leaderEpoch: l, eligible: ['b', 'a'] });
    expect(b.member.epochOf(1)).toBe(e + 2);
    // A resignation hands the partition on to the other eligible live replica.
    await b.member.resign(1);
    expect(signal.aborted).toBe(true);
    expect(eventsOf(b, 'lost', 1).at(-1)).toMatchObject({ leaderEpoch: l, reason: 'resigned' });
    await waitFor(() => a.member.leaderEpochOf(1) !== null, 'a to lead 1');
    expect(a.member.leaderEpochOf(1)).toBe(l + 1);
    expect(a.member.epochOf(1)).toBeGreaterThan(e + 2);
    const stale = await admin.resignPartition(set, 1, 'a', e + 2).catch((err: unknown) => err);
    expect(stale).toBeInstanceOf(StaleEpochError);
    const staleLeader = await admin.partitionLeader(set, 1, { leaderEpoch: l }).catch((err: unknown) => err);
    expect(staleLeader).toBeInstanceOf(StaleEpochError);
    expect(staleLeader).toMatchObject({ leader: 'a', leaderEpoch: l + 1 });
    // b does not take the resigned leadership back from answers applied before it.
    expect(b.member.leaderEpochOf(1)).toBeNull();
  });
});

describe('the partition calls', () => {
  it('refuse what the contract refuses, typed, and find nothing where there is nothing', async () => {
    const refused = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (err: unknown) => err as RejectedError,
      );
    expect(
      await refused(admin.createPartitionSet({ name: 'bad', members: ['a', 'b'], replicas: [['a', 'z']] })),
    ).toMatchObject({ serverCode: 'UNKNOWN_MEMBER', status: 400 });
    expect(
      await refused(
        admin.createPartitionSet({ name: 'bad name', members: ['a'], partitions: 1, replicationFactor: 1 }),
      ),
    ).toMatchObject({
      serverCode: 'INVALID_ARGUMENT',
    });
    await admin.createPartitionSet({ name: 'twice', members: ['a'], partitions: 1, replicationFactor: 1 });
    expect(
      await refused(
        admin.createPartitionSet({ name: 'twice', members: ['a'], partitions: 1, replicationFactor: 1 }),
      ),
    ).toMatchObject({ serverCode: 'ALREADY_EXISTS', status: 409 });
    expect(await admin.getPartitionSet('nowhere')).toBeNull();
    expect(await refused(admin.partitionLeader('nowhere', 0))).toMatchObject({
      serverCode: 'PARTITION_SET_NOT_FOUND',
    });
    expect(await refused(admin.partitionLeader('twice', 5))).toMatchObject({
      serverCode: 'PARTITION_NOT_FOUND',
    });
    expect(await refused(admin.keepAlive(999_999))).toMatchObject({
      serverCode: 'SESSION_NOT_FOUND',
      status: 404,
    });
    const s = await admin.openSession('tester', 5000);
    expect(s).toMatchObject({ owner: 'tester', ttlMs: 5000 });
    expect(await admin.keepAlive(s.id)).toMatchObject({ id: s.id, led: [] });
    await admin.joinPartitionSet('twice', 'a', s.id);
    expect((await admin.getSession(s.id))!.members).toEqual([{ set: 'twice', member: 'a' }]);
    expect((await admin.keepAlive(s.id)).led).toMatchObject([{ set: 'twice', partition: 0 }]);
    const other = await admin.openSession('tester-2', 5000);
    expect(await refused(admin.joinPartitionSet('twice', 'a', other.id))).toMatchObject({
      serverCode: 'MEMBER_TAKEN',
    });
    expect(await refused(admin.movePartition('twice', 0, 'z'))).toMatchObject({
      serverCode: 'UNKNOWN_MEMBER',
    });
    expect(await admin.closeSession(s.id)).toBe(true);
    expect(await admin.getSession(s.id)).toBeNull();
    expect(await admin.closeSession(other.id)).toBe(true);
    const p = await admin.partitionLeader('twice', 0);
    expect(p.leader).toBeNull();
    expect(await admin.deletePartitionSet('twice')).toBe(true);
    expect(await admin.getPartitionSet('twice')).toBeNull();
  });
});
