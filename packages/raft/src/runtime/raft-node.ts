/**
 * `RaftNode`: the thin asynchronous runtime around the synchronous core. It owns the
 * timers that produce ticks, runs the host contract of `Ready` (send → persist → send
 * what depended on it → apply → acknowledge), and turns proposals and reads into
 * promises. Everything it touches comes in through interfaces: `LogStorage`,
 * `Transport`, `StateMachine`, `TimerProvider`.
 */

import type { StateMachine } from '../contracts/state-machine.js';
import type { LogReader, LogStorage, SnapshotStore } from '../contracts/storage.js';
import type { Transport } from '../contracts/transport.js';
import { bootstrapEntries, decodeConfChange } from '../core/confchange.js';
import type { CoreConfig, CoreOptions } from '../core/config.js';
import type { RaftEvent } from '../core/events.js';
import { mergeReadies } from '../core/merge.js';
import { RaftCore } from '../core/raft.js';
import type { RandomInt } from '../core/random.js';
import type { CoreStatus, Ready } from '../core/ready.js';
import { InvalidConfigError, NotLeaderError, RaftError, RaftErrorCode } from '../errors.js';
import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  type NodeId,
  type Role,
  type SnapshotMeta,
} from '../types.js';
import { Emitter } from './emitter.js';
import { PendingRequests } from './pending.js';
import { Snapshotter } from './snapshotter.js';
import { systemTimers, type TimerProvider } from './timers.js';

export interface RaftNodeOptions<R = unknown> {
  id: NodeId;
  storage: LogStorage;
  transport: Transport;
  stateMachine: StateMachine<R>;
  /**
   * The voters of a brand-new cluster. Used only when the storage is empty; afterwards
   * membership comes from storage and the log.
   */
  members?: readonly NodeId[];
  /** Milliseconds per tick. Default 10. */
  tickMs?: number;
  /** Leader heartbeat interval. Default 50 ms. */
  heartbeatIntervalMs?: number;
  /**
   * Minimum election timeout; the actual timeout is drawn from (this, 2 × this]. Also the
   * CheckQuorum window and the leader-stickiness lease. Default 150 ms.
   */
  electionTimeoutMs?: number;
  /** Core options (PreVote, CheckQuorum, flow-control limits). Defaults suit a LAN. */
  raft?: Partial<Omit<CoreOptions, 'electionTicks' | 'heartbeatTicks'>>;
  /**
   * With `raft.leaseReads`: the most any member's clock may run faster or slower than
   * another's, as a ratio (0.1: ten percent). A lease read is served while less than
   * (electionTimeout − 2 ticks) × (1 − this) / (1 + this) has passed on this node's
   * monotonic clock since the heartbeat a quorum acknowledged. Clocks drifting further
   * apart, or a clock that jumps, can make a lease read stale. Default 0.1.
   */
  maxClockDriftRatio?: number;
  /** Deadline for proposals and reads that do not pass their own. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** The client-facing address of a member, for not-leader answers. */
  addressOf?: (id: NodeId) => string | null;
  timers?: TimerProvider;
  /**
   * The host drives the ticks by calling `tick()`; the node sets no tick interval of its
   * own. For hosts of many nodes, which tick them all from one timer and stop ticking the
   * idle ones (`@quorate/multiraft`). Ticks only pace elections and heartbeats: a node
   * ticked late or not at all stays safe, it only reacts later. Not with `raft.leaseReads`,
   * whose lease is counted in ticks. Default false.
   */
  externalTicks?: boolean;
  random?: RandomInt;
  /**
   * Snapshots and log compaction. Needs a state machine with `snapshot` and `restore`.
   * A snapshot is taken when `everyEntries` entries, or `everyBytes` bytes of entry data,
   * were applied since the last one (whichever comes first; by default 100,000 entries
   * and no byte limit); the log is then compacted up to `keepEntries` before it (a margin for slow
   * followers, who otherwise need the snapshot).
   *
   * `phaseEntries` (0 ≤ phase < everyEntries) places this member's snapshots by count at the
   * indexes `k × everyEntries + phaseEntries` instead of `everyEntries` after the last one, at
   * least half of `everyEntries` apart. Members given different phases take their snapshots
   * at different times, so their disks and CPUs are not all busy with one at once (a write
   * needs a majority). Unset: counted from the last snapshot, as members in step do.
   */
  snapshots?: {
    store: SnapshotStore;
    everyEntries?: number;
    everyBytes?: number;
    keepEntries?: number;
    phaseEntries?: number;
  };
  /**
   * A tap on every `Ready` the runtime takes from the core, called synchronously before
   * anything in it is sent, persisted or applied. For tracing and for checkers (the
   * simulator in `@quorate/sim` checks Raft's invariants through it); it must not
   * mutate the ready or call into the node.
   */
  onReady?: (rd: Readonly<Ready>) => void;
  /**
   * Builds the core (default: `new RaftCore(config, storage)`). A seam for fault
   * injection: the simulator's own tests plant known bugs through a subclass here.
   */
  createCore?: (config: CoreConfig, storage: LogReader) => RaftCore;
}

/** What the runtime reports, for metrics and logs (see `@quorate/metrics`). */
export type RaftNodeEvent =
  | RaftEvent
  | { type: 'electionDuration'; term: number; ms: number; won: boolean }
  | { type: 'persisted'; entries: number; bytes: number; ms: number; synced: boolean }
  | { type: 'appliedBatch'; entries: number; index: number; ms: number }
  | { type: 'commit'; index: number }
  | { type: 'proposal'; ok: boolean; code?: string }
  | { type: 'stopped'; error: RaftError | null }
  | { type: 'membershipApplied'; index: number; change: ConfChange; conf: ConfState }
  | { type: 'snapshotTaken'; index: number; bytes: number; ms: number; pauseMs: number }
  | { type: 'snapshotSent'; to: NodeId; index: number; ok: boolean; ms: number }
  | { type: 'snapshotInstalled'; index: number; ms: number };

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface NodeStatus extends CoreStatus {
  readonly leaderAddress: string | null;
  readonly running: boolean;
}

const defaultRandom: RandomInt = (n) => Math.floor(Math.random() * n);

/** The most ticks the node's own ticker runs for one firing of its timer (see `onTimer`). */
const MAX_TICKS_PER_FIRE = 3;

export class RaftNode<R = unknown> {
  readonly id: NodeId;
  readonly events = new Emitter<RaftNodeEvent>();
  private readonly opts: RaftNodeOptions<R>;
  private readonly timers: TimerProvider;
  private core!: RaftCore;
  private running = false;
  private stopping: Promise<void> | null = null;
  private fatal: RaftError | null = null;
  private ticker: unknown = null;
  /** When the node's own ticker started, and the ticks it has run since (see `onTimer`). */
  private tickEpoch = 0;
  private ticksRun = 0;
  /** The monotonic time of recent ticks, by tick count modulo its length. */
  private readonly tickTimes = new Array<number>(1024).fill(Number.NEGATIVE_INFINITY);
  /** How long a lease lasts on this node's clock (ms), from the drift bound. */
  private leaseMs = 0;
  /** Reads served under the leader's lease (without a heartbeat round). */
  leaseReadsServed = 0;
  private sweeper: unknown = null;
  private scheduled = false;

  // Persistence: readies waiting for the disk, and whether a write is under way.
  private readonly toPersist: Ready[] = [];
  private persisting = false;
  private persistIdle: Promise<void> = Promise.resolve();
  private persistIdleResolve: (() => void) | null = null;

  // Apply: committed entries (or a snapshot to restore) waiting for the state machine, in order.
  private readonly toApply: (Entry[] | SnapshotMeta)[] = [];
  /** Own snapshots, compaction, and snapshots sent to and received from other members. */
  private readonly snapshots: Snapshotter<R>;
  private applying = false;
  private appliedIndex = 0;

  /** Proposals, reads and transfers waiting for an outcome. */
  private readonly pending = new PendingRequests((o) => this.events.emit({ type: 'proposal', ...o }));
  private lastCommit = 0;
  private electionStartedAt: number | null = null;

  constructor(opts: RaftNodeOptions<R>) {
    this.opts = opts;
    this.id = opts.id;
    this.timers = opts.timers ?? systemTimers;
    this.snapshots = new Snapshotter(opts, this.events, this.timers, {
      id: this.id,
      core: () => this.core,
      running: () => this.running,
      applied: () => this.appliedIndex,
      schedule: () => this.schedule(),
    });
  }

  private get tickMs(): number {
    return this.opts.tickMs ?? 10;
  }

  private get requestTimeoutMs(): number {
    return this.opts.requestTimeoutMs ?? 5000;
  }

  /** Bootstrap a fresh store, build the core, start the transport and the ticker. */
  async start(): Promise<void> {
    if (this.running) return;
    const o = this.opts;
    const tick = this.tickMs;
    const hb = o.heartbeatIntervalMs ?? 50;
    const et = o.electionTimeoutMs ?? 150;
    const issues: string[] = [];
    if (!(tick > 0)) issues.push(`tickMs must be positive (got ${tick})`);
    if (!(hb >= tick)) issues.push(`heartbeatIntervalMs (${hb}) must be at least tickMs (${tick})`);
    const drift = o.maxClockDriftRatio ?? 0.1;
    if (!(drift >= 0 && drift < 1)) issues.push(`maxClockDriftRatio must be in [0, 1) (got ${drift})`);
    if (o.externalTicks && o.raft?.leaseReads) {
      issues.push('externalTicks cannot be combined with raft.leaseReads: a lease is counted in ticks');
    }
    if (!(et >= 2 * hb)) {
      issues.push(
        `electionTimeoutMs (${et}) must be at least twice heartbeatIntervalMs (${hb}); 3x or more is safer`,
      );
    }
    if (issues.length > 0) throw new InvalidConfigError(issues);

    await this.bootstrap();
    const applied = await this.snapshots.restoreAtStart();
    this.appliedIndex = applied;
    const config: CoreConfig = {
      ...o.raft,
      id: this.id,
      applied,
      random: o.random ?? defaultRandom,
      electionTicks: Math.max(2, Math.round(et / tick)),
      heartbeatTicks: Math.max(1, Math.round(hb / tick)),
      onEvent: (e) => this.onCoreEvent(e),
    };
    this.core = o.createCore ? o.createCore(config, o.storage) : new RaftCore(config, o.storage);
    const electionTicks = config.electionTicks!;
    this.leaseMs = Math.max(0, (electionTicks - 2) * tick * ((1 - drift) / (1 + drift)));
    this.tickTimes.fill(Number.NEGATIVE_INFINITY);
    this.tickTimes[this.core.tickCount % this.tickTimes.length] = this.timers.now();
    this.lastCommit = this.core.commitIndex;
    this.running = true;
    await o.transport.start({
      onMessage: (m) => this.onMessage(m),
      onUnreachable: (peer) => {
        if (this.running) this.core.reportUnreachable(peer);
      },
      onSnapshot: (m, data) => this.snapshots.receive(m, data),
    });
    if (!o.externalTicks) {
      this.tickEpoch = this.timers.now();
      this.ticksRun = 0;
      this.ticker = this.timers.setInterval(() => this.onTimer(), tick);
    }
    this.sweeper = this.timers.setInterval(
      () => this.sweepDeadlines(),
      Math.max(20, Math.min(100, tick * 5)),
    );
    this.schedule();
  }

  private async bootstrap(): Promise<void> {
    const s = this.opts.storage;
    const init = s.initialState();
    const fresh =
      s.lastIndex() === 0 &&
      init.hardState.term === 0 &&
      init.conf.voters.length === 0 &&
      init.conf.learners.length === 0;
    const members = this.opts.members;
    if (!fresh || !members || members.length === 0) return;
    if (new Set(members).size !== members.length) {
      throw new InvalidConfigError([`members lists a node twice: ${members.join(', ')}`]);
    }
    const b = bootstrapEntries({ voters: [...members], learners: [], votersOutgoing: [] });
    await s.persist({ snapshot: null, entries: b.entries, hardState: b.hardState, mustSync: true });
  }

  // ---------------------------------------------------------------- public API

  /**
   * Replicate `data` and apply it. Resolves with the state machine's result on this node
   * once the entry is committed and applied. Rejects with `NotLeaderError` (with the
   * leader's id and address) on a follower, `TIMEOUT` (outcome unknown) after the
   * deadline, `PROPOSAL_DROPPED` (definitely not applied) if another entry took its slot.
   */
  propose(data: Uint8Array, opts: RequestOptions = {}): Promise<R> {
    const early = this.checkRunning();
    if (early) return Promise.reject(early);
    let slot: { index: number; term: number };
    try {
      slot = this.core.propose(data, EntryType.Normal);
    } catch (err) {
      this.events.emit({ type: 'proposal', ok: false, code: (err as RaftError).code });
      return Promise.reject(this.withAddress(err));
    }
    this.schedule();
    return this.pending.proposal<R>(slot.index, slot.term, this.deadline(opts), opts.signal);
  }

  /**
   * Change the membership by one member (see `core/confchange.ts`): add a learner,
   * promote it with `addVoter`, `remove` a member. Resolves with the new configuration
   * once the change is applied on this node.
   */
  changeMembership(cc: ConfChange, opts: RequestOptions = {}): Promise<ConfState> {
    const early = this.checkRunning();
    if (early) return Promise.reject(early);
    let slot: { index: number; term: number };
    try {
      slot = this.core.proposeConfChange(cc);
    } catch (err) {
      return Promise.reject(this.withAddress(err));
    }
    this.schedule();
    return this.pending.proposal<ConfState>(slot.index, slot.term, this.deadline(opts));
  }

  /**
   * A linearizable read barrier (ReadIndex): resolves once this node's state machine has
   * applied everything committed before the call, as confirmed by a quorum. Read the
   * state machine right after it resolves. Works on followers too (forwarded).
   */
  read(opts: RequestOptions = {}): Promise<void> {
    const early = this.checkRunning();
    if (early) return Promise.reject(early);
    const id = this.pending.nextReadId();
    const lease = this.leaseIndex();
    if (lease !== null) {
      // A leader within its lease: no heartbeat round, just wait to apply what was committed.
      const p = this.pending.read(id, this.deadline(opts), false, opts.signal);
      this.pending.readState(id, lease, false, this.appliedIndex);
      this.leaseReadsServed++;
      return p;
    }
    const forwarded = this.core.currentRole !== 'leader';
    try {
      this.core.readIndex(id);
    } catch (err) {
      return Promise.reject(this.withAddress(err));
    }
    this.schedule();
    return this.pending.read(id, this.deadline(opts), forwarded, opts.signal);
  }

  /**
   * Hand leadership to `to`, or to the most caught-up voter when omitted. Resolves once
   * another node leads; rejects if the transfer is aborted or times out.
   */
  transferLeadership(to?: NodeId, opts: RequestOptions = {}): Promise<void> {
    const early = this.checkRunning();
    if (early) return Promise.reject(early);
    const target = to ?? this.bestTransferTarget();
    if (target === null) {
      return Promise.reject(
        new RaftError(RaftErrorCode.InvalidArgument, 'there is no other voter to hand leadership to'),
      );
    }
    try {
      this.core.transferLeadership(target);
    } catch (err) {
      return Promise.reject(this.withAddress(err));
    }
    this.schedule();
    const et = this.opts.electionTimeoutMs ?? 150;
    return this.pending.transfer(target, this.timers.now() + (opts.timeoutMs ?? et * 4));
  }

  /**
   * Resolves with the leader's id once this node knows one (other than `excluding`, for
   * waiting out a leader known to be gone). Rejects with `TIMEOUT` after `timeoutMs`
   * (default: the request timeout) and with `STOPPED` if the node stops first. While it
   * waits it holds a timer of the node's `TimerProvider`, which (unlike the node's own
   * ticks) keeps a Node.js process alive: a program with only in-memory plugs can simply
   * `await` it.
   */
  waitForLeader(opts: RequestOptions & { excluding?: NodeId } = {}): Promise<NodeId> {
    const early = this.checkRunning();
    if (early) return Promise.reject(early);
    const known = this.core.currentLeader;
    if (known !== null && known !== opts.excluding) return Promise.resolve(known);
    const ms = opts.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<NodeId>((resolve, reject) => {
      const done = (fn: () => void) => {
        offLeader();
        offStopped();
        this.timers.clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const offLeader = this.events.on('leaderChanged', (e) => {
        if (e.leaderId !== null && e.leaderId !== opts.excluding) done(() => resolve(e.leaderId!));
      });
      const offStopped = this.events.on('stopped', (e) =>
        done(() => reject(e.error ?? new RaftError(RaftErrorCode.Stopped, `node ${this.id} stopped`))),
      );
      const timer = this.timers.setTimeout(
        () =>
          done(() =>
            reject(new RaftError(RaftErrorCode.Timeout, `node ${this.id} knew no leader within ${ms} ms`)),
          ),
        ms,
      );
      const onAbort = () =>
        done(() => reject(new RaftError(RaftErrorCode.Timeout, 'the wait was abandoned')));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** When a request given `opts` times out. */
  private deadline(opts: RequestOptions): number {
    return this.timers.now() + (opts.timeoutMs ?? this.requestTimeoutMs);
  }

  /** The voter (other than us) with the highest match index, as the leader sees it. */
  private bestTransferTarget(): NodeId | null {
    const st = this.core.status();
    if (!st.progress) return null;
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of st.voters) {
      if (id === this.id) continue;
      const pr = st.progress[id];
      if (pr && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    return best;
  }

  status(): NodeStatus {
    if (!this.core) {
      throw new RaftError(RaftErrorCode.Stopped, 'the node has not been started');
    }
    const s = this.core.status();
    return {
      ...s,
      applied: this.appliedIndex,
      leaderAddress: s.leaderId ? (this.opts.addressOf?.(s.leaderId) ?? null) : null,
      running: this.running,
    };
  }

  get role(): Role {
    return this.core ? this.core.currentRole : 'follower';
  }

  get isLeader(): boolean {
    return this.running && this.core.currentRole === 'leader';
  }

  get leaderId(): NodeId | null {
    return this.core ? this.core.currentLeader : null;
  }

  get term(): number {
    return this.core ? this.core.currentTerm : 0;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** The highest log index this node knows to be committed. */
  get commitIndex(): number {
    return this.core ? this.core.commitIndex : 0;
  }

  /** A snapshot of this node's own is being written (or recorded), or one is being installed. */
  get snapshotting(): boolean {
    return this.snapshots.busy;
  }

  /**
   * Stop: optionally hand leadership over first, finish the write in progress, fail
   * whatever is still pending (proposals with an unknown outcome), and close the
   * transport and the storage (the node owns them once started).
   */
  stop(opts: { transferLeadership?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.running && opts.transferLeadership && this.isLeader) {
        await this.transferLeadership(undefined, { timeoutMs: opts.timeoutMs ?? 1000 }).catch(() => {});
      }
      await this.shutdown(null);
    })();
    return this.stopping;
  }

  private async shutdown(error: RaftError | null): Promise<void> {
    if (!this.running && this.ticker === null && this.sweeper === null) return;
    this.running = false;
    if (this.ticker !== null) this.timers.clearInterval(this.ticker);
    if (this.sweeper !== null) this.timers.clearInterval(this.sweeper);
    this.ticker = null;
    this.sweeper = null;
    const stopped = error ?? new RaftError(RaftErrorCode.Stopped, `node ${this.id} stopped`);
    await this.opts.transport.close().catch(() => {});
    // Let the write in progress finish, so storage closes on a batch boundary.
    await this.persistIdle.catch(() => {});
    this.pending.stopped(this.id, stopped);
    await this.opts.storage.close().catch(() => {});
    this.events.emit({ type: 'stopped', error });
  }

  private checkRunning(): RaftError | null {
    if (this.fatal) return this.fatal;
    if (!this.running) return new RaftError(RaftErrorCode.Stopped, `node ${this.id} is not running`);
    return null;
  }

  private withAddress(err: unknown): unknown {
    if (err instanceof NotLeaderError && err.leaderId && this.opts.addressOf) {
      return err.withAddress(this.opts.addressOf(err.leaderId));
    }
    return err;
  }

  /**
   * Advance one tick, as the node's own ticker would (for `externalTicks`). Ignored while
   * the node is not running.
   */
  tick(): void {
    // Only for a node whose ticks its host drives: ticking a node that has its own ticker
    // would run its clocks fast (and, with lease reads, end a follower's promise early).
    if (!this.opts.externalTicks) return;
    this.onTick();
  }

  /**
   * Nothing is under way in the runtime: no proposal, read or transfer waiting, no batch
   * being persisted or applied, no snapshot work, no ready loop scheduled. A host may stop
   * ticking an idle node whose peers are caught up (quiescence).
   */
  get idle(): boolean {
    return (
      this.running &&
      !this.scheduled &&
      !this.persisting &&
      !this.applying &&
      this.toPersist.length === 0 &&
      this.toApply.length === 0 &&
      this.pending.empty &&
      !this.snapshots.busy
    );
  }

  /**
   * Start an election now (PreVote first when enabled), as the election timer would; ignored
   * on a leader or a non-voter. For hosts that know the leader is gone before the timer does
   * (`@quorate/multiraft`'s liveness). Elections are safe at any time; this only moves one.
   */
  campaign(): void {
    if (!this.running) return;
    this.core.campaign();
    this.schedule();
  }

  /**
   * Forget the leader, known to be gone by other means (see `RaftCore.forgetLeader`): this
   * follower then grants votes at once instead of waiting out the old leader's election
   * timeout. Ignored with lease reads, on a leader or a candidate.
   */
  forgetLeader(): void {
    if (!this.running) return;
    this.core.forgetLeader();
    this.schedule();
  }

  /** A proposal, read or transfer started on this node is waiting for its outcome. */
  get waiting(): boolean {
    return !this.pending.empty;
  }

  // ---------------------------------------------------------------- inputs

  /**
   * The node's own ticker fired. An interval timer that fires late (a busy event loop)
   * is rescheduled from when it ran, so its ticks drift behind the clock, and every
   * timeout measured in ticks stretches with the load: an election after a leader's
   * crash came a fifth later under load. Ticks are counted against the clock instead:
   * those due since the ticker started and not run yet are run now, at most
   * {@link MAX_TICKS_PER_FIRE} at once. After a longer stall (a pause, a stopped
   * process) the rest are dropped, not run in a burst. Ticks never run ahead of the
   * clock, so a follower's promise to refuse votes for an election timeout of its ticks
   * lasts at least as long in time as before (lease reads rely on it).
   */
  private onTimer(): void {
    const due = Math.floor((this.timers.now() - this.tickEpoch) / this.tickMs);
    const behind = due - this.ticksRun;
    if (behind <= 0) return;
    const n = Math.min(behind, MAX_TICKS_PER_FIRE);
    this.ticksRun = behind > MAX_TICKS_PER_FIRE ? due : this.ticksRun + n;
    for (let i = 0; i < n; i++) this.onTick();
  }

  private onTick(): void {
    if (!this.running) return;
    this.core.tick();
    // When each tick happened on this node's monotonic clock: leases are judged in time.
    this.tickTimes[this.core.tickCount % this.tickTimes.length] = this.timers.now();
    // With a host's ticks, most change nothing to send or write: no turn of the ready loop
    // for them (a host of a thousand groups would otherwise run a thousand empty loops per
    // tick). The node's own ticker keeps one turn per tick, as it always has.
    if (!this.opts.externalTicks || this.core.hasReady()) this.schedule();
  }

  /**
   * Where a lease read may read now, or null (no lease, or it has run out in real time:
   * after a pause the ticks lag, the clock does not).
   */
  private leaseIndex(): number | null {
    const l = this.core.leaseRead();
    if (!l) return null;
    if (this.core.tickCount - l.sinceTick >= this.tickTimes.length) return null;
    const since = this.tickTimes[l.sinceTick % this.tickTimes.length]!;
    return this.timers.now() - since < this.leaseMs ? l.index : null;
  }

  private onMessage(m: Message): void {
    if (!this.running) return;
    // A snapshot comes only through `onSnapshot`, once its data is stored. Alone it names a
    // state nobody holds here, and the core would install it: drop it.
    if (m.type === 'snapshot') return;
    this.core.step(m);
    this.schedule();
  }

  private onCoreEvent(e: RaftEvent): void {
    const now = this.timers.now();
    if (e.type === 'electionStarted') {
      if (this.electionStartedAt === null || !e.preVote) this.electionStartedAt ??= now;
    } else if (e.type === 'electionWon' || (e.type === 'roleChanged' && e.to === 'follower')) {
      if (this.electionStartedAt !== null) {
        this.events.emit({
          type: 'electionDuration',
          term: e.term,
          ms: now - this.electionStartedAt,
          won: e.type === 'electionWon',
        });
        this.electionStartedAt = null;
      }
    }
    if (e.type === 'leaderChanged') {
      const leader = e.leaderId;
      this.pending.leaderChanged(
        leader,
        this.id,
        () => this.withAddress(new NotLeaderError(leader, this.term)) as NotLeaderError,
      );
    }
    this.events.emit(e);
  }

  // ---------------------------------------------------------------- the ready loop

  private schedule(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    this.timers.defer(() => {
      this.scheduled = false;
      this.processReady();
    });
  }

  private processReady(): void {
    if (!this.running) return;
    const core = this.core;
    const tap = this.opts.onReady;
    try {
      while (core.hasReady()) {
        const rd = core.ready();
        tap?.(rd);
        for (const m of rd.messages) {
          if (m.type === 'snapshot') void this.snapshots.send(m);
          else this.opts.transport.send(m);
        }
        this.toPersist.push(rd);
        if (rd.snapshot) this.toApply.push(rd.snapshot);
        if (rd.committedEntries.length > 0) this.toApply.push(rd.committedEntries as Entry[]);
        for (const rs of rd.readStates)
          this.pending.readState(rs.requestId, rs.index, rs.failed, this.appliedIndex);
      }
    } catch (err) {
      void this.die(err);
      return;
    }
    const commit = core.commitIndex;
    if (commit !== this.lastCommit) {
      this.lastCommit = commit;
      this.events.emit({ type: 'commit', index: commit });
    }
    if (!this.persisting && this.toPersist.length > 0) void this.persistLoop();
    if (!this.applying && this.toApply.length > 0) void this.applyLoop();
  }

  /** Group commit: every ready queued while a write ran goes into the next write. */
  private async persistLoop(): Promise<void> {
    let failure: RaftError | null = null;
    this.persisting = true;
    this.persistIdle = new Promise((r) => {
      this.persistIdleResolve = r;
    });
    try {
      while (this.toPersist.length > 0 && this.running) {
        const batch = this.toPersist.splice(0);
        const merged = mergeReadies(batch);
        if (merged.hardState || merged.entries.length > 0 || merged.snapshot) {
          const t0 = this.timers.now();
          await this.opts.storage.persist(merged);
          let bytes = 0;
          for (const e of merged.entries) bytes += e.data.byteLength;
          this.events.emit({
            type: 'persisted',
            entries: merged.entries.length,
            bytes,
            ms: this.timers.now() - t0,
            synced: merged.mustSync,
          });
        }
        if (!this.running) break;
        for (const rd of batch) {
          this.core.persisted(rd);
          for (const m of rd.messagesAfterPersist) this.opts.transport.send(m);
        }
        this.processReady();
      }
    } catch (err) {
      failure = new RaftError(
        RaftErrorCode.StorageFailed,
        `storage failed; node ${this.id} stops: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    } finally {
      this.persisting = false;
      this.persistIdleResolve?.();
    }
    // Outside the loop: shutting down waits for the loop to be idle.
    if (failure) await this.die(failure);
  }

  private async applyLoop(): Promise<void> {
    this.applying = true;
    const sm = this.opts.stateMachine;
    try {
      while (this.toApply.length > 0 && this.running) {
        const item = this.toApply.shift()!;
        const t0 = this.timers.now();
        if (!Array.isArray(item)) {
          // A snapshot from the leader replaces the state (its data is in the store).
          await sm.restore!(item, this.opts.snapshots!.store.read(item));
          this.appliedIndex = item.index;
          this.snapshots.installed(item);
          this.events.emit({ type: 'snapshotInstalled', index: item.index, ms: this.timers.now() - t0 });
          this.pending.serveReads(this.appliedIndex);
          this.schedule();
          continue;
        }
        const ents = item;
        for (const e of ents) {
          this.snapshots.counted(e.data.byteLength);
          let result: R | undefined;
          if (e.type === EntryType.Normal && e.data.byteLength > 0) {
            const r = sm.apply(e);
            result = r instanceof Promise ? await r : r;
          } else if (e.type === EntryType.ConfChange) {
            const cc = decodeConfChange(e.data);
            const conf = this.core.applyConfChange(cc);
            this.events.emit({ type: 'membershipApplied', index: e.index, change: cc, conf });
            result = conf as R;
          }
          this.appliedIndex = e.index;
          this.pending.applied(e, result);
        }
        const last = ents[ents.length - 1]!;
        if (!this.running) break;
        this.core.applied(last.index);
        this.events.emit({
          type: 'appliedBatch',
          entries: ents.length,
          index: last.index,
          ms: this.timers.now() - t0,
        });
        this.pending.serveReads(this.appliedIndex);
        this.snapshots.maybeTake();
        this.schedule();
      }
    } catch (err) {
      await this.die(
        new RaftError(
          RaftErrorCode.ProtocolViolation,
          `the state machine threw while applying; node ${this.id} stops so replicas cannot diverge: ${(err as Error).message}`,
          { cause: err },
        ),
      );
    } finally {
      this.applying = false;
    }
  }

  /** Fail what passed its deadline. */
  private sweepDeadlines(): void {
    this.pending.sweep(this.timers.now());
  }

  private async die(err: unknown): Promise<void> {
    const e =
      err instanceof RaftError
        ? err
        : new RaftError(
            RaftErrorCode.ProtocolViolation,
            `internal error: ${(err as Error)?.message ?? String(err)}`,
            {
              cause: err,
            },
          );
    if (this.fatal) return;
    this.fatal = e;
    await this.shutdown(e);
  }
}
