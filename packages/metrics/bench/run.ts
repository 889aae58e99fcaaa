/**
 * What the metrics cost per committed entry. The same in-process workload (three members,
 * in-memory storage and transport, the leader proposing) runs with and without
 * `RaftMetrics` subscribed, alternating, in fresh clusters; medians are compared side by
 * side. The event handlers are also timed alone, replaying a recorded event stream, since
 * their cost is far below the run-to-run noise of the whole workload.
 *
 *   pnpm --filter @quorate/metrics bench [-- --rounds 9 --entries 100000 --inflight 64 --sequential 5000]
 */
import { MemoryNetwork, MemoryStorage, RaftNode, type RaftNodeEvent } from '@quorate/raft';
import { type ObservedNode, RaftMetrics } from '../src/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('rounds', 9);
const ENTRIES = arg('entries', 100_000);
const INFLIGHT = arg('inflight', 64);
const SEQUENTIAL = arg('sequential', 5000);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface RunResult {
  usPerEntry: number;
  events: RaftNodeEvent[][];
}

async function run(
  withMetrics: boolean,
  entries: number,
  inflight: number,
  record = false,
): Promise<RunResult> {
  const net = new MemoryNetwork();
  const ids = ['n1', 'n2', 'n3'];
  const metrics = withMetrics ? new RaftMetrics({ processMetrics: false }) : null;
  const events: RaftNodeEvent[][] = [];
  const nodes = ids.map((id) => {
    const node = new RaftNode<null>({
      id,
      members: ids,
      storage: new MemoryStorage(),
      transport: net.transport(id),
      stateMachine: { apply: () => null },
      electionTimeoutMs: 1000,
      requestTimeoutMs: 60_000,
    });
    metrics?.attach(node);
    if (record) {
      const log: RaftNodeEvent[] = [];
      events.push(log);
      node.events.onAny((e) => log.push(e));
    }
    return node;
  });
  await Promise.all(nodes.map((n) => n.start()));
  let leader: RaftNode<null> | undefined;
  while (!leader) {
    await new Promise((r) => setTimeout(r, 5));
    leader = nodes.find((n) => n.isLeader);
  }
  const payload = new Uint8Array(64);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < entries) {
      next++;
      await leader!.propose(payload);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const us = ((performance.now() - t0) * 1000) / entries;
  await Promise.all(nodes.map((n) => n.stop()));
  return { usPerEntry: us, events };
}

/** The handlers alone: replay one run's events (all three members') into fresh metrics. */
function handlerCost(
  events: RaftNodeEvent[][],
  entries: number,
): { nsPerEntry: number; eventsPerEntry: number } {
  const total = events.reduce((a, l) => a + l.length, 0);
  const samples: number[] = [];
  for (let r = 0; r < 9; r++) {
    const metrics = new RaftMetrics({ processMetrics: false });
    const listeners: ((e: RaftNodeEvent) => void)[] = [];
    events.forEach((_, i) => {
      const node: ObservedNode = {
        id: `n${i + 1}`,
        events: {
          onAny: (fn) => {
            listeners.push(fn);
            return () => {};
          },
        },
        status: () => {
          throw new Error('not polled in this benchmark');
        },
      };
      metrics.attach(node);
    });
    const t0 = performance.now();
    for (let i = 0; i < events.length; i++) {
      const fn = listeners[i]!;
      for (const e of events[i]!) fn(e);
    }
    samples.push(((performance.now() - t0) * 1e6) / entries);
  }
  return { nsPerEntry: median(samples.slice(2)), eventsPerEntry: total / entries };
}

async function compare(label: string, entries: number, inflight: number) {
  // Warm up both paths (JIT) before measuring.
  await run(false, Math.min(entries, 2000), inflight);
  await run(true, Math.min(entries, 2000), inflight);
  const without: number[] = [];
  const withM: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so that drift on a shared machine hits both sides alike.
    if (r % 2 === 0) {
      without.push((await run(false, entries, inflight)).usPerEntry);
      withM.push((await run(true, entries, inflight)).usPerEntry);
    } else {
      withM.push((await run(true, entries, inflight)).usPerEntry);
      without.push((await run(false, entries, inflight)).usPerEntry);
    }
  }
  const recorded = await run(false, entries, inflight, true);
  const h = handlerCost(recorded.events, entries);
  const a = median(without);
  const b = median(withM);
  console.log(`\n${label}: ${entries} entries, ${inflight} in flight, ${ROUNDS} rounds (medians)`);
  console.log(
    `  without metrics   ${a.toFixed(2)} µs/entry   (runs: ${without.map((x) => x.toFixed(1)).join(' ')})`,
  );
  console.log(
    `  with metrics      ${b.toFixed(2)} µs/entry   (runs: ${withM.map((x) => x.toFixed(1)).join(' ')})`,
  );
  console.log(`  difference        ${(b - a).toFixed(2)} µs/entry (${(((b - a) / a) * 100).toFixed(1)} %)`);
  console.log(
    `  handlers alone    ${(h.nsPerEntry / 1000).toFixed(3)} µs/entry for ${h.eventsPerEntry.toFixed(2)} events/entry across 3 members`,
  );
}

console.log(`@quorate/metrics bench — node ${process.version}`);
await compare('pipelined', ENTRIES, INFLIGHT);
await compare('sequential', SEQUENTIAL, 1);
