import type { Entry, Message } from '@quorate/raft';
import fc from 'fast-check';

const id = fc.constantFrom('n1', 'n2', 'n3', 'db-eu-2', 'ü');
const idx = fc.oneof(
  fc.nat(1000),
  fc.constant(Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 2 ** 32, max: 2 ** 40 }),
);

/** Every message type with any field values the schema allows. */
export const arbMessage: fc.Arbitrary<Message> = fc
  .record({ from: id, to: id, term: idx })
  .chain(({ from, to, term }) => {
    const base = { from, to, term };
    const entries = (prevIndex: number, prevTerm: number) =>
      fc
        .array(
          fc.record({
            type: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>,
            data: fc.uint8Array({ maxLength: 64 }),
          }),
          {
            maxLength: 5,
          },
        )
        .map((es): Entry[] =>
          es.map((e, i) => ({
            index: prevIndex + 1 + i,
            term: Math.max(prevTerm, term),
            type: e.type,
            data: e.data,
          })),
        );
    return fc.oneof(
      fc.record({ prevIndex: fc.nat(1000), prevTerm: fc.nat(term), commit: fc.nat() }).chain((r) =>
        entries(r.prevIndex, r.prevTerm).map((es) => ({
          ...base,
          ...r,
          type: 'append' as const,
          entries: es,
        })),
      ),
      fc.record({ reject: fc.boolean(), index: idx, hintIndex: idx, hintTerm: idx }).map((r) => ({
        ...base,
        ...r,
        type: 'appendResponse' as const,
      })),
      fc
        .record({
          type: fc.constantFrom('vote' as const, 'preVote' as const),
          lastIndex: idx,
          lastTerm: idx,
          transfer: fc.boolean(),
        })
        .map((r) => ({ ...base, ...r })),
      fc
        .record({
          type: fc.constantFrom('voteResponse' as const, 'preVoteResponse' as const),
          reject: fc.boolean(),
        })
        .map((r) => ({ ...base, ...r })),
      fc.record({ commit: idx, readRound: idx }).map((r) => ({ ...base, ...r, type: 'heartbeat' as const })),
      fc.record({ readRound: idx }).map((r) => ({ ...base, ...r, type: 'heartbeatResponse' as const })),
      fc
        .record({
          index: idx,
          term: idx,
          conf: fc.record({
            voters: fc.array(id, { maxLength: 5 }),
            learners: fc.array(id, { maxLength: 3 }),
            votersOutgoing: fc.array(id, { maxLength: 3 }),
          }),
        })
        .map((snapshot) => ({ ...base, type: 'snapshot' as const, snapshot })),
      fc.constant({ ...base, type: 'timeoutNow' as const }),
      fc.record({ requestId: idx }).map((r) => ({ ...base, ...r, type: 'readIndex' as const })),
      fc
        .record({ requestId: idx, index: idx, reject: fc.boolean() })
        .map((r) => ({ ...base, ...r, type: 'readIndexResponse' as const })),
    );
  });
