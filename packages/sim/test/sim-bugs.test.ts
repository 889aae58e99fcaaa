/**
 * The checker must bite: a core with a known bug injected must be caught by the
 * simulator. Each bug is planted through a subclass, at the seams the core exposes for
 * exactly this purpose.
 */

import type { Message } from '@quorate/raft';
import { RaftCore, type VoteResult } from '@quorate/raft/core';
import { describe, expect, it } from 'vitest';
import { runSeeds } from '../src/index.js';

/** Counts every granted vote twice: a candidate with a minority believes it won. */
class DoubleCountingVotes extends RaftCore {
  protected override tallyVotes(): VoteResult {
    const real = super.tallyVotes();
    if (real !== 'pending') return real;
    const voters = this.tracker.voters();
    let granted = 0;
    for (const id of voters)
      if ((this as unknown as { votes: Map<string, boolean> }).votes.get(id)) granted += 2;
    return granted > voters.length / 2 ? 'won' : real;
  }
}

/** Commits an entry of an earlier term by counting replicas (Raft paper, Figure 8). */
class CommitsEarlierTerms extends RaftCore {
  protected override isCommittable(index: number): boolean {
    return index > this.log.committed;
  }
}

/** Acknowledges appends and grants votes before they are durable. */
class AcksBeforeDurable extends RaftCore {
  protected override sendAfterPersist(m: Message): void {
    this.send(m);
  }
}

/** Answers a read at once from the local commit index: no leadership check, no forwarding. */
class ReadsLocally extends RaftCore {
  override readIndex(requestId: number): void {
    (this as unknown as { readStates: unknown[] }).readStates.push({
      requestId,
      index: this.log.committed,
      failed: false,
    });
  }
}

// Leaders crash often and come back fast, messages get lost, every append carries one
// entry, and eight clients contend for one key: the interleavings these bugs need
// become likely.
const harsh = {
  steps: 1000,
  quietSteps: 0,
  nodes: 3,
  clientRate: 6,
  clients: 8,
  keys: 1,
  faults: { crashLeader: 0.05, crash: 0.02, partition: 0.02, drop: 0.3, downSteps: [2, 30] as const },
  core: { maxEntriesPerMsg: 1, maxInflightMsgs: 1 },
};

// Crashes come every few hundred milliseconds and nodes come back fast: a crash often
// lands between an acknowledgement and the write it promised.
const crashy = {
  steps: 600,
  quietSteps: 0,
  nodes: 3,
  clientRate: 3,
  snapshotEvery: 0,
  faults: {
    crashLeader: 0.03,
    crash: 0.08,
    partition: 0,
    pause: 0,
    drop: 0,
    downSteps: [1, 10] as const,
    membership: 0,
  },
};

const kindsOf = (s: Awaited<ReturnType<typeof runSeeds>>) =>
  new Set(s.failed.flatMap((r) => r.violations.map((v) => v.kind)));

describe('the simulator catches injected bugs', () => {
  it('a vote counted twice: two leaders in one term', async () => {
    const s = await runSeeds(1, 20, { coreFactory: (c, st) => new DoubleCountingVotes(c, st) });
    expect(s.failed.length).toBeGreaterThan(0);
    const kinds = new Set(s.failed.flatMap((r) => r.violations.map((v) => v.kind)));
    expect([...kinds].some((k) => k === 'election-safety' || k === 'leader-completeness')).toBe(true);
  });

  it('an earlier-term entry committed by counting replicas', async () => {
    // The buggy leader believes it committed in its term and serves a read that misses
    // an acknowledged write (or, rarer, a committed entry is overwritten).
    const s = await runSeeds(1, 100, { ...harsh, coreFactory: (c, st) => new CommitsEarlierTerms(c, st) });
    expect(s.failed.length).toBeGreaterThan(0);
    // Safety, not noise: a read that missed an acknowledged write, or a lost commit.
    expect(
      [...kindsOf(s)].some(
        (k) => k === 'stale-read' || k === 'leader-completeness' || k === 'committed-changed',
      ),
    ).toBe(true);
  });

  it('acknowledgements sent before the disk write: a crash loses what a quorum "had"', async () => {
    const s = await runSeeds(1, 40, { ...crashy, coreFactory: (c, st) => new AcksBeforeDurable(c, st) });
    expect(s.failed.length).toBeGreaterThan(0);
    // What a quorum acknowledged is lost: committed entries change or go missing.
    expect(
      [...kindsOf(s)].some(
        (k) => k === 'committed-changed' || k === 'leader-completeness' || k === 'apply-diverged',
      ),
    ).toBe(true);
  });

  it("reads served locally: the clients' history is not linearizable, and the report names seed and key", async () => {
    const s = await runSeeds(1, 20, { coreFactory: (c, st) => new ReadsLocally(c, st) });
    const lin = s.failed.flatMap((r) => r.violations.filter((v) => v.kind === 'linearizability'));
    expect(lin.length).toBeGreaterThan(0);
    expect(lin[0]!.detail).toMatch(/^seed \d+, key k\d: get/);
  });

  it('the correct core passes the same harsh and crashy runs', async () => {
    const s = await runSeeds(1, 100, harsh);
    expect(s.failed.map((r) => r.seed)).toEqual([]);
    const c = await runSeeds(1, 40, crashy);
    expect(c.failed.map((r) => r.seed)).toEqual([]);
  });

  it('a run replays exactly from its seed', async () => {
    const a = await runSeeds(42, 1, {});
    const b = await runSeeds(42, 1, {});
    expect(a.results[0]!.stats).toEqual(b.results[0]!.stats);
  });
});
