/**
 * Lease reads (`leaseReads`) in the simulator: real `RaftNode`s whose clocks run at
 * different rates, under crashes, partitions, pauses and lost messages.
 *
 * - Clocks within the bound the runtime assumes (`maxClockDriftRatio`): every history
 *   linearizable, over many seeds, with many reads served under a lease (paused leaders
 *   that wake up included: the default fault profile pauses nodes).
 * - A leader whose clock stands still: a stale read happens and the checker catches it.
 *   That is what the documentation says breaks a lease, shown, not assumed.
 */
import type { CoreConfig, LogReader } from '@quorate/raft';
import { RaftCore } from '@quorate/raft/core';
import { expect, it } from 'vitest';
import { formatFailure, runSeeds } from '../src/index.js';

// Many reads against few keys, with faults often enough that leaders change under them.
const busy = {
  steps: 1500,
  clientRate: 4,
  clients: 6,
  keys: 2,
  faults: { partition: 0.01, pause: 0.006, crashLeader: 0.004 },
};

it('lease reads with clocks drifting within the bound: seeds 1..60 linearizable, invariants hold', async () => {
  const s = await runSeeds(1, 60, {
    ...busy,
    core: { leaseReads: true },
    clockDrift: 0.09,
    clockSwing: 0.01,
    maxClockDriftRatio: 0.1,
  });
  expect(s.failed.map((r) => formatFailure(r)).join('\n\n')).toBe('');
  const lease = s.results.reduce((a, r) => a + r.stats.leaseReads, 0);
  const reads = s.results.reduce((a, r) => a + r.stats.readsAcked, 0);
  const pauses = s.results.reduce((a, r) => a + r.stats.pauses, 0);
  // The lease path is the one exercised: most reads skip the heartbeat round.
  expect(lease).toBeGreaterThan(reads / 2);
  expect(pauses).toBeGreaterThan(0);
  console.log(
    `sim leases: ${s.seeds} seeds, ${reads} reads (${lease} under a lease), ${pauses} pauses, 0 violations`,
  );
}, 600_000);

it('a leader whose clock stands still (far beyond any drift bound) serves stale lease reads, and the checker says so', async () => {
  // The lease is judged on the leader's clock: one that does not advance keeps the lease
  // fresh for ever, while the followers' promise runs out on theirs. (A slow clock makes the
  // same mistake more slowly; Raft tends to elect the node whose clock runs fastest, so the
  // extreme case is the one a short run reaches.)
  class StoppedClock extends RaftCore {
    override leaseRead(): { index: number; sinceTick: number } | null {
      const l = super.leaseRead();
      return l && { index: l.index, sinceTick: this.tickCount };
    }
  }
  // Of seeds 1..300 of this profile, 133, 174 and 253 reach it (a partition isolates the
  // leader while a client still reads there, after the new leader acknowledged a write):
  // 133 kept. (Seeds depend on the runtime's timing: 84 was the one before ticks were
  // counted against the clock.)
  const opts = {
    ...busy,
    nodes: 3,
    keys: 1,
    clientRate: 6,
    clients: 8,
    faults: { partition: 0.02, pause: 0.004, crashLeader: 0.002 },
    core: { leaseReads: true },
    coreFactory: (config: CoreConfig, storage: LogReader) => new StoppedClock(config, storage),
  };
  for (const seed of [133]) {
    const s = await runSeeds(seed, 1, opts);
    const kinds = s.failed.flatMap((r) => r.violations.map((v) => v.kind));
    expect(
      kinds.some((k) => k === 'stale-read' || k === 'linearizability'),
      `seed ${seed}: ${kinds}`,
    ).toBe(true);
  }
}, 600_000);
