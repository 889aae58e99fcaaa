/** The core's view of the log (storage plus the unstable tail), on its own. */
import { describe, expect, it } from 'vitest';
import { RaftLog } from '../src/core/log.js';
import { type RaftError, RaftErrorCode } from '../src/errors.js';
import { MemoryStorage } from '../src/memory/memory-storage.js';
import { type Entry, EntryType, entrySize } from '../src/types.js';

const ent = (index: number, term: number, bytes = 8): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array(bytes),
});

/** A log whose storage durably holds entries 1..terms.length with those terms. */
function logWith(terms: number[], commit = 0, applied = 0): { log: RaftLog; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.persistSync({
    snapshot: null,
    entries: terms.map((t, i) => ent(i + 1, t)),
    hardState: { term: terms.at(-1) ?? 0, vote: null, commit },
    mustSync: true,
  });
  return { log: new RaftLog(storage, applied), storage };
}

const violation = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect((err as RaftError).code).toBe(RaftErrorCode.ProtocolViolation);
    return;
  }
  throw new Error('expected a protocol violation');
};

describe('RaftLog', () => {
  it('answers terms across storage and the unstable tail; unknown indexes are undefined', () => {
    const { log } = logWith([1, 1, 2]);
    log.append([ent(4, 3), ent(5, 3)]);
    expect([1, 2, 3, 4, 5].map((i) => log.term(i))).toEqual([1, 1, 2, 3, 3]);
    expect([log.term(0), log.term(6)]).toEqual([0, undefined]);
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm()]).toEqual([1, 5, 3]);
    expect(log.persistedIndex()).toBe(3);
  });

  it('up to date means a later last term, or the same term and at least as long (§5.4.1)', () => {
    const { log } = logWith([1, 2, 2]);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  it('a follower appends after a matching entry, truncating only the conflicting suffix', () => {
    const { log } = logWith([1, 1, 1, 1], 2);
    expect(log.maybeAppend(5, 1, 2, [ent(6, 2)])).toBeNull(); // no entry 5: rejected
    expect(log.maybeAppend(2, 2, 2, [ent(3, 2)])).toBeNull(); // entry 2 has term 1: rejected
    // Entries 3 and 4 (term 1) are replaced by 3..5 of term 2; entry 2 stays.
    expect(log.maybeAppend(2, 1, 4, [ent(3, 2), ent(4, 2), ent(5, 2)])).toBe(5);
    expect([1, 2, 3, 4, 5].map((i) => log.term(i))).toEqual([1, 1, 2, 2, 2]);
    expect(log.committed).toBe(4); // min(leader's commit, last new entry)
    // Appending what is already there changes nothing.
    expect(log.maybeAppend(2, 1, 4, [ent(3, 2)])).toBe(3);
    expect(log.lastIndex()).toBe(5);
  });

  it('refuses to change a committed entry, and to commit past the end', () => {
    const { log } = logWith([1, 1, 1], 3);
    violation(() => log.maybeAppend(1, 1, 3, [ent(2, 2)]));
    violation(() => log.append([ent(3, 2)]));
    violation(() => log.commitTo(9));
    log.commitTo(1); // backwards: ignored
    expect(log.committed).toBe(3);
  });

  it('commits by counting replicas only for entries of the current term (§5.4.2)', () => {
    const { log } = logWith([1, 1, 2], 1);
    expect(log.maybeCommit(2, 2)).toBe(false); // entry 2 is of term 1
    expect(log.maybeCommit(3, 2)).toBe(true);
    expect(log.committed).toBe(3);
    expect(log.maybeCommit(3, 2)).toBe(false);
  });

  it('finds where a rejected follower may match, by term', () => {
    const { log } = logWith([1, 1, 3, 3, 5]);
    expect(log.findConflictByTerm(5, 4)).toEqual({ index: 4, term: 3 });
    expect(log.findConflictByTerm(5, 2)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(9, 5)).toEqual({ index: 5, term: 5 });
    expect(log.findConflictByTerm(5, 0)).toEqual({ index: 0, term: 0 });
  });

  it('slices across storage and the tail within a byte budget, always at least one entry', () => {
    const { log } = logWith([1, 1, 1]);
    log.append([ent(4, 1), ent(5, 1)]);
    expect(log.slice(2, 6)!.map((e) => e.index)).toEqual([2, 3, 4, 5]);
    const size = entrySize(ent(1, 1));
    expect(log.slice(2, 6, size * 3)!.map((e) => e.index)).toEqual([2, 3, 4]);
    expect(log.slice(4, 6, 1)!.map((e) => e.index)).toEqual([4]);
    expect(log.slice(3, 3)).toEqual([]);
  });

  it('hands out only committed entries that are durable, and counts them until applied', () => {
    const { log, storage } = logWith([1, 1], 2);
    const tail = [ent(3, 1), ent(4, 1)];
    log.append(tail);
    log.commitTo(4);
    // 3 and 4 are committed (a majority has them) but not yet durable here.
    expect(log.takeCommittedEntries(1e9, 1e9).map((e) => e.index)).toEqual([1, 2]);
    expect(log.hasNextCommittedEntries(1e9)).toBe(false);
    // The host writes them, then tells the log.
    storage.persistSync({ snapshot: null, entries: tail, hardState: null, mustSync: true });
    log.stableTo(4, 1);
    expect(log.takeCommittedEntries(1e9, 1e9).map((e) => e.index)).toEqual([3, 4]);
    expect(log.applying).toBe(4);
    violation(() => log.appliedTo(5, 0));
    log.appliedTo(4, log.applyingBytes);
    expect([log.applied, log.applyingBytes]).toEqual([4, 0]);
  });

  it('stops handing out entries while too many bytes are being applied', () => {
    const { log } = logWith([1, 1, 1], 3);
    const one = entrySize(ent(1, 1));
    expect(log.takeCommittedEntries(one, 1e9).map((e) => e.index)).toEqual([1]);
    expect(log.hasNextCommittedEntries(one)).toBe(false);
    log.appliedTo(1, one);
    expect(log.hasNextCommittedEntries(one)).toBe(true);
  });
});
