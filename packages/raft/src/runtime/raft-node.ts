/**
 * `RaftNode`: the thin asynchronous runtime around the synchronous core. It owns the
 * timers that produce ticks, runs the host contract of `Ready` (send → persist → send
 * what depended on it → apply → acknowledge), and turns proposals and reads into
 * promises. Everything it touches comes in through interfaces: `LogStorage`,
 * `Transport`, `StateMachine`, `TimerProvider`.
 */

import type { StateMachine } from '../contracts/state-machine.js';
import type { LogStorage, SnapshotStore, SnapshotWriter } from '../contracts/storage.js';
import { canSendSnapshots, type Transport } from '../contracts/transport.js';
import { bootstrapEntries, decodeConfChange } from '../core/confchange.js';
import type { CoreOptions } from '../core/config.js';
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
  /** Deadline for proposals and reads that do not pass their own. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** The client-facing address of a member, for not-leader answers. */
  addressOf?: (id: NodeId) => string | null;
  timers?: TimerProvider;
  random?: RandomInt;
  /**
   * Snapshots and log compaction. Needs a state machine with `snapshot` and `restore`.
   * A snapshot is taken when `everyEntries` entries, or `everyBytes` bytes of entry data,
   * were applied since the last one (whichever comes first; by default 100,000 entries
   * and no byte limit); the log is then compacted up to `keepEntries` before it (a margin for slow
   * followers, who otherwise need the snapshot).
   */
  snapshots?: { store: SnapshotStore; everyEntries?: number; everyBytes?: number; keepEntries?: number };
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

interface PendingProposal<R> {
  readonly term: number;
  readonly deadline: number;
  resolve(r: R): void;
  reject(e: Error): void;
}

interface PendingRead {
  readonly deadline: number;
  /** Sent to a leader elsewhere: lost if the leader changes. */
  readonly forwarded: boolean;
  resolve(): void;
  reject(e: Error): void;
}

const defaultRandom: RandomInt = (n) => Math.floor(Math.random() * n);

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
  private sweeper: unknown = null;
  private scheduled = false;

  // Persistence: readies waiting for the disk, and whether a write is under way.
  private readonly toPersist: Ready[] = [];
  private persisting = false;
  private persistIdle: Promise<void> = Promise.resolve();
  private persistIdleResolve: (() => void) | null = null;

  // Apply: committed entries (or a snapshot to restore) waiting for the state machine, in order.
  private readonly toApply: (Entry[] | SnapshotMeta)[] = [];
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
  private applying = false;
  private appliedIndex = 0;

  private readonly proposals = new Map<number, PendingProposal<R>>();
  private readonly proposalOrder: number[] = [];
  private readonly reads = new Map<number, PendingRead>();
  private readonly readWaits: { index: number; id: number }[] = [];
  private readSeq = 0;
  private lastCommit = 0;
  private electionStartedAt: number | null = null;
  private readonly transfers: {
    to: NodeId | null;
    resolve(): void;
    reject(e: Error): void;
    deadline: number;
  }[] = [];

  constructor(opts: RaftNodeOptions<R>) {
    this.opts = opts;
    this.id = opts.id;
    this.timers = opts.timers ?? systemTimers;
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
    if (!(et >= 2 * hb)) {
      issues.push(
        `electionTimeoutMs (${et}) must be at least twice heartbeatIntervalMs (${hb}); 3x or more is safer`,
      );
    }
    if (issues.length > 0) throw new InvalidConfigError(issues);

    await this.bootstrap();
    const applied = await this.restoreSnapshot();
    this.core = new RaftCore(
      {
        ...o.raft,
        id: this.id,
        applied,
        random: o.random ?? defaultRandom,
        electionTicks: Math.max(2, Math.round(et / tick)),
        heartbeatTicks: Math.max(1, Math.round(hb / tick)),
        onEvent: (e) => this.onCoreEvent(e),
      },
      o.storage,
    );
    this.lastCommit = this.core.commitIndex;
    this.running = true;
    await o.transport.start({
      onMessage: (m) => this.onMessage(m),
      onUnreachable: (peer) => {
        if (this.running) this.core.reportUnreachable(peer);
      },
      onSnapshot: (m, data) => this.receiveSnapshot(m, data),
    });
    this.ticker = this.timers.setInterval(() => this.onTick(), tick);
    this.sweeper = this.timers.setInterval(
      () => this.sweepDeadlines(),
      Math.max(20, Math.min(100, tick * 5)),
    );
    this.schedule();
  }

  /**
   * Bring the state machine to the latest snapshot, if any, and make the log agree with
   * it. Returns the applied index to start from.
   */
  private async restoreSnapshot(): Promise<number> {
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
    this.appliedIndex = meta.index;
    this.lastSnapshotIndex = meta.index;
    this.events.emit({ type: 'snapshotInstalled', index: meta.index, ms: this.timers.now() - t0 });
    return meta.index;
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
    return new Promise<R>((resolve, reject) => {
      const deadline = this.timers.now() + (opts.timeoutMs ?? this.requestTimeoutMs);
      this.proposals.set(slot.index, { term: slot.term, deadline, resolve, reject });
      this.proposalOrder.push(slot.index);
      opts.signal?.addEventListener(
        'abort',
        () => {
          const p = this.proposals.get(slot.index);
          if (!p) return;
          this.proposals.delete(slot.index);
          p.reject(
            new RaftError(
              RaftErrorCode.OutcomeUnknown,
              'the proposal was abandoned; it may still be applied',
            ),
          );
        },
        { once: true },
      );
    });
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
    return new Promise<ConfState>((resolve, reject) => {
      const deadline = this.timers.now() + (opts.timeoutMs ?? this.requestTimeoutMs);
      this.proposals.set(slot.index, {
        term: slot.term,
        deadline,
        resolve: resolve as unknown as (r: R) => void,
        reject,
      });
      this.proposalOrder.push(slot.index);
    });
  }

  /**
   * A linearizable read barrier (ReadIndex): resolves once this node's state machine has
   * applied everything committed before the call, as confirmed by a quorum. Read the
   * state machine right after it resolves. Works on followers too (forwarded).
   */
  read(opts: RequestOptions = {}): Promise<void> {
    const early = this.checkRunning();
    if (early) return Promise.reject(early);
    const id = ++this.readSeq;
    const forwarded = this.core.currentRole !== 'leader';
    try {
      this.core.readIndex(id);
    } catch (err) {
      return Promise.reject(this.withAddress(err));
    }
    this.schedule();
    return new Promise<void>((resolve, reject) => {
      const deadline = this.timers.now() + (opts.timeoutMs ?? this.requestTimeoutMs);
      this.reads.set(id, { deadline, forwarded, resolve, reject });
      opts.signal?.addEventListener(
        'abort',
        () => this.failRead(id, new RaftError(RaftErrorCode.Timeout, 'the read was abandoned')),
        {
          once: true,
        },
      );
    });
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
    return new Promise<void>((resolve, reject) => {
      this.transfers.push({
        to: target,
        resolve,
        reject,
        deadline: this.timers.now() + (opts.timeoutMs ?? et * 4),
      });
    });
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

  /** A snapshot of this node's own is being written (or recorded), or one is being installed. */
  get snapshotting(): boolean {
    return this.snapshotTask !== null || this.installing;
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
    if (!this.running && this.ticker === null) return;
    this.running = false;
    if (this.ticker !== null) this.timers.clearInterval(this.ticker);
    if (this.sweeper !== null) this.timers.clearInterval(this.sweeper);
    this.ticker = null;
    this.sweeper = null;
    const stopped = error ?? new RaftError(RaftErrorCode.Stopped, `node ${this.id} stopped`);
    await this.opts.transport.close().catch(() => {});
    // Let the write in progress finish, so storage closes on a batch boundary.
    await this.persistIdle.catch(() => {});
    for (const p of this.proposals.values()) {
      p.reject(
        new RaftError(
          error ? RaftErrorCode.OutcomeUnknown : RaftErrorCode.OutcomeUnknown,
          `node ${this.id} stopped before the proposal was applied; it may still be committed by the cluster`,
          { cause: stopped },
        ),
      );
    }
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(stopped);
    this.reads.clear();
    for (const t of this.transfers.splice(0)) t.reject(stopped);
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

  // ---------------------------------------------------------------- inputs

  private onTick(): void {
    if (!this.running) return;
    this.core.tick();
    this.schedule();
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
    if (e.type === 'leaderChanged') this.onLeaderChanged(e.leaderId);
    this.events.emit(e);
  }

  private onLeaderChanged(leader: NodeId | null): void {
    // Reads forwarded to the old leader will not be answered.
    for (const [id, r] of this.reads) {
      if (r.forwarded) this.failRead(id, this.withAddress(new NotLeaderError(leader, this.term)) as Error);
    }
    if (leader !== this.id) {
      for (const t of this.transfers.splice(0)) {
        if (leader !== null) t.resolve();
        else this.transfers.push(t);
      }
    }
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
    try {
      while (core.hasReady()) {
        const rd = core.ready();
        for (const m of rd.messages) {
          if (m.type === 'snapshot') void this.sendSnapshot(m);
          else this.opts.transport.send(m);
        }
        this.toPersist.push(rd);
        if (rd.snapshot) this.toApply.push(rd.snapshot);
        if (rd.committedEntries.length > 0) this.toApply.push(rd.committedEntries as Entry[]);
        for (const rs of rd.readStates) this.onReadState(rs.requestId, rs.index, rs.failed);
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
          this.lastSnapshotIndex = item.index;
          this.bytesSinceSnapshot = 0;
          this.installing = false;
          this.adoptPending = null;
          this.events.emit({ type: 'snapshotInstalled', index: item.index, ms: this.timers.now() - t0 });
          this.serveReads();
          this.schedule();
          continue;
        }
        const ents = item;
        for (const e of ents) {
          this.bytesSinceSnapshot += e.data.byteLength;
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
          const p = this.proposals.get(e.index);
          if (p) {
            this.proposals.delete(e.index);
            if (p.term === e.term) {
              this.events.emit({ type: 'proposal', ok: true });
              p.resolve(result as R);
            } else {
              this.events.emit({ type: 'proposal', ok: false, code: RaftErrorCode.ProposalDropped });
              p.reject(
                new RaftError(
                  RaftErrorCode.ProposalDropped,
                  `the proposal at index ${e.index} was replaced by another leader's entry; it was not applied and is safe to retry`,
                ),
              );
            }
          }
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
        this.serveReads();
        this.maybeSnapshot();
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

  // ---------------------------------------------------------------- snapshots

  /** Take a snapshot when enough was applied since the last, then compact the log. */
  private maybeSnapshot(): void {
    const cfg = this.opts.snapshots;
    const sm = this.opts.stateMachine;
    if (!cfg || this.snapshotTask || this.installing) return;
    if (this.adoptPending) {
      this.maybeAdopt();
      return;
    }
    if (!sm.snapshot) return;
    const byCount = this.appliedIndex - this.lastSnapshotIndex >= (cfg.everyEntries ?? 100_000);
    const bySize = cfg.everyBytes !== undefined && this.bytesSinceSnapshot >= cfg.everyBytes;
    if (!byCount && !bySize) return;
    const meta = this.core.snapshotMetaAt(this.appliedIndex);
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
    if (!meta || this.appliedIndex < meta.index) return;
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

  /** Stream our latest snapshot to a follower that needs it. */
  private async sendSnapshot(m: Extract<Message, { type: 'snapshot' }>): Promise<void> {
    const store = this.opts.snapshots?.store;
    const t = this.opts.transport;
    if (!store || !canSendSnapshots(t) || this.sendingSnapshot.has(m.to)) {
      if (!this.sendingSnapshot.has(m.to)) this.core.reportSnapshot(m.to, false);
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
    if (!this.running) return;
    this.core.reportSnapshot(m.to, ok);
    this.events.emit({
      type: 'snapshotSent',
      to: m.to,
      index: m.snapshot.index,
      ok,
      ms: this.timers.now() - t0,
    });
    this.schedule();
  }

  /** A snapshot arrives from the leader: store it whole, then let the core take it. */
  private async receiveSnapshot(
    m: Extract<Message, { type: 'snapshot' }>,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const store = this.opts.snapshots?.store;
    if (!this.running) throw new RaftError(RaftErrorCode.Stopped, `node ${this.id} is stopping`);
    if (!store || !this.opts.stateMachine.restore) {
      throw new RaftError(
        RaftErrorCode.InvalidArgument,
        `node ${this.id} cannot install snapshots (no snapshot store)`,
      );
    }
    let stored = false;
    if (m.term < this.core.currentTerm || m.snapshot.index <= this.core.commitIndex) {
      // Stale, or already covered: drain the data and let the core answer.
      for await (const _ of data) {
        // discard
      }
    } else {
      if (this.installing) {
        throw new RaftError(
          RaftErrorCode.Overloaded,
          `node ${this.id} is already receiving or installing a snapshot; the leader retries`,
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
    if (!this.running) return;
    this.core.step(m);
    if (stored && this.core.pendingSnapshot?.index !== m.snapshot.index) {
      // Declined: the log caught up with it while it streamed. The store holds it now,
      // so the log must name it once applied that far.
      this.installing = false;
      this.adoptPending = m.snapshot;
      this.maybeSnapshot();
    }
    this.schedule();
  }

  private onReadState(id: number, index: number, failed: boolean): void {
    const r = this.reads.get(id);
    if (!r) return;
    if (failed) {
      this.failRead(
        id,
        new RaftError(
          RaftErrorCode.ReadIndexFailed,
          'leadership changed before the read was confirmed; retry',
        ),
      );
      return;
    }
    this.readWaits.push({ index, id });
    this.serveReads();
  }

  private serveReads(): void {
    if (this.readWaits.length === 0) return;
    let keep = 0;
    for (const w of this.readWaits) {
      if (w.index <= this.appliedIndex) {
        const r = this.reads.get(w.id);
        this.reads.delete(w.id);
        r?.resolve();
      } else {
        this.readWaits[keep++] = w;
      }
    }
    this.readWaits.length = keep;
  }

  private failRead(id: number, err: Error): void {
    const r = this.reads.get(id);
    if (!r) return;
    this.reads.delete(id);
    r.reject(err);
  }

  /** Fail what passed its deadline. Proposals time out with an unknown outcome. */
  private sweepDeadlines(): void {
    const now = this.timers.now();
    while (this.proposalOrder.length > 0) {
      const idx = this.proposalOrder[0]!;
      const p = this.proposals.get(idx);
      if (!p) {
        this.proposalOrder.shift();
        continue;
      }
      if (p.deadline > now) break;
      this.proposalOrder.shift();
      this.proposals.delete(idx);
      this.events.emit({ type: 'proposal', ok: false, code: RaftErrorCode.Timeout });
      p.reject(
        new RaftError(
          RaftErrorCode.Timeout,
          `the proposal at index ${idx} was not applied within its deadline; it may still be committed`,
        ),
      );
    }
    for (const [id, r] of this.reads) {
      if (r.deadline <= now)
        this.failRead(
          id,
          new RaftError(RaftErrorCode.Timeout, 'the read was not confirmed within its deadline; retry'),
        );
    }
    for (let i = this.transfers.length - 1; i >= 0; i--) {
      const t = this.transfers[i]!;
      if (t.deadline <= now) {
        this.transfers.splice(i, 1);
        t.reject(new RaftError(RaftErrorCode.Timeout, `leadership did not move to ${t.to} in time`));
      }
    }
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
