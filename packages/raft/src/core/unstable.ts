/**
 * The tail of the log that the host has not yet confirmed durable: entries (and at most
 * one incoming snapshot) that the core has accepted but storage does not hold yet.
 *
 * Invariants:
 * - `entries[i].index === offset + i`: the tail is dense and starts at `offset`.
 * - Everything before `offset` is in storage (or covered by `snapshot`).
 * - `offset <= offsetInProgress <= offset + entries.length`: entries below
 *   `offsetInProgress` were handed to the host in a ready and are being persisted.
 *   They stay here until the host confirms, so reads never hit a half-written store.
 */
import type { Entry, SnapshotMeta } from '../types.js';

export class Unstable {
  snapshot: SnapshotMeta | null = null;
  snapshotInProgress = false;
  entries: Entry[] = [];
  offset: number;
  offsetInProgress: number;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.index : undefined;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      return this.snapshot && this.snapshot.index === index ? this.snapshot.term : undefined;
    }
    const e = this.entries[index - this.offset];
    return e?.term;
  }

  /** Entries not yet handed to the host. */
  nextEntries(): Entry[] {
    const from = this.offsetInProgress - this.offset;
    if (from >= this.entries.length) return [];
    return this.entries.slice(from);
  }

  nextSnapshot(): SnapshotMeta | null {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : null;
  }

  /** Mark everything currently here as handed to the host. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /**
   * The host made entries up to (index, term) durable. If the tail was overwritten since
   * (a new leader replaced it), the term no longer matches and nothing is released: the
   * replacing entries follow in a later batch that will confirm them.
   */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    if (t === undefined || t !== term || index < this.offset) return;
    const n = index + 1 - this.offset;
    this.entries = this.entries.slice(n);
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.index === index) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(s: SnapshotMeta): void {
    this.offset = s.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /** Append `ents` (dense, non-empty), replacing whatever is at or after `ents[0].index`. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    const end = this.offset + this.entries.length;
    if (from === end) {
      for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      // Replaces the whole tail, and part of what storage holds.
      this.entries = ents.slice();
      this.offset = from;
      this.offsetInProgress = from;
    } else {
      this.entries = this.entries.slice(0, from - this.offset);
      for (const e of ents) this.entries.push(e);
      if (this.offsetInProgress > from) this.offsetInProgress = from;
    }
  }

  /** Entries `[lo, hi)`; requires `offset <= lo <= hi <= offset + entries.length`. */
  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
