/**
 * Election timing with the default timeouts, on the simulator's virtual clock: from a
 * cold start to the first leader, and from a leader's crash to the next leader and to
 * the next acknowledged write. The network is clean (0.1–1.6 ms one way, no loss) and
 * the only fault is the leader crashing about every two seconds.
 */
import { runSeeds } from '../src/run.js';

export async function runElections(seeds = 60) {
  const s = await runSeeds(1, seeds, {
    nodes: 3,
    steps: 2000,
    quietSteps: 200,
    clientRate: 2,
    core: { maxEntriesPerMsg: 4096, maxInflightMsgs: 256, maxSizePerMsg: 1 << 20 },
    faults: {
      crash: 0,
      crashLeader: 0.005,
      partition: 0,
      pause: 0,
      drop: 0,
      duplicate: 0,
      slow: 0,
      downSteps: [30, 80],
    },
  });
  if (s.failed.length > 0)
    throw new Error(`election benchmark runs had violations: seeds ${s.failed.map((r) => r.seed)}`);
  return {
    firstLeader: s.results.map((r) => r.stats.firstLeaderMs).filter((x): x is number => x !== null),
    failover: s.results.flatMap((r) => r.stats.failoverMs),
    failoverWrite: s.results.flatMap((r) => r.stats.failoverWriteMs),
  };
}
