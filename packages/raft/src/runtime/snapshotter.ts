/**
 * Snapshots in the runtime: restoring the latest at start, taking our own when enough was
 * applied (then compacting the log), streaming ours to a follower that needs it, and
 * storing one received from the leader before the core may install it.
 *
 * The store keeps only its latest snapshot, which orders everything here: at most one
 * snapshot task of our own runs at a time (`snapshotTask`); a received snapshot waits for
 * it and none of ours starts while one is received or installed (`installing`); a
 * received snapshot the core declined must be named by the log as our own once applied
 * that far (`adoptPending`).
 */

import { canSendSnapshots, type SnapshotWriter } from '../contracts/index.js';
import type { RaftCore } from '../core/raft.js';
import { InvalidConfigError, RaftError, RaftErrorCode } from '../errors.js';
import type { Message, NodeId, SnapshotMeta } from '../types.js';
import type { Emitter } from './emitter.js';
import type { RaftNodeEvent, RaftNodeOptions } from './raft-node.js';
import type { TimerProvider } from './timers.js';

/** What the snapshotter needs of the node that owns it. */
export interface SnapshotHost {
  readonly id: NodeId;
  core(): RaftCore;
  running(): boolean;
  /** The index the state machine has applied. */
  applied(): number;
  /** Ask for the ready loop to run. */
  schedule(): void;
}

export class Snapshotter<R> {
  private lastSnapshotIndex = 0;
  /**
   * Our own snapshot (or the adoption of one) while it runs, else null: no second one
   * starts meanwhile, and a received snapshot waits for it.
   */
  private snapshotTask: Promise<void> | null = null;
  /** A snapshot from the leader is being received or installed: take none of our own. */
  private installing = false;
  /**
   * A snapshot from the leader that the core declined (it had the entries already) after
   * the store took it. The store keeps only its latest snapshot, so the log must name
   * that one as its own once the state machine has applied that far — as if it had been
   * taken here. Until then no snapshot of our own is taken (it would replace it).
   */
  private adoptPending: SnapshotMeta | null = null;
  /** Bytes of entry data applied since the last snapshot (for `snapshots.everyBytes`). */
  private bytesSinceSnapshot = 0;
  private readonly sendingSnapshot = new Set<NodeId>();

  constructor(
    private readonly opts: RaftNodeOptions<R>,
    private readonly events: Emitter<RaftNodeEvent>,
    private readonly timers: TimerProvider,
    private readonly host: SnapshotHost,
  ) {}

  /**
   * Bring the state machine to the latest snapshot, if any, and make the log agree with
   * it. Returns the applied index to start from.
   */
  async restoreAtStart(): Promise<number> {
    const store = this.opts.snapshots?.store;
    const meta = store?.latest() ?? null;
    if (!store || !meta || meta.index === 0) return 0;
    const sm = this.opts.stateMachine;
    if (!sm.restore) {
      throw new InvalidConfigError([
        'the snapshot store holds a snapshot but the state machine has no restore()',
      ]);
    }
    const s = this.opts.storage;
    let t: number | undefined;
    try {
      t = meta.index <= s.lastIndex() && meta.index >= s.firstIndex() - 1 ? s.term(meta.index) : undefined;
    } catch {
      t = undefined;
    }
    if (t === meta.term) {
      // The log holds the snapshot's last entry: just record the snapshot.
      if (s.snapshot().index < meta.index) await s.compact(s.firstIndex() - 1, meta);
    } else if (s.snapshot().index !== meta.index) {
      // A snapshot installed from the leader, but the crash came before the log was reset.
      await s.persist({ snapshot: meta, entries: [], hardState: null, mustSync: true });
    }
    const t0 = this.timers.now();
    await sm.restore(meta, store.read(meta));
    this.lastSnapshotIndex = meta.index;
    this.events.emit({ type: 'snapshotInstalled', index: meta.index, ms: this.timers.now() - t0 });
    return meta.index;
  }

  /** Take a snapshot when enough was applied since the last, then compact the log. */
  maybeTake(): void {
    const cfg = this.opts.snapshots;
    const sm = this.opts.stateMachine;
    if (!cfg || this.snapshotTask || this.installing) return;
    if (this.adoptPending) {
      this.maybeAdopt();
      return;
    }
    if (!sm.snapshot) return;
    const every = cfg.everyEntries ?? 100_000;
    const byCount = this.host.applied() >= nextByCount(this.lastSnapshotIndex, every, cfg.phaseEntries);
    const bySize = cfg.everyBytes !== undefined && this.bytesSinceSnapshot >= cfg.everyBytes;
    if (!byCount && !bySize) return;
    const meta = this.host.core().snapshotMetaAt(this.host.applied());
    if (!meta) return;
    // Counted from the view the snapshot takes now: what is applied while it is written
    // counts toward the next one.
    this.bytesSinceSnapshot = 0;
    this.runSnapshotTask(() => this.takeSnapshot(meta));
  }

  private runSnapshotTask(task: () => Promise<void>): void {
    // Set before the task starts, so that even its synchronous part counts as running.
    let done: () => void = () => {};
    this.snapshotTask = new Promise<void>((resolve) => {
      done = resolve;
    });
    const end = () => {
      this.snapshotTask = null;
      done();
    };
    // The tasks report their own failures (an `anomaly` event); none may escape here.
    task().then(end, end);
  }

  /** Record a declined leader's snapshot (see `adoptPending`) once applied that far. */
  private maybeAdopt(): void {
    const meta = this.adoptPending;
    if (!meta || this.host.applied() < meta.index) return;
    this.adoptPending = null;
    this.runSnapshotTask(async () => {
      const s = this.opts.storage;
      try {
        if (s.snapshot().index < meta.index) {
          const keep = this.opts.snapshots?.keepEntries ?? 10_000;
          await s.compact(Math.max(s.firstIndex() - 1, meta.index - keep), meta);
        }
        this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, meta.index);
        this.bytesSinceSnapshot = 0;
      } catch (err) {
        this.events.emit({
          type: 'anomaly',
          detail: `recording the snapshot at ${meta.index} in the log failed: ${(err as Error).message}`,
        });
      }
    });
  }

  /** Write a snapshot as of `meta.index` (the state machine's current view). */
  async takeSnapshot(meta: SnapshotMeta): Promise<void> {
    const cfg = this.opts.snapshots!;
    const t0 = this.timers.now();
    // The synchronous part (taking a consistent view) is the only pause for writes.
    const data = this.opts.stateMachine.snapshot!();
    const pauseMs = this.timers.now() - t0;
    let writer: SnapshotWriter | null = null;
    let bytes = 0;
    try {
      writer = await cfg.store.create(meta);
      for await (const chunk of data as AsyncIterable<Uint8Array>) {
        bytes += chunk.byteLength;
        await writer.write(chunk);
        // One chunk per turn of the event loop: the state machine builds the next one
        // only after timers (heartbeats), I/O and the ready loop had their turn. Neither
        // a synchronous iterable nor a store that buffers (its writes resolve at once)
        // would ever let go of the loop otherwise.
        await this.nextTurn();
      }
      await writer.commit();
      writer = null;
      // The store's latest is now ours: a declined leader's snapshot is no longer there.
      this.adoptPending = null;
      const s = this.opts.storage;
      const to = Math.max(s.firstIndex() - 1, meta.index - (cfg.keepEntries ?? 10_000));
      await s.compact(to, meta);
      this.lastSnapshotIndex = meta.index;
      this.events.emit({
        type: 'snapshotTaken',
        index: meta.index,
        bytes,
        ms: this.timers.now() - t0,
        pauseMs,
      });
    } catch (err) {
      await writer?.abort().catch(() => {});
      this.events.emit({
        type: 'anomaly',
        detail: `snapshot at ${meta.index} failed: ${(err as Error).message}`,
      });
    }
  }

  /** Resolves in a later turn of the event loop (through the timers, so the simulator decides when). */
  private nextTurn(): Promise<void> {
    return new Promise((resolve) => this.timers.defer(resolve));
  }

  /** Stream our latest snapshot to a follower that needs it. */
  async send(m: Extract<Message, { type: 'snapshot' }>): Promise<void> {
    const store = this.opts.snapshots?.store;
    const t = this.opts.transport;
    if (!store || !canSendSnapshots(t) || this.sendingSnapshot.has(m.to)) {
      if (!this.sendingSnapshot.has(m.to)) this.host.core().reportSnapshot(m.to, false);
      return;
    }
    this.sendingSnapshot.add(m.to);
    const t0 = this.timers.now();
    let ok = false;
    try {
      await t.sendSnapshot(m, store.read(m.snapshot));
      ok = true;
    } catch {
      ok = false;
    } finally {
      this.sendingSnapshot.delete(m.to);
    }
    if (!this.host.running()) return;
    this.host.core().reportSnapshot(m.to, ok);
    this.events.emit({
      type: 'snapshotSent',
      to: m.to,
      index: m.snapshot.index,
      ok,
      ms: this.timers.now() - t0,
    });
    this.host.schedule();
  }

  /** A snapshot arrives from the leader: store it whole, then let the core take it. */
  async receive(m: Extract<Message, { type: 'snapshot' }>, data: AsyncIterable<Uint8Array>): Promise<void> {
    const store = this.opts.snapshots?.store;
    if (!this.host.running()) throw new RaftError(RaftErrorCode.Stopped, `node ${this.host.id} is stopping`);
    if (!store || !this.opts.stateMachine.restore) {
      throw new RaftError(
        RaftErrorCode.InvalidArgument,
        `node ${this.host.id} cannot install snapshots (no snapshot store)`,
      );
    }
    let stored = false;
    if (m.term < this.host.core().currentTerm || m.snapshot.index <= this.host.core().commitIndex) {
      // Stale, or already covered: drain the data and let the core answer.
      for await (const _ of data) {
        // discard
      }
    } else {
      if (this.installing) {
        throw new RaftError(
          RaftErrorCode.Overloaded,
          `node ${this.host.id} is already receiving or installing a snapshot; the leader retries`,
        );
      }
      this.installing = true;
      try {
        // The store keeps only its latest snapshot: a snapshot of our own still being
        // written must finish first, or it would replace this newer one.
        if (this.snapshotTask) await this.snapshotTask;
        const w = await store.create(m.snapshot);
        try {
          for await (const chunk of data) await w.write(chunk);
          await w.commit();
        } catch (err) {
          await w.abort().catch(() => {});
          throw err;
        }
      } catch (err) {
        this.installing = false;
        throw err;
      }
      stored = true;
      this.adoptPending = null;
    }
    if (!this.host.running()) return;
    this.host.core().step(m);
    if (stored && this.host.core().pendingSnapshot?.index !== m.snapshot.index) {
      // Declined: the log caught up with it while it streamed. The store holds it now,
      // so the log must name it once applied that far.
      this.installing = false;
      this.adoptPending = m.snapshot;
      this.maybeTake();
    }
    this.host.schedule();
  }

  /** A snapshot is being taken, recorded, received or installed. */
  get busy(): boolean {
    return this.snapshotTask !== null || this.installing;
  }

  /** `bytes` of entry data were applied (for `snapshots.everyBytes`). */
  counted(bytes: number): void {
    this.bytesSinceSnapshot += bytes;
  }

  /** The state machine restored the leader's snapshot `meta`: it is now our latest. */
  installed(meta: SnapshotMeta): void {
    this.lastSnapshotIndex = meta.index;
    this.bytesSinceSnapshot = 0;
    this.installing = false;
    this.adoptPending = null;
  }
}

/**
 * The applied index at which the next snapshot by count is due, after one at `last`:
 * `every` later, or with a phase the first index `k × every + phase` at least `every / 2`
 * after it.
 */
export function nextByCount(last: number, every: number, phase: number | undefined): number {
  if (phase === undefined || !Number.isFinite(phase)) return last + every;
  const p = ((Math.floor(phase) % every) + every) % every;
  const from = last + Math.ceil(every / 2);
  return p + Math.ceil((from - p) / every) * every;
}
