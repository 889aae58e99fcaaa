/**
 * The core's view of the log: what storage holds plus the unstable tail, with the
 * commit and apply cursors.
 *
 * Invariants (checked by the simulator, see `sim/checker.ts`):
 * - `applied <= applying <= committed <= lastIndex()`.
 * - `committed` never decreases within a process; entries at or below it never change
 *   (Raft paper §5.4, State Machine Safety).
 * - Only entries that storage confirmed durable are handed out to apply: a node never
 *   applies an entry it could lose in a crash (`applying <= persistedIndex()`).
 */

import type { LogReader } from '../contracts/storage.js';
import { RaftError, RaftErrorCode } from '../errors.js';
import { type Entry, entrySize, type SnapshotMeta } from '../types.js';
import { Unstable } from './unstable.js';

export class RaftLog {
  readonly storage: LogReader;
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index handed to the host to apply. */
  applying: number;
  /** Highest index the host reported applied. */
  applied: number;
  /** Bytes handed out to apply and not yet reported applied. */
  applyingBytes = 0;

  constructor(storage: LogReader, applied: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    const hs = storage.initialState().hardState;
    // A snapshot only ever holds committed state.
    this.committed = Math.max(hs.commit, first - 1, Math.min(storage.snapshot().index, last));
    if (this.committed > last) {
      throw new RaftError(
        RaftErrorCode.ProtocolViolation,
        `storage is inconsistent: hard state commit ${hs.commit} is past the last log index ${last}`,
      );
    }
    const floor = first - 1;
    this.applied = Math.max(Math.min(applied, this.committed), floor);
    this.applying = this.applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * The term of the entry at `index`, or `undefined` when it is compacted or beyond
   * the end of the log.
   */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    const u = this.unstable.maybeTerm(index);
    if (u !== undefined) return u;
    if (index >= this.unstable.offset) return undefined;
    const first = this.storage.firstIndex();
    if (index < first - 1 || index > this.storage.lastIndex()) return undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Whether a log ending at (lastIndex, lastTerm) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** The highest index durably in storage and still part of our log. */
  persistedIndex(): number {
    if (this.unstable.snapshot) return 0;
    return this.unstable.offset - 1;
  }

  /**
   * The first index of `ents` that conflicts with our log (different term, or beyond our
   * end), or 0 when every entry is already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index `<= index` whose term is `<= term`, with that term. A follower
   * answers a rejected append with it, and the leader uses it to skip ahead: entries
   * with a larger term cannot match. Stops at the first index we can read.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    const floor = this.firstIndex() - 1;
    let i = Math.min(index, this.lastIndex());
    for (; i >= floor; i--) {
      const t = this.term(i);
      if (t === undefined) break;
      if (t <= term) return { index: i, term: t };
    }
    return { index: Math.max(i, 0), term: 0 };
  }

  /**
   * The follower's side of AppendEntries. Returns the last index of the appended range
   * when (prevIndex, prevTerm) matched, or `null` for a rejection.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, ents: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new RaftError(
          RaftErrorCode.ProtocolViolation,
          `an append conflicts with committed entry ${ci} (committed ${this.committed}); the log is corrupt or a peer is faulty`,
        );
      }
      this.append(ents.slice(ci - ents[0]!.index));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new RaftError(
        RaftErrorCode.ProtocolViolation,
        `refusing to overwrite committed entries: append after ${after}, committed ${this.committed}`,
      );
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    const last = this.lastIndex();
    if (index > last) {
      throw new RaftError(
        RaftErrorCode.ProtocolViolation,
        `commit index ${index} is past the last log index ${last}`,
      );
    }
    this.committed = index;
  }

  /** Commit `index` if it is past the commit index and its entry is of `term` (§5.4.2). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /**
   * Entries `[lo, hi)` from storage and the unstable tail, up to about `maxBytes` (at
   * least one). Returns `undefined` if `lo` is compacted.
   */
  slice(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] | undefined {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return undefined;
    const u = this.unstable;
    let out: Entry[];
    if (lo < u.offset) {
      const storageHi = Math.min(hi, u.offset);
      out = this.storage.entries(lo, storageHi, maxBytes);
      if (out.length < storageHi - lo || hi <= u.offset) return out;
      let size = 0;
      for (const e of out) size += entrySize(e);
      for (let i = u.offset; i < hi; i++) {
        const e = u.entries[i - u.offset]!;
        size += entrySize(e);
        if (size > maxBytes) break;
        out.push(e);
      }
      return out;
    }
    out = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = u.entries[i - u.offset]!;
      size += entrySize(e);
      if (size > maxBytes && out.length > 0) break;
      out.push(e);
    }
    return out;
  }

  hasNextCommittedEntries(maxApplyingBytes: number): boolean {
    if (this.applyingBytes >= maxApplyingBytes) return false;
    return Math.min(this.committed, this.persistedIndex()) > this.applying;
  }

  /**
   * The next committed, durable entries to apply, up to `maxBytes` (at least one),
   * marking them as being applied.
   */
  takeCommittedEntries(maxBytes: number, maxApplyingBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries(maxApplyingBytes)) return [];
    const hi = Math.min(this.committed, this.persistedIndex()) + 1;
    const ents = this.slice(this.applying + 1, hi, maxBytes);
    if (ents === undefined || ents.length === 0) return [];
    let bytes = 0;
    for (const e of ents) bytes += entrySize(e);
    this.applyingBytes += bytes;
    this.applying = ents[ents.length - 1]!.index;
    return ents;
  }

  appliedTo(index: number, bytes: number): void {
    if (index <= this.applied) return;
    if (index > this.applying) {
      throw new RaftError(
        RaftErrorCode.ProtocolViolation,
        `applied index ${index} is past the entries handed out to apply (${this.applying})`,
      );
    }
    this.applied = index;
    this.applyingBytes = Math.max(0, this.applyingBytes - bytes);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** Replace the log by a snapshot (a follower far behind). */
  restore(s: SnapshotMeta): void {
    this.committed = s.index;
    this.unstable.restore(s);
  }

  /** The snapshot the log starts after: the unstable one, or storage's. */
  snapshotMeta(): SnapshotMeta {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}
