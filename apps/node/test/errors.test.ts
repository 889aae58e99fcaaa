/**
 * What the API answers for each way a proposal can end without a result, and what that
 * tells a client: definite (nothing was or will be applied) or an open outcome.
 */
import { answerLeavesOutcomeOpen } from '@quorate/client';
import { NotLeaderError, RaftError, RaftErrorCode } from '@quorate/raft';
import { describe, expect, it } from 'vitest';
import { fromRaftError } from '../src/server/errors.js';

describe('fromRaftError', () => {
  const cases: [string, unknown, number, string, boolean][] = [
    // Raised before anything is appended: definite.
    ['not the leader (leader known)', new NotLeaderError('n2', 3), 421, 'NOT_LEADER', false],
    ['not the leader (election)', new NotLeaderError(null, 3), 503, 'NO_LEADER', false],
    ['overloaded', new RaftError(RaftErrorCode.Overloaded, 'too much'), 429, 'OVERLOADED', false],
    ['stopped', new RaftError(RaftErrorCode.Stopped, 'stopped'), 503, 'UNAVAILABLE', false],
    // Appended, then another leader's entry took the slot: it can never commit.
    ['dropped', new RaftError(RaftErrorCode.ProposalDropped, 'replaced'), 503, 'PROPOSAL_DROPPED', false],
    // Appended, fate unknown: the client must treat the write as possibly applied.
    ['deadline passed', new RaftError(RaftErrorCode.Timeout, 'late'), 504, 'TIMEOUT', true],
    [
      'node stopped with it pending',
      new RaftError(RaftErrorCode.OutcomeUnknown, 'x'),
      503,
      'OUTCOME_UNKNOWN',
      true,
    ],
    ['anything unexpected', new Error('boom'), 500, 'INTERNAL', true],
  ];
  for (const [what, err, status, code, open] of cases) {
    it(`${what}: ${status} ${code}, ${open ? 'outcome open' : 'definite'}`, () => {
      const e = fromRaftError(err);
      expect([e.status, e.code]).toEqual([status, code]);
      // As the client reads the answer.
      expect(answerLeavesOutcomeOpen(e.status, e.code)).toBe(open);
    });
  }
});
