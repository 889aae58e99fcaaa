/**
 * The partitioned log under faults: a real 3-node quorate cluster, three broker
 * processes, a partition set of 4 partitions with 3 replicas each, and a producer per
 * partition recording what was acknowledged. Leaders killed, a follower killed and
 * restarted, a leader frozen past its session: every acknowledged record is in the
 * leaders' logs at the offset it was acknowledged at, once, in order.
 */
import { type PartitionSet, type PartitionState, QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogClient } from '../src/log-client.js';
import { valueText } from '../src/wire.js';
import { Brokers, describeSet, produceTo, type RawProduce, Workload, waitFor } from './harness.js';

const SET = 'logs';
const PARTITIONS = 4;
const BROKERS = ['b1', 'b2', 'b3'];
const SESSION_TTL_MS = 3000;
const MAX_LAG_MS = 2000;

let cluster: LocalCluster;
let quorate: QuorateClient;
let brokers: Brokers;
let client: LogClient;
let work: Workload;
/** Records produced straight to a deposed leader: none may be acknowledged or kept. */
const stale: { value: string; status: number; code: string; outcome: string }[] = [];

async function set(): Promise<PartitionSet> {
  const s = await quorate.getPartitionSet(SET);
  if (!s) throw new Error(`no set ${SET}`);
  return s;
}

async function partition(p: number): Promise<PartitionState> {
  return quorate.partitionLeader(SET, p);
}

const why = async () => `${await describeSet(quorate, SET)}\n${brokers.tails()}`;

/** Every partition led, and every replica eligible again. */
async function allInSync(timeoutMs: number): Promise<PartitionSet> {
  return waitFor(
    async () => {
      const s = await set();
      return s.partitions.every((p) => p.leader !== null && p.eligible.length === p.replicas.length) && s;
    },
    'every partition led with all its replicas eligible',
    timeoutMs,
    why,
  );
}

beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp' });
  quorate = new QuorateClient({ endpoints: cluster.endpoints });
  await quorate.createPartitionSet({
    name: SET,
    members: BROKERS,
    partitions: PARTITIONS,
    replicationFactor: 3,
  });
  brokers = new Brokers(cluster.endpoints, SET, [
    '--session-ttl-ms',
    String(SESSION_TTL_MS),
    '--max-lag-ms',
    String(MAX_LAG_MS),
    '--ack-timeout-ms',
    '5000',
  ]);
  await Promise.all(BROKERS.map((id) => brokers.start(id)));
  await allInSync(60_000);
  client = new LogClient({ quorate, set: SET });
  work = new Workload(client, PARTITIONS);
});

afterAll(async () => {
  await work?.stop();
  await brokers?.stopAll();
  await client?.close();
  await quorate?.close();
  await cluster?.stop();
});

describe('a partitioned log on quorate', () => {
  it('acknowledges writes on every partition', async () => {
    await work.progress(20, 60_000);
    const s = await set();
    console.log(
      `leaders: ${s.partitions.map((p) => `p${p.partition}=${p.leader}@${p.leaderEpoch}`).join(' ')}`,
    );
    expect(s.partitions.every((p) => p.leader !== null)).toBe(true);
  });

  it('kill -9 the leader of partition 0: another replica leads, writes go on, the eligible sets shrink', async () => {
    const before = await partition(0);
    const victim = before.leader!;
    await brokers.kill(victim);
    const after = await waitFor(
      async () => {
        const p = await partition(0);
        return p.leader !== null && p.leader !== victim && p.leaderEpoch > before.leaderEpoch && p;
      },
      `a new leader of partition 0 (was ${victim})`,
      30_000,
      why,
    );
    console.log(`partition 0: ${victim} killed, ${after.leader} leads at leader epoch ${after.leaderEpoch}`);
    await work.progress(20, 60_000);
    // quorate took the dead broker out of every eligible set when its session lapsed.
    await waitFor(
      async () => (await set()).partitions.every((p) => !p.eligible.includes(victim) && p.leader !== victim),
      `${victim} out of every eligible set`,
      30_000,
      why,
    );
    // Restarted, empty: it copies every partition from the leaders and is eligible again.
    await brokers.start(victim);
    await allInSync(60_000);
    await work.progress(10, 60_000);
  });

  it('a follower killed leaves the eligible sets and writes go on; restarted, it catches up and is eligible again', async () => {
    // Make b3 lead nothing (preferred-leader moves), so that killing it moves no leader.
    const follower = 'b3';
    for (const p of (await set()).partitions) {
      if (p.leader !== follower) continue;
      const to = p.eligible.find((r) => r !== follower)!;
      await quorate.movePartition(SET, p.partition, to, p.epoch);
    }
    await waitFor(
      async () => (await set()).partitions.every((p) => p.leader !== null && p.leader !== follower),
      `${follower} leads nothing`,
      30_000,
      why,
    );
    await work.progress(10, 60_000);
    const leadersBefore = (await set()).partitions.map((p) => p.leader);
    await brokers.kill(follower);
    const shrunk = await waitFor(
      async () => {
        const s = await set();
        return s.partitions.every((p) => !p.eligible.includes(follower)) && s;
      },
      `${follower} out of every eligible set`,
      30_000,
      why,
    );
    console.log(
      `${follower} killed: eligible ${shrunk.partitions.map((p) => `p${p.partition}=${p.eligible.join(',')}`).join(' ')}`,
    );
    await work.progress(20, 60_000);
    expect((await set()).partitions.map((p) => p.leader)).toEqual(leadersBefore);
    const b = await brokers.start(follower);
    const grown = await allInSync(60_000);
    console.log(
      `${follower} restarted: eligible ${grown.partitions.map((p) => `p${p.partition}=${p.eligible.join(',')}`).join(' ')}`,
    );
    // Eligible again, it holds everything acknowledged (read the leader's mark first: every
    // acknowledgement since it was let back in waited for it).
    for (const p of grown.partitions) {
      const leader = await client.dump(p.partition, 0, brokers.get(p.leader!).url);
      const mine = await client.dump(p.partition, 0, b.url);
      expect(mine.end).toBeGreaterThanOrEqual(leader.highWatermark);
      expect(mine.entries.slice(0, leader.highWatermark)).toEqual(
        leader.entries.slice(0, leader.highWatermark),
      );
    }
    await work.progress(10, 60_000);
  });

  it('a leader frozen past its session cannot acknowledge once it wakes up, and what it took is not kept', async () => {
    const before = await partition(0);
    const frozen = brokers.get(before.leader!);
    brokers.signal(frozen.id, 'SIGSTOP');
    let moved: PartitionState;
    let writes: { value: string; w: RawProduce }[];
    try {
      moved = await waitFor(
        async () => {
          const p = await partition(0);
          return p.leader !== null && p.leader !== frozen.id && p.leaderEpoch > before.leaderEpoch && p;
        },
        `partition 0 handed on from the frozen ${frozen.id}`,
        30_000,
        why,
      );
      await work.progress(5, 60_000, [0]);
      // Waiting in its socket when it wakes up: with the leader epoch it led at, and without any.
      writes = [
        { value: 'stale-with-epoch', w: produceTo(frozen.url, 0, 'stale-with-epoch', before.leaderEpoch) },
        { value: 'stale-without-epoch', w: produceTo(frozen.url, 0, 'stale-without-epoch') },
      ];
      await Promise.all(writes.map((x) => x.w.sent));
    } finally {
      brokers.signal(frozen.id, 'SIGCONT');
    }
    for (const { value, w } of writes) stale.push({ value, ...(await w.answer) });
    console.log(
      `partition 0: ${frozen.id} frozen at leader epoch ${before.leaderEpoch}, ${moved.leader} leads at ${moved.leaderEpoch}; the woken leader answered ${stale.map((s) => `${s.status} ${s.code}`).join(', ')}`,
    );
    for (const s of stale) expect(s.status, s.code).not.toBe(200);
    const leaderLog = await client.dump(0);
    expect(leaderLog.entries.map(valueText)).not.toContain('stale-with-epoch');
    expect(leaderLog.entries.map(valueText)).not.toContain('stale-without-epoch');
    // It rejoins as a follower, drops anything it took alone, and is eligible again.
    await allInSync(60_000);
    await work.progress(10, 60_000);
  });

  it('a deposed leader that ignores its member still cannot acknowledge: the leader epochs fence it', async () => {
    // b1 again, now unsafe: it keeps leading whatever the member says (see --test-ignore-lost-leadership).
    const zombie = 'b1';
    await brokers.kill(zombie);
    await waitFor(
      async () => (await set()).partitions.every((p) => !p.eligible.includes(zombie) && p.leader !== zombie),
      `${zombie} out of every eligible set`,
      30_000,
      why,
    );
    // A long max lag too: it does not try to drop its silent followers (quorate would refuse
    // that compare-and-set): only the data plane is left to stop it.
    const z = await brokers.start(zombie, ['--test-ignore-lost-leadership', '--max-lag-ms', '600000']);
    await allInSync(60_000);
    const p1 = await partition(1);
    if (p1.leader !== zombie) await quorate.movePartition(SET, 1, zombie, p1.epoch);
    const led = await waitFor(
      async () => {
        const p = await partition(1);
        return p.leader === zombie && p;
      },
      `${zombie} leading partition 1`,
      30_000,
      why,
    );
    await work.progress(5, 60_000, [1]);
    brokers.signal(zombie, 'SIGSTOP');
    let moved: PartitionState;
    let w: RawProduce;
    try {
      moved = await waitFor(
        async () => {
          const p = await partition(1);
          return p.leader !== null && p.leader !== zombie && p.leaderEpoch > led.leaderEpoch && p;
        },
        `partition 1 handed on from the frozen ${zombie}`,
        30_000,
        why,
      );
      await work.progress(5, 60_000, [1]);
      // In its socket when it wakes up, at the leader epoch it led at: it appends this one.
      w = produceTo(z.url, 1, 'zombie-write', led.leaderEpoch);
      await w.sent;
    } finally {
      brokers.signal(zombie, 'SIGCONT');
    }
    const a = await w.answer;
    stale.push({ value: 'zombie-write', ...a });
    console.log(
      `partition 1: ${zombie} frozen at leader epoch ${led.leaderEpoch}, ${moved.leader} leads at ${moved.leaderEpoch}; the zombie answered ${a.status} ${a.code} (${a.outcome})`,
    );
    // Appended at its old leader epoch, never acknowledged: nobody fetches from it any more.
    expect(a).toMatchObject({ status: 503, outcome: 'unknown' });
    expect((await client.dump(1)).entries.map(valueText)).not.toContain('zombie-write');
    // A producer with the current leader epoch is refused too, and deposes it.
    const a2 = await produceTo(z.url, 1, 'zombie-write-2', moved.leaderEpoch).answer;
    stale.push({ value: 'zombie-write-2', ...a2 });
    expect(a2).toMatchObject({ status: 409, code: 'NOT_LEADER', outcome: 'not-written' });
    // Deposed, it follows again: drops its own write, catches up, is eligible again.
    await allInSync(60_000);
    await work.progress(10, 60_000);
  });

  it('every acknowledged record is in the leaders’ logs at its offset, once and in order; the replicas agree', async () => {
    await work.stop();
    const s = await allInSync(60_000);
    let acked = 0;
    let unknownKept = 0;
    for (const p of s.partitions) {
      // Wait until every replica holds the leader's whole log (no more writes come).
      const leaderUrl = brokers.get(p.leader!).url;
      const full = await waitFor(
        async () => {
          const l = await client.dump(p.partition, 0, leaderUrl);
          if (l.highWatermark !== l.end) return null;
          for (const r of p.replicas) {
            const x = await client.dump(p.partition, 0, brokers.get(r).url);
            if (x.end !== l.end) return null;
            expect(x.entries).toEqual(l.entries);
          }
          return l;
        },
        `every replica of partition ${p.partition} holding the leader's log`,
        30_000,
        why,
      );
      const values = full.entries.map(valueText);
      expect(new Set(values).size, `a record twice in partition ${p.partition}`).toBe(values.length);
      const mine = work.acked.get(p.partition)!;
      let lastOffset = -1;
      for (const a of mine) {
        expect(values[a.offset], `p${p.partition}-${a.seq} acknowledged at ${a.offset}`).toBe(
          `p${p.partition}-${a.seq}`,
        );
        expect(full.entries[a.offset]!.leaderEpoch).toBe(a.leaderEpoch);
        expect(a.offset).toBeGreaterThan(lastOffset);
        lastOffset = a.offset;
      }
      acked += mine.length;
      for (const u of work.unknown.get(p.partition)!) if (values.includes(u)) unknownKept++;
      for (const st of stale) expect(values).not.toContain(st.value);
    }
    console.log(
      `acknowledged ${acked} records over ${PARTITIONS} partitions, all kept; outcome unknown ${[...work.unknown.values()].reduce((n, u) => n + u.length, 0)} (${unknownKept} kept); not written ${[...work.notWritten.values()].reduce((n, x) => n + x, 0)}; errors ${JSON.stringify(Object.fromEntries(work.errors))}`,
    );
    expect(acked).toBeGreaterThan(100);
  });
});
