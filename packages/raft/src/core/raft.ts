/**
 * The Raft state machine: pure, synchronous, deterministic.
 *
 * Inputs: `tick()`, `step(message)`, `propose(data)`, `readIndex(id)`,
 * `transferLeadership(to)`, `campaign()`. Outputs: {@link Ready} batches taken with
 * `ready()`, acknowledged with `persisted()` and `applied()`. No I/O, no clock (time is
 * the number of ticks), no randomness but `config.random`, so a seed replays a run.
 *
 * Each role has its own step and tick functions, swapped in one place by the `become*`
 * transitions, which refuse illegal moves (a follower never becomes leader directly).
 */
import type { LogReader } from '../contracts/storage.js';
import { NotLeaderError, RaftError, RaftErrorCode } from '../errors.js';
import {
  type AppendRequest,
  type AppendResponse,
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  entrySize,
  type HardState,
  type Heartbeat,
  type HeartbeatResponse,
  type Message,
  type NodeId,
  type ReadIndexResponse,
  type Role,
  type SnapshotMeta,
  type SnapshotRequest,
  type VoteRequest,
  type VoteResponse,
} from '../types.js';
import { applyChange, encodeConfChange } from './confchange.js';
import { type CoreConfig, type CoreOptions, resolveCoreConfig } from './config.js';
import type { RaftEvent } from './events.js';
import { RaftLog } from './log.js';
import type { Progress } from './progress.js';
import type { VoteResult } from './quorum.js';
import { ReadOnly, type ReadRequest } from './read-only.js';
import type { CoreStatus, ProgressStatus, ReadState, Ready } from './ready.js';
import { ProgressTracker } from './tracker.js';

const EMPTY = new Uint8Array(0);

/** What the core must do when a ready batch it handed out becomes durable. */
interface PendingPersist {
  readonly seq: number;
  /** Last entry of the batch (0 when it had none). */
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshotIndex: number;
  /** The term of a self-vote this batch makes durable, or 0. */
  readonly selfVoteTerm: number;
}

export interface ProposeResult {
  readonly index: number;
  readonly term: number;
}

export class RaftCore {
  readonly id: NodeId;
  protected readonly cfg: CoreConfig & CoreOptions;
  protected readonly log: RaftLog;
  protected readonly tracker: ProgressTracker;

  // Persistent state (thesis Figure 3.1); written to storage through ready().
  protected term = 0;
  protected vote: NodeId | null = null;

  // Volatile state.
  protected role: Role = 'follower';
  protected leaderId: NodeId | null = null;
  /** Ticks since the last election timeout reset (or, on a leader, since the last CheckQuorum). */
  protected electionElapsed = 0;
  protected heartbeatElapsed = 0;
  protected randomizedElectionTimeout = 0;
  /** Consecutive campaigns that did not produce a leader: widens the timeout (backoff). */
  protected failedCampaigns = 0;
  /** Ticks since the current campaign started, for the events. */
  protected campaignTicks = 0;
  protected readonly votes = new Map<NodeId, boolean>();
  protected leadTransferee: NodeId | null = null;
  /** Leader only: an entry of the current term is committed, so reads may be served. */
  protected committedInTerm = false;
  /**
   * A leader asked us to take over (TimeoutNow) while a committed membership change was
   * still unapplied: campaign as soon as it is applied (within an election timeout).
   */
  protected deferredTransfer = false;
  /** Leader only: index of the latest membership change; no other until it is applied. */
  protected pendingConfIndex = 0;
  protected readonly readOnly = new ReadOnly();
  /** Ticks since this core was built: the clock of leases. */
  protected ticks = 0;
  /** Leader only: the latest tick whose heartbeat round a quorum acknowledged (-1: none). */
  protected leaseTick = -1;
  /** Leader only: rounds opened before this tick do not count (the membership changed). */
  protected leaseFromTick = 0;
  /** Leader only: leadership is being handed over this term: no lease until the term ends. */
  protected leaseRevoked = false;
  /**
   * With lease reads: a node that has just started refuses votes for an election timeout,
   * as if it had heard from a leader, since it may have promised a lease before it restarted.
   */
  protected startupLease = false;
  /** Leader only: proposals of this term not yet committed, as (index, bytes), oldest first. */
  private readonly uncommitted: { index: number; bytes: number }[] = [];
  private uncommittedBytes = 0;

  private stepRole: (m: Message) => void;
  private tickRole: () => void;

  // Output, drained by ready().
  private msgs: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  /** Leader only: followers to send appends to at the next flush. */
  private readonly appendDirty = new Set<NodeId>();
  /** Leader only: followers to send an append to even if it carries no entries. */
  private readonly probeDirty = new Set<NodeId>();
  private appendToAll = false;
  private commitToAll = false;

  private prevHardState: HardState;
  private readySeq = 0;
  private readonly pending: PendingPersist[] = [];
  /** (last index, bytes) of batches handed out to apply. */
  private readonly applyBatches: { index: number; bytes: number }[] = [];

  constructor(config: CoreConfig, storage: LogReader) {
    this.cfg = resolveCoreConfig(config);
    this.id = this.cfg.id;
    const init = storage.initialState();
    this.log = new RaftLog(storage, this.cfg.applied ?? 0);
    this.tracker = new ProgressTracker(init.conf, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
    this.term = init.hardState.term;
    this.vote = init.hardState.vote;
    this.prevHardState = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.becomeFollower(this.term, null);
    this.startupLease = this.cfg.leaseReads;
  }

  // ------------------------------------------------------------------ inputs

  /** Advance logical time by one tick. */
  tick(): void {
    this.ticks++;
    this.tickRole();
  }

  /** Ticks since this core was built. */
  get tickCount(): number {
    return this.ticks;
  }

  /**
   * With `leaseReads`: where a lease read may read, and since which tick the lease holds.
   * The lease is the heartbeat round of tick `sinceTick`, acknowledged by a quorum: each of
   * them refuses to vote for anyone else for an election timeout of its own ticks after
   * it got that heartbeat. The host turns ticks into time: the read is linearizable at
   * `index` while less than (electionTicks − 2) ticks, shortened by the clock drift bound,
   * have passed since `sinceTick` in real time. Null when no lease can be claimed now (not
   * the leader, no entry of this term committed yet, a hand-over under way this term, no
   * round acknowledged since the last membership change).
   */
  leaseRead(): { index: number; sinceTick: number } | null {
    if (!this.cfg.leaseReads || this.role !== 'leader' || !this.committedInTerm || this.leaseRevoked)
      return null;
    if (this.leadTransferee !== null) return null;
    if (this.tracker.isSingleVoter(this.id)) return { index: this.log.committed, sinceTick: this.ticks };
    if (this.leaseTick < 0) return null;
    return { index: this.log.committed, sinceTick: this.leaseTick };
  }

  /**
   * Handle a message from a peer. Messages not addressed to this node, or that a faulty
   * peer made inconsistent, are dropped and reported as an `anomaly` event; `step`
   * never throws for what arrives from the network.
   */
  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id) {
      this.emit({ type: 'anomaly', detail: `dropped ${m.type} from ${m.from} addressed to ${m.to}` });
      return;
    }
    try {
      this.stepInner(m);
    } catch (err) {
      if (err instanceof RaftError && err.code === RaftErrorCode.ProtocolViolation) {
        this.emit({ type: 'anomaly', detail: `dropped ${m.type} from ${m.from}: ${err.message}` });
        return;
      }
      throw err;
    }
  }

  /**
   * Append a proposal to the leader's log. Returns the slot it was given: the entry is
   * committed once an entry with this index and term is applied; if a different term
   * shows up at that index, the proposal was lost and can be retried.
   */
  propose(data: Uint8Array, type: EntryType = EntryType.Normal): ProposeResult {
    if (this.role !== 'leader') {
      this.emit({ type: 'proposalRejected', code: RaftErrorCode.NotLeader });
      throw new NotLeaderError(this.leaderId, this.term);
    }
    if (this.leadTransferee !== null) {
      this.emit({ type: 'proposalRejected', code: RaftErrorCode.TransferInProgress });
      throw new RaftError(
        RaftErrorCode.TransferInProgress,
        `leadership is being transferred to ${this.leadTransferee}; retry there shortly`,
      );
    }
    if (data.byteLength > this.cfg.maxEntryBytes) {
      this.emit({ type: 'proposalRejected', code: RaftErrorCode.TooLarge });
      throw new RaftError(
        RaftErrorCode.TooLarge,
        `proposal of ${data.byteLength} bytes exceeds maxEntryBytes (${this.cfg.maxEntryBytes})`,
      );
    }
    if (type === EntryType.ConfChange) {
      throw new RaftError(
        RaftErrorCode.InvalidArgument,
        'propose membership changes with proposeConfChange()',
      );
    }
    const e: Entry = { index: this.log.lastIndex() + 1, term: this.term, type, data };
    const bytes = entrySize(e);
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.cfg.maxUncommittedBytes) {
      this.emit({ type: 'proposalRejected', code: RaftErrorCode.Overloaded });
      throw new RaftError(
        RaftErrorCode.Overloaded,
        `${this.uncommittedBytes} bytes are proposed but not yet committed (limit ${this.cfg.maxUncommittedBytes}); slow down and retry`,
      );
    }
    this.appendEntries([e]);
    this.uncommitted.push({ index: e.index, bytes });
    this.uncommittedBytes += bytes;
    return { index: e.index, term: e.term };
  }

  /**
   * Propose a membership change (one member at a time; see `core/confchange.ts`). It
   * takes effect when applied: the host passes the applied entry to `applyConfChange`.
   */
  proposeConfChange(cc: ConfChange): ProposeResult {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId, this.term);
    if (this.leadTransferee !== null) {
      throw new RaftError(
        RaftErrorCode.TransferInProgress,
        'leadership is being transferred; retry at the new leader',
      );
    }
    if (this.pendingConfIndex > this.log.applied) {
      throw new RaftError(
        RaftErrorCode.ConfChangeRejected,
        `a membership change (entry ${this.pendingConfIndex}) is still in progress; retry once it is applied`,
      );
    }
    if (!this.committedInTerm) {
      throw new RaftError(
        RaftErrorCode.ConfChangeRejected,
        'this leader has not yet committed an entry of its term; retry in a moment',
      );
    }
    applyChange(this.tracker.confState(), cc); // validates; throws when invalid
    const e: Entry = {
      index: this.log.lastIndex() + 1,
      term: this.term,
      type: EntryType.ConfChange,
      data: encodeConfChange(cc),
    };
    this.appendEntries([e]);
    this.pendingConfIndex = e.index;
    return { index: e.index, term: e.term };
  }

  /**
   * Apply a committed membership change, in log order, when the host applies its entry.
   * Returns the new configuration. A leader that removed (or demoted) itself hands over
   * to the most caught-up voter and steps down.
   */
  applyConfChange(cc: ConfChange): ConfState {
    let next: ConfState;
    try {
      next = applyChange(this.tracker.confState(), cc);
    } catch (err) {
      // Committed changes were validated by the leader; a stale duplicate is harmless.
      this.emit({
        type: 'anomaly',
        detail: `ignored committed membership change: ${(err as Error).message}`,
      });
      return this.tracker.confState();
    }
    const before = new Set(this.tracker.progress.keys());
    this.tracker.setConf(next, this.log.lastIndex() + 1);
    // A lease is a quorum of the configuration it was acknowledged in: start over.
    this.leaseTick = -1;
    this.leaseFromTick = this.ticks + 1;
    this.emit({
      type: 'confChanged',
      voters: [...next.voters],
      learners: [...next.learners],
      term: this.term,
    });
    if (this.role === 'leader') {
      if (!this.tracker.isVoter(this.id)) {
        this.handOverAndStepDown();
      } else {
        this.maybeCommit();
        // Probe new members at once (an empty append finds where their log stands).
        for (const id of this.tracker.progress.keys()) if (!before.has(id)) this.probeDirty.add(id);
      }
    } else if (
      (this.role === 'candidate' || this.role === 'precandidate') &&
      !this.tracker.isVoter(this.id)
    ) {
      this.becomeFollower(this.term, null);
    }
    return next;
  }

  /** The leader left the voters: tell the best voter to campaign now, then step down. */
  private handOverAndStepDown(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id || pr.isLearner) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.emit({ type: 'steppedDown', term: this.term, reason: 'removed' });
    this.becomeFollower(this.term, null);
  }

  /**
   * Ask for a linearizable read point. The answer arrives as a {@link ReadState} with
   * the same `requestId` in a later ready. On a follower the request is forwarded to
   * the leader. Throws {@link NotLeaderError} when no leader is known.
   */
  readIndex(requestId: number): void {
    if (this.role === 'leader') {
      this.readOnly.batch.push({ from: null, requestId });
      return;
    }
    if (this.leaderId === null) throw new NotLeaderError(null, this.term);
    this.send({ type: 'readIndex', from: this.id, to: this.leaderId, term: this.term, requestId });
  }

  /**
   * Hand leadership to `to` (thesis §3.10): stop taking proposals, bring `to` up to
   * date, then tell it to campaign at once. Aborted after an election timeout.
   */
  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId, this.term);
    if (to === this.id) {
      if (this.leadTransferee !== null) this.abortTransfer('transfer back to the leader');
      return;
    }
    if (!this.tracker.isVoter(to)) {
      throw new RaftError(RaftErrorCode.InvalidArgument, `cannot transfer leadership to ${to}: not a voter`);
    }
    if (this.leadTransferee === to) return;
    if (this.leadTransferee !== null) this.abortTransfer(`superseded by a transfer to ${to}`);
    this.leadTransferee = to;
    // The transferee will campaign with a vote that ignores leases: ours ends here.
    this.leaseRevoked = true;
    this.electionElapsed = 0;
    this.emit({ type: 'transferStarted', to, term: this.term });
    const pr = this.tracker.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.appendDirty.add(to);
  }

  /** Start an election now (PreVote first when enabled). Ignored on a leader or non-voter. */
  campaign(): void {
    this.hup(false);
  }

  /**
   * A follower learned out of band that its leader is gone (a host's failure detector):
   * forget it. The node stays a follower in its term and does not campaign before its
   * election timeout, but the leader stickiness of PreVote and CheckQuorum (no vote while a
   * leader was heard within an election timeout) no longer holds, so it grants a candidate
   * at once. Hearing from the leader again restores it. Ignored with `leaseReads` (the old
   * leader's lease rests on exactly those refusals) and on anything but a follower.
   */
  forgetLeader(): void {
    if (this.cfg.leaseReads || this.role !== 'follower' || this.leaderId === null) return;
    this.setLeader(null);
  }

  /** The transport could not reach `peer`: stop pipelining to it and probe instead. */
  reportUnreachable(peer: NodeId): void {
    const pr = this.tracker.progress.get(peer);
    if (this.role === 'leader' && pr && pr.state === 'replicate') pr.becomeProbe();
  }

  /** The host finished (or failed) streaming a snapshot to `peer`. */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    const pr = this.tracker.progress.get(peer);
    if (this.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat) before probing again.
    pr.probeSent = true;
  }

  // ------------------------------------------------------------------ outputs

  hasReady(): boolean {
    this.flush();
    return (
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.readStates.length > 0 ||
      !this.sameHardState(this.prevHardState) ||
      this.log.unstable.nextSnapshot() !== null ||
      this.log.unstable.offsetInProgress < this.log.unstable.offset + this.log.unstable.entries.length ||
      this.log.hasNextCommittedEntries(this.cfg.maxApplyBytes)
    );
  }

  /** Take the next batch of work. See {@link Ready} for what the host must do with it. */
  ready(): Ready {
    this.flush();
    const hsChanged = !this.sameHardState(this.prevHardState);
    const hardState = hsChanged ? this.hardState() : null;
    const entries = this.log.unstable.nextEntries();
    const snapshot = this.log.unstable.nextSnapshot();
    const committedEntries = this.log.takeCommittedEntries(this.cfg.maxApplyBytes, this.cfg.maxApplyBytes);
    if (committedEntries.length > 0) {
      let bytes = 0;
      for (const e of committedEntries) bytes += entrySize(e);
      this.applyBatches.push({ index: committedEntries[committedEntries.length - 1]!.index, bytes });
    }
    const last = entries.length > 0 ? entries[entries.length - 1]! : null;
    const termOrVoteChanged =
      hardState !== null &&
      (hardState.term !== this.prevHardState.term || hardState.vote !== this.prevHardState.vote);
    const rd: Ready = {
      seq: ++this.readySeq,
      hardState,
      snapshot,
      entries,
      messages: this.msgs,
      messagesAfterPersist: this.msgsAfterPersist,
      committedEntries,
      readStates: this.readStates,
      mustPersist: hardState !== null || entries.length > 0 || snapshot !== null,
      mustSync: termOrVoteChanged || entries.length > 0 || snapshot !== null,
    };
    this.pending.push({
      seq: rd.seq,
      lastIndex: last ? last.index : 0,
      lastTerm: last ? last.term : 0,
      snapshotIndex: snapshot ? snapshot.index : 0,
      selfVoteTerm: hardState !== null && hardState.vote === this.id ? hardState.term : 0,
    });
    this.log.unstable.acceptInProgress();
    if (hardState) this.prevHardState = hardState;
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    return rd;
  }

  /**
   * The host made `rd` (and every earlier ready) durable. Must be called in ready order.
   */
  persisted(rd: Ready): void {
    const p = this.pending[0];
    if (!p || p.seq !== rd.seq) {
      throw new RaftError(
        RaftErrorCode.ProtocolViolation,
        `persisted(ready ${rd.seq}) out of order: expected ready ${p ? p.seq : '(none)'}`,
      );
    }
    this.pending.shift();
    if (p.snapshotIndex > 0) {
      this.log.stableSnapTo(p.snapshotIndex);
      if (this.log.applying < p.snapshotIndex) {
        this.log.applying = p.snapshotIndex;
        this.log.applied = p.snapshotIndex;
      }
    }
    if (p.lastIndex > 0) this.log.stableTo(p.lastIndex, p.lastTerm);
    // A candidate's own vote counts only once it is durable: otherwise a crash could
    // let this node forget it led term T, campaign in T again and lead it twice.
    if (p.selfVoteTerm !== 0 && p.selfVoteTerm === this.term && this.role === 'candidate') {
      this.poll(this.id, true);
    }
    if (this.role === 'leader') {
      const self = this.tracker.progress.get(this.id);
      if (self?.maybeUpdate(this.log.persistedIndex())) this.maybeCommit();
    }
  }

  /** The host applied every committed entry up to `index`. */
  applied(index: number): void {
    let bytes = 0;
    while (this.applyBatches.length > 0 && this.applyBatches[0]!.index <= index) {
      bytes += this.applyBatches.shift()!.bytes;
    }
    this.log.appliedTo(index, bytes);
    if (this.deferredTransfer && this.role === 'follower' && !this.hasUnappliedConfChange()) {
      this.deferredTransfer = false;
      this.hup(true);
    }
  }

  status(): CoreStatus {
    let progress: Record<NodeId, ProgressStatus> | null = null;
    if (this.role === 'leader') {
      progress = {};
      for (const [id, pr] of this.tracker.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          inflight: pr.inflights.count,
          isLearner: pr.isLearner,
        };
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leaderId: this.leaderId,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      persistedIndex: this.log.persistedIndex(),
      leadTransferee: this.leadTransferee,
      voters: this.tracker.voters(),
      learners: [...this.tracker.learners],
      progress,
    };
  }

  /**
   * Metadata for a snapshot of the state machine as of `index` (applied): its term and
   * the membership the core has applied so far. Undefined when `index` is compacted or
   * not applied yet.
   */
  snapshotMetaAt(index: number): SnapshotMeta | undefined {
    if (index > this.log.applied) return undefined;
    const term = this.log.term(index);
    if (term === undefined) return undefined;
    return { index, term, conf: this.tracker.confState() };
  }

  get currentRole(): Role {
    return this.role;
  }
  get currentTerm(): number {
    return this.term;
  }
  get currentLeader(): NodeId | null {
    return this.leaderId;
  }
  /**
   * The snapshot the core has taken from the leader and is waiting for the host to
   * persist and restore, or null. Lets a host tell whether a snapshot it stepped in was
   * accepted (the core declines one whose entries it already has).
   */
  get pendingSnapshot(): SnapshotMeta | null {
    return this.log.unstable.snapshot;
  }
  get commitIndex(): number {
    return this.log.committed;
  }
  get lastIndex(): number {
    return this.log.lastIndex();
  }

  // ------------------------------------------------------------------ transitions

  protected becomeFollower(term: number, leader: NodeId | null): void {
    const from = this.role;
    this.reset(term);
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.setRole(from, 'follower');
    this.setLeader(leader);
    if (leader !== null) this.failedCampaigns = 0;
  }

  protected becomePreCandidate(): void {
    if (this.role === 'leader') throw this.illegal('leader', 'precandidate');
    const from = this.role;
    // PreVote changes neither term nor vote: a node that cannot win does not disturb
    // the cluster (thesis §9.6). It forgets the leader, so that its own stickiness does
    // not make it refuse the pre-votes of others who also lost the leader.
    this.votes.clear();
    this.electionElapsed = 0;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.role = 'precandidate';
    this.emit({ type: 'roleChanged', from, to: 'precandidate', term: this.term });
    this.setLeader(null);
  }

  protected becomeCandidate(): void {
    if (this.role === 'leader') throw this.illegal('leader', 'candidate');
    const from = this.role;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.setRole(from, 'candidate');
    this.setLeader(null);
  }

  protected becomeLeader(): void {
    if (this.role !== 'candidate') throw this.illegal(this.role, 'leader');
    this.reset(this.term);
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    this.setRole('candidate', 'leader');
    this.setLeader(this.id);
    this.failedCampaigns = 0;
    this.tracker.resetProgress(this.log.lastIndex() + 1);
    const self = this.tracker.progress.get(this.id)!;
    // Only what is durable counts for our own vote in the commit quorum.
    self.maybeUpdate(this.log.persistedIndex());
    self.becomeReplicate();
    self.recentActive = true;
    this.committedInTerm = false;
    // A change may sit unapplied in the log we inherit: none of ours until it is applied.
    this.pendingConfIndex = this.log.lastIndex();
    this.emit({ type: 'electionWon', term: this.term, ticks: this.campaignTicks });
    // A no-op of the new term: committing it commits everything before it (§5.4.2) and
    // tells the leader its commit index is current (needed before serving reads, §6.4).
    this.appendEntries([
      { index: this.log.lastIndex() + 1, term: this.term, type: EntryType.Normal, data: EMPTY },
    ]);
  }

  private illegal(from: Role, to: Role): RaftError {
    return new RaftError(RaftErrorCode.ProtocolViolation, `illegal role transition ${from} -> ${to}`);
  }

  private setRole(from: Role, to: Role): void {
    this.role = to;
    if (from !== to) this.emit({ type: 'roleChanged', from, to, term: this.term });
  }

  private setLeader(leader: NodeId | null): void {
    if (leader !== null) this.startupLease = false;
    if (this.leaderId !== leader) {
      this.leaderId = leader;
      this.emit({ type: 'leaderChanged', leaderId: leader, term: this.term });
    }
  }

  /** Common to every transition: new term (if any), timers, per-term leader state. */
  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.deferredTransfer = false;
    if (this.leadTransferee !== null) this.abortTransfer('leadership changed');
    this.votes.clear();
    this.appendDirty.clear();
    this.probeDirty.clear();
    this.appendToAll = false;
    this.commitToAll = false;
    this.uncommitted.length = 0;
    this.uncommittedBytes = 0;
    this.committedInTerm = false;
    this.leaseTick = -1;
    this.leaseFromTick = this.ticks;
    this.leaseRevoked = false;
    this.failReads();
  }

  private resetRandomizedElectionTimeout(): void {
    const et = this.cfg.electionTicks;
    const widen = 1 + Math.min(this.failedCampaigns, this.cfg.maxElectionBackoff);
    // Strictly above electionTicks: a follower must not campaign while a peer whose
    // ticks run a little behind still honours the old leader's lease (etcd #10483).
    this.randomizedElectionTimeout = et + 1 + this.cfg.random(et * widen);
  }

  // ------------------------------------------------------------------ elections

  private promotable(): boolean {
    return this.tracker.isVoter(this.id) && this.log.unstable.snapshot === null;
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // A committed membership change not yet applied may remove us or change the quorum:
    // campaign only on the configuration we will actually have.
    if (this.hasUnappliedConfChange()) return;
    if (this.role === 'precandidate' || this.role === 'candidate') {
      this.failedCampaigns++;
      this.emit({
        type: 'electionLost',
        term: this.term,
        preVote: this.role === 'precandidate',
        ticks: this.campaignTicks,
      });
    }
    this.campaignTicks = 0;
    if (this.cfg.preVote && !transfer) this.startCampaign('preVote', false);
    else this.startCampaign('vote', transfer);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const ents = this.log.slice(this.log.applied + 1, this.log.committed + 1);
    return ents?.some((e) => e.type === EntryType.ConfChange) === true;
  }

  private startCampaign(kind: 'preVote' | 'vote', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.resetRandomizedElectionTimeout();
    this.emit({ type: 'electionStarted', term: voteTerm, preVote: kind === 'preVote', transfer });
    if (kind === 'preVote') {
      // A pre-vote for ourselves changes nothing durable, so it counts at once.
      if (this.poll(this.id, true)) return;
    }
    // A real vote for ourselves counts once the hard state carrying it is durable (see
    // persisted()); the requests below promise nothing and may go out right away.
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters()) {
      if (id === this.id) continue;
      this.send({ type: kind, from: this.id, to: id, term: voteTerm, lastIndex, lastTerm, transfer });
    }
  }

  /** Record a vote and act on the result. Returns true when the campaign was decided. */
  private poll(from: NodeId, granted: boolean): boolean {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const result = this.tallyVotes();
    if (result === 'won') {
      if (this.role === 'precandidate') {
        this.startCampaign('vote', false);
      } else if (this.votes.get(this.id) === true) {
        this.becomeLeader();
      } else {
        return false; // a quorum without our own durable vote: wait for it
      }
      return true;
    }
    if (result === 'lost') {
      const preVote = this.role === 'precandidate';
      this.failedCampaigns++;
      this.emit({ type: 'electionLost', term: this.term, preVote, ticks: this.campaignTicks });
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  private handleVoteRequest(m: VoteRequest): void {
    const isPre = m.type === 'preVote';
    const canVote =
      this.vote === m.from || (this.vote === null && this.leaderId === null) || (isPre && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // Answer with the request's term: for a pre-vote it is the candidate's future
      // term, which the candidate would otherwise ignore as stale.
      const resp: VoteResponse = {
        type: isPre ? 'preVoteResponse' : 'voteResponse',
        from: this.id,
        to: m.from,
        term: m.term,
        reject: false,
      };
      this.emit({ type: 'voteGranted', to: m.from, term: m.term, preVote: isPre });
      if (isPre) {
        this.send(resp);
      } else {
        this.electionElapsed = 0;
        this.vote = m.from;
        this.sendAfterPersist(resp);
      }
    } else {
      const resp: VoteResponse = {
        type: isPre ? 'preVoteResponse' : 'voteResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        reject: true,
      };
      if (isPre) this.send(resp);
      else this.sendAfterPersist(resp);
      // Refused only for its log, by a follower whose own leader is silent past the
      // election timeout: this one would win where that candidate cannot, and its own
      // timer is about to fire anyway. Campaign now rather than after another timeout
      // (after a leader's crash, the follower that missed its last appends often times
      // out first and loses). Never within a live leader's lease (checked above), so no
      // healthy leader is disturbed.
      if (
        isPre &&
        canVote &&
        this.cfg.checkQuorum &&
        this.role === 'follower' &&
        this.electionElapsed >= this.cfg.electionTicks
      ) {
        this.hup(false);
      }
    }
  }

  // ------------------------------------------------------------------ step

  /**
   * What a correct peer never sends, whatever its state: checked before the message can
   * change anything. (The codec checks shapes; this checks meaning.)
   */
  private insane(m: Message): string | null {
    if (m.type === 'append') {
      let prev = m.prevTerm;
      if (m.prevTerm > m.term || m.commit < 0) return 'prevTerm above the message term';
      for (let i = 0; i < m.entries.length; i++) {
        const e = m.entries[i]!;
        if (e.index !== m.prevIndex + 1 + i)
          return `entry ${i} has index ${e.index}, not ${m.prevIndex + 1 + i}`;
        if (e.term < prev || e.term > m.term) return `entry ${e.index} has term ${e.term} out of order`;
        prev = e.term;
      }
    } else if (m.type === 'snapshot') {
      if (m.snapshot.term > m.term) return 'snapshot term above the message term';
      if (m.snapshot.conf.voters.length === 0) return 'snapshot without voters';
    } else if (m.type === 'appendResponse' && !m.reject && this.role === 'leader' && m.term === this.term) {
      if (m.index > this.log.lastIndex())
        return `acknowledges index ${m.index} past our last ${this.log.lastIndex()}`;
    }
    return null;
  }

  private stepInner(m: Message): void {
    const bad = this.insane(m);
    if (bad !== null) {
      this.emit({ type: 'anomaly', detail: `dropped ${m.type} from ${m.from}: ${bad}` });
      return;
    }
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader stickiness (thesis §4.2.3, with CheckQuorum): a node that heard from a
        // live leader within the election timeout neither raises its term nor votes, so
        // a partitioned or restarted node cannot depose a healthy leader.
        const inLease =
          this.cfg.checkQuorum &&
          (this.leaderId !== null || this.startupLease) &&
          this.electionElapsed < this.cfg.electionTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResponse' && !m.reject) {
        // Granted pre-votes carry our own future term; the term rises only if we win.
      } else {
        const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : null;
        if (this.role === 'leader') this.emit({ type: 'steppedDown', term: this.term, reason: 'higherTerm' });
        this.becomeFollower(m.term, leader);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A leader of an older term. Either the message was delayed, or we raised our
        // term while partitioned and now neither win nor rejoin; with stickiness nobody
        // would tell that leader. Answering with our term makes it step down, and a fresh
        // election lets us back in.
        this.send(this.appendResponse(m.from, false, 0, 0, 0));
      } else if (m.type === 'preVote') {
        // Tell the pre-candidate about our term, so that it catches up instead of
        // stalling (a mixed PreVote cluster could deadlock otherwise).
        this.send({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.term, reject: true });
      } else if (m.type === 'readIndex') {
        this.send({
          type: 'readIndexResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          requestId: m.requestId,
          index: 0,
          reject: true,
        });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    this.stepRole(m);
  }

  private readonly stepFollower = (m: Message): void => {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.setLeader(m.from);
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.setLeader(m.from);
        this.handleHeartbeat(m);
        break;
      case 'snapshot':
        this.electionElapsed = 0;
        this.setLeader(m.from);
        this.handleSnapshot(m);
        break;
      case 'timeoutNow':
        // Our leader hands over: campaign now, skipping PreVote (its voters would still
        // honour the leader's lease; the transfer flag waives that).
        if (this.hasUnappliedConfChange()) this.deferredTransfer = true;
        else this.hup(true);
        break;
      case 'readIndexResponse':
        this.readStates.push({ requestId: m.requestId, index: m.index, failed: m.reject });
        break;
      case 'readIndex':
        this.send({
          type: 'readIndexResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          requestId: m.requestId,
          index: 0,
          reject: true,
        });
        break;
      default:
        break;
    }
  };

  private readonly stepCandidate = (m: Message): void => {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader exists in our term: we lost.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        break;
      case 'preVoteResponse':
        if (this.role === 'precandidate') this.poll(m.from, !m.reject);
        break;
      case 'voteResponse':
        if (this.role === 'candidate') this.poll(m.from, !m.reject);
        break;
      case 'readIndex':
        this.send({
          type: 'readIndexResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          requestId: m.requestId,
          index: 0,
          reject: true,
        });
        break;
      default:
        break;
    }
  };

  private readonly stepLeader = (m: Message): void => {
    switch (m.type) {
      case 'appendResponse':
        this.handleAppendResponse(m);
        break;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(m);
        break;
      case 'readIndex':
        if (this.tracker.progress.has(m.from))
          this.readOnly.batch.push({ from: m.from, requestId: m.requestId });
        break;
      default:
        // Another leader in our term is impossible; anything else is stale.
        break;
    }
  };

  // ------------------------------------------------------------------ follower

  /** One literal shape for every append response (spreading a base object is slow). */
  private appendResponse(
    to: NodeId,
    reject: boolean,
    index: number,
    hintIndex: number,
    hintTerm: number,
  ): AppendResponse {
    return { type: 'appendResponse', from: this.id, to, term: this.term, reject, index, hintIndex, hintTerm };
  }

  private handleAppend(m: AppendRequest): void {
    if (m.prevIndex < this.log.committed) {
      // Everything up to our commit index matches the leader's log already.
      this.sendAfterPersist(this.appendResponse(m.from, false, this.log.committed, 0, 0));
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew !== null) {
      // Sent only after the entries are durable: the leader counts this toward commit.
      this.sendAfterPersist(this.appendResponse(m.from, false, lastNew, 0, 0));
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    this.sendAfterPersist(this.appendResponse(m.from, true, m.prevIndex, hint.index, hint.term));
  }

  private handleHeartbeat(m: Heartbeat): void {
    // The leader sends min(our match, its commit), so this never passes our log.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({
      type: 'heartbeatResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      readRound: m.readRound,
    });
  }

  private handleSnapshot(m: SnapshotRequest): void {
    const s = m.snapshot;
    if (s.index <= this.log.committed) {
      this.sendAfterPersist(this.appendResponse(m.from, false, this.log.committed, 0, 0));
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // We already hold the snapshot's last entry: fast-forward the commit index.
      this.log.commitTo(s.index);
      this.sendAfterPersist(this.appendResponse(m.from, false, this.log.lastIndex(), 0, 0));
      return;
    }
    this.log.restore(s);
    // The snapshot carries the membership as of its index.
    this.tracker.setConf(s.conf, s.index + 1);
    this.sendAfterPersist(this.appendResponse(m.from, false, s.index, 0, 0));
  }

  // ------------------------------------------------------------------ leader

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.reject) {
      let probeFrom = m.hintIndex;
      if (m.hintTerm > 0) probeFrom = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, probeFrom)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.appendDirty.add(m.from);
      }
      return;
    }
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot') {
      if (pr.match >= pr.pendingSnapshot || pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      }
    } else {
      pr.inflights.freeLE(m.index);
    }
    this.maybeCommit();
    this.appendDirty.add(m.from);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // A full window with a live follower means acknowledgements were lost: free a slot
    // so that one more append goes out and its answer resynchronises us.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    // Behind, or probing: send an append even if it is empty. If every append that
    // was in flight got lost, this one is rejected and replication resumes from the
    // follower's real position; without it an idle leader would never notice.
    if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.probeDirty.add(m.from);
    if (m.readRound > 0) {
      const done = this.readOnly.ack(m.readRound, m.from, (acks) => this.tracker.isQuorum(acks));
      for (const round of done) {
        if (round.tick >= this.leaseFromTick && round.tick > this.leaseTick) this.leaseTick = round.tick;
        this.releaseReads(round.index, round.requests);
      }
    }
  }

  private releaseReads(index: number, requests: readonly ReadRequest[]): void {
    for (const r of requests) {
      if (r.from === null) {
        this.readStates.push({ requestId: r.requestId, index, failed: false });
      } else {
        const resp: ReadIndexResponse = {
          type: 'readIndexResponse',
          from: this.id,
          to: r.from,
          term: this.term,
          requestId: r.requestId,
          index,
          reject: false,
        };
        this.send(resp);
      }
    }
  }

  /** Reads that can no longer be confirmed (leadership changed): fail them. */
  private failReads(): void {
    for (const r of this.readOnly.clear()) {
      if (r.from === null) {
        this.readStates.push({ requestId: r.requestId, index: 0, failed: true });
      } else {
        this.send({
          type: 'readIndexResponse',
          from: this.id,
          to: r.from,
          term: this.term,
          requestId: r.requestId,
          index: 0,
          reject: true,
        });
      }
    }
  }

  private appendEntries(ents: Entry[]): void {
    this.log.append(ents);
    this.appendToAll = true;
  }

  /** The election's outcome so far. (A seam for tests that inject known bugs.) */
  protected tallyVotes(): VoteResult {
    return this.tracker.voteResult(this.votes);
  }

  /**
   * Whether the leader may commit `index` now that a quorum holds it: only entries of
   * its own term, by counting replicas (§5.4.2, Figure 8); earlier ones follow along.
   * (A seam for tests that inject known bugs.)
   */
  protected isCommittable(index: number): boolean {
    return index > this.log.committed && this.log.term(index) === this.term;
  }

  /** Advance the commit index to what a quorum durably holds, if of the current term. */
  protected maybeCommit(): boolean {
    const idx = this.tracker.committedIndex();
    if (!this.isCommittable(idx)) return false;
    this.log.commitTo(idx);
    this.committedInTerm = true;
    const c = this.log.committed;
    while (this.uncommitted.length > 0 && this.uncommitted[0]!.index <= c) {
      this.uncommittedBytes -= this.uncommitted.shift()!.bytes;
    }
    this.commitToAll = true;
    return true;
  }

  /** Send what accumulated since the last batch: appends, commit updates, read rounds. */
  private flush(): void {
    if (this.role !== 'leader') return;
    if (this.readOnly.batch.length > 0 && this.committedInTerm) {
      if (this.tracker.isSingleVoter(this.id)) {
        const reqs = this.readOnly.batch;
        this.readOnly.batch = [];
        this.releaseReads(this.log.committed, reqs);
      } else {
        const round = this.readOnly.openRound(this.log.committed, this.id, this.ticks);
        if (round) this.broadcastHeartbeat(round.id);
      }
    }
    if (this.appendToAll || this.commitToAll) {
      const withCommit = this.commitToAll;
      this.appendToAll = false;
      this.commitToAll = false;
      this.appendDirty.clear();
      for (const id of this.tracker.progress.keys()) {
        if (id !== this.id) this.maybeSendAppend(id, withCommit);
      }
    } else if (this.appendDirty.size > 0) {
      for (const id of this.appendDirty) if (id !== this.id) this.maybeSendAppend(id, false);
      this.appendDirty.clear();
    }
    if (this.probeDirty.size > 0) {
      for (const id of this.probeDirty) if (id !== this.id) this.maybeSendAppend(id, true);
      this.probeDirty.clear();
    }
  }

  /**
   * Send `to` what it is missing, as far as flow control allows: one append when
   * probing, a pipeline of them when replicating, a snapshot when the entries it needs
   * are compacted. With `sendIfEmpty`, an empty append still carries the commit index.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): void {
    const pr = this.tracker.progress.get(to);
    if (!pr) return;
    const last = this.log.lastIndex();
    while (!pr.isPaused()) {
      const prevIndex = pr.next - 1;
      const prevTerm = this.log.term(prevIndex);
      if (prevTerm === undefined) {
        this.sendSnapshot(to, pr);
        return;
      }
      let ents: Entry[] = [];
      if (pr.next <= last) {
        const hi = Math.min(last + 1, pr.next + this.cfg.maxEntriesPerMsg);
        const got = this.log.slice(pr.next, hi, this.cfg.maxSizePerMsg);
        if (got === undefined) {
          this.sendSnapshot(to, pr);
          return;
        }
        ents = got;
      }
      if (ents.length === 0 && !sendIfEmpty) return;
      let bytes = 0;
      for (const e of ents) bytes += entrySize(e);
      this.send({
        type: 'append',
        from: this.id,
        to,
        term: this.term,
        prevIndex,
        prevTerm,
        entries: ents,
        commit: this.log.committed,
      });
      pr.sentEntries(ents.length, prevIndex + ents.length, bytes);
      if (ents.length === 0 || pr.state !== 'replicate') return;
      sendIfEmpty = false;
    }
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    // A snapshot to a peer we have not heard from is likely wasted work.
    if (!pr.recentActive) return;
    const snap = this.log.snapshotMeta();
    pr.becomeSnapshot(snap.index);
    this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot: snap });
  }

  private broadcastHeartbeat(readRound: number): void {
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      this.send({
        type: 'heartbeat',
        from: this.id,
        to: id,
        term: this.term,
        commit: Math.min(pr.match, this.log.committed),
        readRound,
      });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  private abortTransfer(reason: string): void {
    const to = this.leadTransferee;
    this.leadTransferee = null;
    if (to !== null) this.emit({ type: 'transferAborted', to, term: this.term, reason });
  }

  // ------------------------------------------------------------------ ticks

  private readonly tickElection = (): void => {
    this.electionElapsed++;
    if (this.startupLease && this.electionElapsed >= this.cfg.electionTicks) this.startupLease = false;
    this.campaignTicks++;
    // The only voter has nobody to wait for: it elects itself at the first tick.
    const timeout = this.tracker.isSingleVoter(this.id) ? 1 : this.randomizedElectionTimeout;
    if (this.promotable() && this.electionElapsed >= timeout) {
      this.electionElapsed = 0;
      this.hup(false);
    } else if (this.role === 'precandidate' && this.campaignTicks % this.cfg.heartbeatTicks === 0) {
      // A voter still within its old leader's lease ignores a pre-vote without an answer,
      // often by a tick or two after that leader crashed. Ask again, every heartbeat
      // interval, those who have not answered: one whose lease has run out since grants
      // now, instead of the campaign waiting out a whole election timeout. (A pre-vote
      // changes nothing at its voters, so asking twice is harmless.)
      const lastIndex = this.log.lastIndex();
      const lastTerm = this.log.lastTerm();
      for (const id of this.tracker.voters()) {
        if (id === this.id || this.votes.has(id)) continue;
        this.send({
          type: 'preVote',
          from: this.id,
          to: id,
          term: this.term + 1,
          lastIndex,
          lastTerm,
          transfer: false,
        });
      }
    }
  };

  private readonly tickHeartbeat = (): void => {
    this.electionElapsed++;
    this.heartbeatElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        if (!this.tracker.quorumActive(this.id)) {
          // Without a quorum heard from in a whole election timeout, someone else may
          // lead by now: stop taking writes and reads rather than stall them.
          this.emit({ type: 'steppedDown', term: this.term, reason: 'checkQuorum' });
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.leadTransferee !== null) this.abortTransfer('the new leader did not take over in time');
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      // With leases, every heartbeat is a round: its acknowledgements renew the lease.
      const round =
        this.cfg.leaseReads && !this.tracker.isSingleVoter(this.id)
          ? this.readOnly.openLeaseRound(this.log.committed, this.id, this.ticks).id
          : this.readOnly.latestRoundId();
      this.broadcastHeartbeat(round);
    }
  };

  // ------------------------------------------------------------------ helpers

  protected send(m: Message): void {
    this.msgs.push(m);
  }

  /** Queue `m` to go out once the current batch is durable. (A seam for bug-injection tests.) */
  protected sendAfterPersist(m: Message): void {
    this.msgsAfterPersist.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private sameHardState(h: HardState): boolean {
    return h.term === this.term && h.vote === this.vote && h.commit === this.log.committed;
  }

  protected emit(e: RaftEvent): void {
    this.cfg.onEvent?.(e);
  }
}
