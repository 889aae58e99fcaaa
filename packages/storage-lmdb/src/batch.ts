/**
 * What both log stores (`LmdbStorage`, one group; `LmdbGroupStore`'s views, many) do the
 * same way around their own LMDB layouts: decoding a range of stored entries, holding
 * back a hard state whose only news is the commit index, and sweeping compacted entries.
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

/** Compacted log entries deleted per write transaction (see {@link Sweeper}). */
export const SWEEP_KEYS = 2048;

/**
 * Deletes compacted entries in bounded steps: `step` queues one write transaction that
 * deletes at most {@link SWEEP_KEYS} of them and resolves to whether some may remain, or
 * returns null when the store is closing or failed. A transaction's callback runs on the
 * event loop, and one transaction for a whole interval's entries (100,000 at the default
 * snapshot interval) held it for 70-440 ms, time in which a leader sent no heartbeat; so
 * the loop turns between steps. One sweep runs at a time; a `request` during it (another
 * compaction) extends it.
 */
export class Sweeper {
  private running = false;
  private wanted = false;

  constructor(private readonly step: () => Promise<boolean> | null) {}

  request(): void {
    this.wanted = true;
    if (this.running) return;
    this.running = true;
    this.next();
  }

  private next(): void {
    // Cleared before the step's transaction runs: a request after this is swept by a later step.
    this.wanted = false;
    const done = this.step();
    if (!done) {
      this.running = false;
      return;
    }
    done.then(
      (more) => {
        if (more || this.wanted) this.next();
        else this.running = false;
      },
      () => {
        this.running = false;
      },
    );
  }
}
