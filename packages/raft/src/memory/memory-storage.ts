import type { InitialState, LogStorage, PersistBatch } from '../contracts/storage.js';
import { bootstrapEntries } from '../core/confchange.js';
import { CompactedError, RaftError, RaftErrorCode, UnavailableError } from '../errors.js';
import {
  type ConfState,
  type Entry,
  emptyHardState,
  entrySize,
  type HardState,
  type SnapshotMeta,
} from '../types.js';

export const emptyConfState: ConfState = Object.freeze({ voters: [], learners: [], votersOutgoing: [] });

/**
 * A `LogStorage` in memory: for tests, the simulator, and embedders whose durability
 * comes from elsewhere. Nothing survives the process. Batches apply synchronously, so
 * `persist` resolves at once (in order, as the contract requires).
 */
export class MemoryStorage implements LogStorage {
  private hard: HardState = emptyHardState;
  /** The latest snapshot (index 0: none yet). */
  private snap: SnapshotMeta;
  /** The compaction point: entries start after it; its term is kept. */
  private base = { index: 0, term: 0 };
  /** ents[i].index === base.index + 1 + i */
  private ents: Entry[] = [];
  private closed = false;

  /**
   * An empty store, or — given a membership — the store of a founding member of a new
   * cluster: its log starts with the membership entries (see `bootstrapEntries`).
   */
  constructor(conf: ConfState = emptyConfState) {
    this.snap = { index: 0, term: 0, conf: emptyConfState };
    if (conf.voters.length > 0 || conf.learners.length > 0) {
      const b = bootstrapEntries(conf);
      this.ents = b.entries;
      this.hard = b.hardState;
    }
  }

  initialState(): InitialState {
    return { hardState: this.hard, conf: this.snap.conf };
  }

  firstIndex(): number {
    return this.base.index + 1;
  }

  lastIndex(): number {
    return this.base.index + this.ents.length;
  }

  term(index: number): number {
    if (index === this.base.index) return this.base.term;
    if (index < this.base.index) throw new CompactedError(index, this.firstIndex());
    const e = this.ents[index - this.base.index - 1];
    if (!e) throw new UnavailableError(index, this.lastIndex());
    return e.term;
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let size = 0;
    const base = this.base.index + 1;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - base]!;
      size += entrySize(e);
      if (size > maxBytes && out.length > 0) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): SnapshotMeta {
    return this.snap;
  }

  /** The whole hard state, for tests and the simulator. */
  hardState(): HardState {
    return this.hard;
  }

  persist(batch: PersistBatch): Promise<void> {
    try {
      this.persistSync(batch);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Apply a batch at once (the simulator controls timing itself). */
  persistSync(batch: PersistBatch): void {
    this.checkOpen();
    if (batch.snapshot) {
      this.snap = batch.snapshot;
      this.base = { index: batch.snapshot.index, term: batch.snapshot.term };
      this.ents = [];
    }
    const ents = batch.entries;
    if (ents.length > 0) {
      const from = ents[0]!.index;
      if (from < this.firstIndex()) {
        throw new RaftError(
          RaftErrorCode.ProtocolViolation,
          `cannot append at ${from}: the log starts at ${this.firstIndex()}`,
        );
      }
      if (from > this.lastIndex() + 1) {
        throw new RaftError(
          RaftErrorCode.ProtocolViolation,
          `cannot append at ${from}: the log ends at ${this.lastIndex()} (a gap)`,
        );
      }
      const keep = from - this.base.index - 1;
      if (keep < this.ents.length) this.ents.length = keep; // a conflicting suffix goes
      for (const e of ents) this.ents.push(e);
    }
    if (batch.hardState) this.hard = batch.hardState;
  }

  compact(index: number, snapshot: SnapshotMeta): Promise<void> {
    try {
      this.checkOpen();
      if (snapshot.index < index) {
        throw new RaftError(
          RaftErrorCode.InvalidArgument,
          `cannot compact to ${index}: the snapshot covers only up to ${snapshot.index}`,
        );
      }
      const first = this.base.index;
      if (index > first) {
        if (index > this.lastIndex()) {
          throw new RaftError(
            RaftErrorCode.InvalidArgument,
            `cannot compact to ${index}: the log ends at ${this.lastIndex()}`,
          );
        }
        const term = this.term(index);
        this.ents = this.ents.slice(index - first);
        this.base = { index, term };
      }
      this.snap = snapshot;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Open a closed store again, as a restarted process would find it (for tests). */
  reopen(): this {
    this.closed = false;
    return this;
  }

  private checkOpen(): void {
    if (this.closed) throw new RaftError(RaftErrorCode.Stopped, 'the storage is closed');
  }
}
