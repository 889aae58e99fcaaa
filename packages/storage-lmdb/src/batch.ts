/**
 * What both log stores (`LmdbStorage`, one group; `LmdbGroupStore`'s views, many) do the
 * same way around their own LMDB layouts: decoding a range of stored entries, and holding
 * back a hard state whose only news is the commit index.
 */
import { type Entry, entrySize, type HardState, type PersistBatch } from '@quorate/raft';
import { decodeEntry, plainHardState } from './codec.js';

/**
 * Entries `[lo, hi)` from stored rows in index order, up to about `maxBytes` (at least
 * one). A gap or an undecodable row is corruption: `corrupt(why)` makes its error.
 */
export function readEntries(
  rows: Iterable<{ index: number; value: Uint8Array }>,
  lo: number,
  hi: number,
  maxBytes: number,
  corrupt: (why: string) => Error,
): Entry[] {
  const out: Entry[] = [];
  let size = 0;
  let want = lo;
  for (const { index, value } of rows) {
    if (index !== want) throw corrupt(`entry ${want} is missing (found ${index})`);
    const e = decodeEntry(index, value);
    if (typeof e === 'string') throw corrupt(e);
    size += entrySize(e);
    if (size > maxBytes && out.length > 0) return out;
    out.push(e);
    want++;
  }
  if (want !== hi) throw corrupt(`entries ${want} to ${hi - 1} are missing`);
  return out;
}

/**
 * The hard state a store writes. A batch that changes nothing but the commit index need
 * not be durable (the commit index can be learnt again), so it is held and rides with the
 * next durable write, or is written at close.
 */
export class HeldHardState {
  /** The newest hard state given, written or held. */
  private tip: HardState;
  private held: HardState | null = null;

  constructor(initial: HardState) {
    this.tip = initial;
  }

  /** When `batch` only moves the commit index: keep its hard state and return it (nothing to write). */
  hold(batch: PersistBatch): HardState | null {
    const h = batch.hardState;
    if (
      batch.mustSync !== false ||
      batch.snapshot ||
      batch.entries.length > 0 ||
      !h ||
      h.term !== this.tip.term ||
      h.vote !== this.tip.vote
    )
      return null;
    this.tip = this.held = plainHardState(h);
    return this.held;
  }

  /** The hard state a durable write of `batch` carries: its own, else the one held back (then no longer held). */
  forWrite(batch: PersistBatch): HardState | null {
    if (batch.hardState) {
      this.tip = plainHardState(batch.hardState);
      this.held = null;
      return this.tip;
    }
    return this.take();
  }

  /** What is held back, no longer held (to write at close). */
  take(): HardState | null {
    const h = this.held;
    this.held = null;
    return h;
  }
}

/**
 * Settles operations in call order: each promise from `settle` resolves after every
 * earlier one, once its own `op` has, and then runs `onDone` (what the operation's
 * success changes in the store's state) unless the store has failed meanwhile.
 */
export class InOrder {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly failure: () => Error | null) {}

  settle(op: Promise<void>, onDone: () => void): Promise<void> {
    const result = this.tail
      .then(() => op)
      .then(() => {
        const f = this.failure();
        if (f) throw f;
        onDone();
      });
    this.tail = result.then(
      () => {},
      () => {},
    );
    return result;
  }

  /** Settles once every operation given so far has. */
  idle(): Promise<void> {
    return this.tail;
  }
}
