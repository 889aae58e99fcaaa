/**
 * One partition's log, as one replica holds it: in memory, append-only except for the
 * truncation a follower does when its tail diverges from its leader's.
 *
 * Every entry carries the leader epoch of the leader that appended it (quorate's
 * `leaderEpoch`, which names one leadership: it goes up exactly when the leader changes).
 * Leader epochs start at 1 for entries (a partition's is 0 only while it never had a
 * leader), and never go down along a log.
 *
 * ## Why (offset, leader epoch) identifies a whole prefix
 *
 * Only the leader of leader epoch L appends entries of leader epoch L, to the end of its
 * own log, and a follower copies entries only after the leader has checked that the
 * follower's entry just before them has the same leader epoch as the leader's entry at
 * that offset. By induction (Raft's Log Matching property, Ongaro's thesis §3.5; Kafka's
 * leader epochs, KIP-101), two logs holding an entry with the same offset and leader epoch
 * hold the same entries up to it. So a fetch that names `from` and the leader epoch of the
 * entry at `from - 1` proves the follower's whole prefix, and the leader can count it.
 */

export interface Entry {
  readonly offset: number;
  /** The leader epoch of the leadership that appended it. */
  readonly leaderEpoch: number;
  readonly value: Uint8Array;
}

export class LogError extends Error {
  readonly code = 'LOG_INVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'LogError';
  }
}

export class PartitionLog {
  /** entries[i].offset === i: the log always starts at offset 0 (nothing is ever trimmed). */
  private readonly entries: Entry[] = [];

  /** The offset the next entry gets: everything below it is held. */
  get end(): number {
    return this.entries.length;
  }

  /** The leader epoch of the entry at `offset`, or 0 below offset 0 (every log agrees on the empty prefix). */
  leaderEpochAt(offset: number): number | undefined {
    if (offset < 0) return 0;
    return this.entries[offset]?.leaderEpoch;
  }

  /** The leader epoch of the last entry; 0 when empty. */
  get lastLeaderEpoch(): number {
    return this.leaderEpochAt(this.end - 1) ?? 0;
  }

  /** The leader's append, at its leader epoch (never below the last entry's). */
  append(leaderEpoch: number, value: Uint8Array): Entry {
    if (leaderEpoch < this.lastLeaderEpoch) {
      throw new LogError(
        `append at leader epoch ${leaderEpoch} after an entry of leader epoch ${this.lastLeaderEpoch}`,
      );
    }
    const e: Entry = { offset: this.end, leaderEpoch, value };
    this.entries.push(e);
    return e;
  }

  /** A follower's copy of its leader's entries, which must start at `end` (after `matches` held). */
  appendCopied(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.offset !== this.end)
        throw new LogError(`copied entry ${e.offset} does not follow ${this.end - 1}`);
      if (e.leaderEpoch < this.lastLeaderEpoch) {
        throw new LogError(
          `copied entry ${e.offset} of leader epoch ${e.leaderEpoch} after leader epoch ${this.lastLeaderEpoch}`,
        );
      }
      this.entries.push(e);
    }
  }

  /** Drop every entry at `offset` and after. */
  truncate(offset: number): void {
    if (offset < this.end) this.entries.length = Math.max(0, offset);
  }

  /** Entries `from` (inclusive) to `to` (exclusive, capped at the end), at most `max` of them. */
  read(from: number, to: number, max: number): Entry[] {
    const stop = Math.min(to, this.end, from + max);
    return from >= stop ? [] : this.entries.slice(Math.max(0, from), stop);
  }

  /**
   * Whether a follower that holds `from` entries, the last of leader epoch
   * `lastLeaderEpoch`, holds exactly this log's first `from` entries (see the module comment).
   */
  matches(from: number, lastLeaderEpoch: number): boolean {
    return from <= this.end && this.leaderEpochAt(from - 1) === lastLeaderEpoch;
  }

  /**
   * Where entries of leader epochs up to `leaderEpoch` end in this log: the first offset of
   * a later leader epoch, else the end.
   */
  endOffsetFor(leaderEpoch: number): number {
    // Leader epochs never go down along the log: binary search for the first entry above.
    let lo = 0;
    let hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.leaderEpoch > leaderEpoch) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * For a follower whose prefix does not match (`matches` is false): the offset it must
   * truncate to. Its last entry differs from this log's (or this log has no entry there),
   * so it goes at least one below `from`; and entries of its last leader epoch past where
   * that leader epoch ends here cannot be this log's. The follower checks again from
   * there, so the answer only has to be below `from` and not below the real divergence
   * point.
   */
  truncationPoint(from: number, lastLeaderEpoch: number): number {
    return Math.max(0, Math.min(from - 1, this.endOffsetFor(lastLeaderEpoch)));
  }
}
