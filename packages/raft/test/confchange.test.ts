/** Membership changes one member at a time, their encoding and the founding entries. */
import { describe, expect, it } from 'vitest';
import {
  applyChange,
  bootstrapEntries,
  decodeConfChange,
  encodeConfChange,
  sameConf,
} from '../src/core/confchange.js';
import { RaftError, RaftErrorCode } from '../src/errors.js';
import { type ConfState, EntryType } from '../src/types.js';

const conf = (voters: string[], learners: string[] = []): ConfState => ({
  voters,
  learners,
  votersOutgoing: [],
});
const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RaftError);
    expect((err as RaftError).code).toBe(RaftErrorCode.ConfChangeRejected);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('applyChange', () => {
  it('adds a learner, promotes it to voter, removes a member', () => {
    let c = conf(['a', 'b', 'c']);
    c = applyChange(c, { kind: 'addLearner', node: 'd' });
    expect(c).toEqual(conf(['a', 'b', 'c'], ['d']));
    c = applyChange(c, { kind: 'addVoter', node: 'd' });
    expect(c).toEqual(conf(['a', 'b', 'c', 'd']));
    c = applyChange(c, { kind: 'remove', node: 'a' });
    expect(c).toEqual(conf(['b', 'c', 'd']));
    // A voter demoted to learner is no longer a voter.
    expect(applyChange(c, { kind: 'addLearner', node: 'b' })).toEqual(conf(['c', 'd'], ['b']));
  });

  it('refuses to remove a stranger or the last voter, and joint configurations', () => {
    expect(refusal(() => applyChange(conf(['a', 'b']), { kind: 'remove', node: 'x' }))).toMatch(
      /not a member/,
    );
    expect(refusal(() => applyChange(conf(['a'], ['l']), { kind: 'remove', node: 'a' }))).toMatch(/no voter/);
    const joint = { voters: ['a'], learners: [], votersOutgoing: ['b'] };
    expect(refusal(() => applyChange(joint, { kind: 'addVoter', node: 'c' }))).toMatch(/joint/);
  });
});

describe('encoding', () => {
  it('round-trips, with and without addresses', () => {
    for (const cc of [
      { kind: 'addVoter' as const, node: 'n4' },
      { kind: 'addLearner' as const, node: 'n5', meta: { peerAddress: 'h:1', clientAddress: 'http://h:2' } },
      { kind: 'remove' as const, node: 'n1' },
    ]) {
      expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    }
  });

  it('refuses what is not a membership change, whatever the bytes', () => {
    const bad = [
      'not json',
      '{"kind":"promote","node":"a"}',
      '{"kind":"addVoter","node":""}',
      '{"kind":"addVoter","node":7}',
      '{"kind":"remove","node":"a","meta":{"x":1}}',
      '{"kind":"remove","node":"a","meta":null}',
    ];
    for (const s of bad) refusal(() => decodeConfChange(new TextEncoder().encode(s)));
  });
});

describe('bootstrapEntries', () => {
  it('one committed entry of term 1 per founding member, voters then learners, sorted', () => {
    const b = bootstrapEntries(conf(['n3', 'n1', 'n2'], ['l1']));
    expect(b.entries.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, EntryType.ConfChange],
      [2, 1, EntryType.ConfChange],
      [3, 1, EntryType.ConfChange],
      [4, 1, EntryType.ConfChange],
    ]);
    expect(b.entries.map((e) => decodeConfChange(e.data))).toEqual([
      { kind: 'addVoter', node: 'n1' },
      { kind: 'addVoter', node: 'n2' },
      { kind: 'addVoter', node: 'n3' },
      { kind: 'addLearner', node: 'l1' },
    ]);
    expect(b.hardState).toEqual({ term: 1, vote: null, commit: 4 });
  });

  it('sameConf ignores order, not membership', () => {
    expect(sameConf(conf(['a', 'b'], ['c']), conf(['b', 'a'], ['c']))).toBe(true);
    expect(sameConf(conf(['a', 'b']), conf(['a'], ['b']))).toBe(false);
  });
});
