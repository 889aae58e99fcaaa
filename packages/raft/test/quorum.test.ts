import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jointIndex, jointVote, majorityIndex, majorityVote } from '../src/core/quorum.js';

// Naive versions, written for obviousness rather than speed.
function naiveMajorityIndex(voters: string[], match: Map<string, number>): number {
  if (voters.length === 0) return Number.POSITIVE_INFINITY;
  // The largest index i such that a majority has match >= i.
  const candidates = [0, ...voters.map((v) => match.get(v) ?? 0)];
  let best = 0;
  for (const i of candidates) {
    const count = voters.filter((v) => (match.get(v) ?? 0) >= i).length;
    if (count > voters.length / 2 && i > best) best = i;
  }
  return best;
}

function naiveVote(voters: string[], votes: Map<string, boolean>): 'won' | 'lost' | 'pending' {
  if (voters.length === 0) return 'won';
  const yes = voters.filter((v) => votes.get(v) === true).length;
  const undecided = voters.filter((v) => !votes.has(v)).length;
  if (yes > voters.length / 2) return 'won';
  if (yes + undecided > voters.length / 2) return 'pending';
  return 'lost';
}

const ids = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), { maxLength: 7 });

describe('quorum math against naive versions', () => {
  it('majorityIndex is the largest index a majority has reached', () => {
    fc.assert(
      fc.property(ids, fc.array(fc.nat(50), { minLength: 7, maxLength: 7 }), (voters, xs) => {
        const match = new Map(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id, i) => [id, xs[i]!]));
        expect(majorityIndex(voters, (id) => match.get(id))).toBe(naiveMajorityIndex(voters, match));
      }),
      { numRuns: 2000 },
    );
  });

  it('majorityVote decides exactly when the outcome is certain', () => {
    fc.assert(
      fc.property(
        ids,
        fc.array(fc.constantFrom(true, false, undefined), { minLength: 7, maxLength: 7 }),
        (voters, vs) => {
          const votes = new Map<string, boolean>();
          ['a', 'b', 'c', 'd', 'e', 'f', 'g'].forEach((id, i) => {
            if (vs[i] !== undefined) votes.set(id, vs[i]!);
          });
          expect(majorityVote(voters, votes)).toBe(naiveVote(voters, votes));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a joint configuration needs both majorities', () => {
    fc.assert(
      fc.property(ids, ids, fc.array(fc.nat(20), { minLength: 7, maxLength: 7 }), (inc, out, xs) => {
        const match = new Map(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id, i) => [id, xs[i]!]));
        const m = (id: string) => match.get(id);
        const want = Math.min(naiveMajorityIndex(inc, match), naiveMajorityIndex(out, match));
        expect(jointIndex({ incoming: inc, outgoing: out }, m)).toBe(
          want === Number.POSITIVE_INFINITY ? 0 : want,
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('joint votes: lost if either side lost, won only if both won', () => {
    const votes = new Map([
      ['a', true],
      ['b', true],
      ['c', false],
      ['d', false],
    ]);
    expect(jointVote({ incoming: ['a', 'b', 'c'], outgoing: [] }, votes)).toBe('won');
    expect(jointVote({ incoming: ['a', 'b', 'c'], outgoing: ['c', 'd', 'e'] }, votes)).toBe('lost');
    expect(jointVote({ incoming: ['a', 'b', 'c'], outgoing: ['a', 'd', 'e'] }, votes)).toBe('pending');
  });

  it('no voters: nothing commits', () => {
    expect(jointIndex({ incoming: [], outgoing: [] }, () => 5)).toBe(0);
  });
});
