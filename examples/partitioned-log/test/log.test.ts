import { describe, expect, it } from 'vitest';
import { PartitionLog } from '../src/log.js';

const v = (s: string) => new TextEncoder().encode(s);

/** A log holding entries of these leader epochs, in order. */
function logOf(epochs: number[]): PartitionLog {
  const l = new PartitionLog();
  for (const [i, e] of epochs.entries()) l.append(e, v(`${e}:${i}`));
  return l;
}

/** The fetch protocol between one follower and its leader, until the follower holds the leader's log. */
function catchUp(leader: PartitionLog, follower: PartitionLog): { rounds: number; lowest: number } {
  let rounds = 0;
  let lowest = follower.end;
  while (!leader.matches(follower.end, follower.lastLeaderEpoch)) {
    follower.truncate(leader.truncationPoint(follower.end, follower.lastLeaderEpoch));
    lowest = Math.min(lowest, follower.end);
    rounds++;
  }
  follower.appendCopied(leader.read(follower.end, leader.end, Number.MAX_SAFE_INTEGER));
  return { rounds, lowest };
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('PartitionLog', () => {
  it('appends at non-decreasing leader epochs and refuses to go back', () => {
    const l = logOf([1, 1, 2]);
    expect(l.end).toBe(3);
    expect(l.lastLeaderEpoch).toBe(2);
    expect(() => l.append(1, v('x'))).toThrow(/leader epoch 1 after an entry of leader epoch 2/);
  });

  it('matches a follower by the leader epoch of the entry before `from`', () => {
    const l = logOf([1, 1, 2, 2]);
    expect(l.matches(0, 0)).toBe(true);
    expect(l.matches(2, 1)).toBe(true);
    expect(l.matches(4, 2)).toBe(true);
    expect(l.matches(3, 1)).toBe(false); // its entry 2 is of leader epoch 1, the leader's of 2
    expect(l.matches(5, 2)).toBe(false); // it has more than the leader
  });

  it('finds where a leader epoch ends, and where a diverging follower must truncate to', () => {
    const l = logOf([1, 1, 3, 3, 5]);
    expect(l.endOffsetFor(0)).toBe(0);
    expect(l.endOffsetFor(1)).toBe(2);
    expect(l.endOffsetFor(2)).toBe(2);
    expect(l.endOffsetFor(3)).toBe(4);
    expect(l.endOffsetFor(9)).toBe(5);
    // A follower with [1,1,2,2,2]: the old leader of leader epoch 2 appended three entries nobody else has.
    expect(l.truncationPoint(5, 2)).toBe(2);
    // A follower with [1,1,3,3,3,3]: more of leader epoch 3 than the leader kept.
    expect(l.truncationPoint(6, 3)).toBe(4);
  });

  it('a follower copies only what follows its end', () => {
    const leader = logOf([1, 2, 2]);
    const f = new PartitionLog();
    f.appendCopied(leader.read(0, 2, 10));
    expect(() => f.appendCopied(leader.read(0, 1, 10))).toThrow(/does not follow/);
    f.appendCopied(leader.read(2, 3, 10));
    expect(f.read(0, 9, 9)).toEqual(leader.read(0, 9, 9));
  });

  it('converges a diverged follower onto the leader, never truncating below the common prefix', () => {
    const rand = prng(42);
    for (let run = 0; run < 500; run++) {
      // A common history; then the follower got a tail from a leader of leader epoch `old` that
      // nobody else kept (or only a prefix of it), while later leaders wrote on.
      const common: number[] = [];
      let e = 1;
      for (let i = Math.floor(rand() * 8); i > 0; i--) {
        if (rand() < 0.3) e++;
        common.push(e);
      }
      const old = e + Math.floor(rand() * 2);
      const oldTail = Array.from({ length: Math.floor(rand() * 6) }, () => old);
      const kept = oldTail.slice(0, Math.floor(rand() * (oldTail.length + 1)));
      const later: number[] = [];
      let n = old + 1 + Math.floor(rand() * 2);
      for (let i = Math.floor(rand() * 6); i > 0; i--) {
        if (rand() < 0.3) n++;
        later.push(n);
      }
      const leader = new PartitionLog();
      const follower = new PartitionLog();
      const shared = [...common, ...kept];
      for (const [i, ep] of shared.entries()) {
        const entry = leader.append(ep, v(`s${i}`));
        follower.appendCopied([entry]);
      }
      for (const [i, ep] of oldTail.slice(kept.length).entries()) follower.append(ep, v(`f${i}`));
      for (const [i, ep] of later.entries()) leader.append(ep, v(`l${i}`));
      const { rounds, lowest } = catchUp(leader, follower);
      expect(follower.read(0, 1e9, 1e9)).toEqual(leader.read(0, 1e9, 1e9));
      expect(lowest).toBeGreaterThanOrEqual(shared.length);
      // Leader epochs answer in one round when the leader has entries above the old one.
      expect(rounds).toBeLessThanOrEqual(later.length > 0 ? 1 : oldTail.length - kept.length);
    }
  });
});
