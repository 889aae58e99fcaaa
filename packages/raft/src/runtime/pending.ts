/**
 * What callers of a `RaftNode` wait for: proposals (by log index), read barriers (by
 * request id) and leadership transfers, each with a deadline. The runtime tells this what
 * happened (an entry applied, a read index confirmed, the leader changed, time passed,
 * the node stopped) and it settles the promises; it never touches the core.
 *
 * The rule for proposals: resolved with the state machine's result when the entry
 * applied at its index is the one proposed (same term); rejected `PROPOSAL_DROPPED`
 * (definitely not applied) when another entry took that index; `TIMEOUT` or
 * `OUTCOME_UNKNOWN` (it may still commit) when the deadline passes, the caller gives up or
 * the node stops first.
 */
import { type NotLeaderError, RaftError, RaftErrorCode } from '../errors.js';
import type { Entry, NodeId } from '../types.js';

interface PendingProposal {
  readonly term: number;
  readonly deadline: number;
  resolve(r: unknown): void;
  reject(e: Error): void;
}

interface PendingRead {
  readonly deadline: number;
  /** Sent to a leader elsewhere: lost if the leader changes. */
  readonly forwarded: boolean;
  resolve(): void;
  reject(e: Error): void;
}

interface PendingTransfer {
  readonly to: NodeId | null;
  readonly deadline: number;
  resolve(): void;
  reject(e: Error): void;
}

/** How a proposal ended, for the runtime's `proposal` event. */
export type ProposalOutcome = { ok: true } | { ok: false; code: string };

export class PendingRequests {
  private readonly proposals = new Map<number, PendingProposal>();
  /** Proposal indexes in deadline order (deadlines are set when proposed). */
  private readonly proposalOrder: number[] = [];
  private readonly reads = new Map<number, PendingRead>();
  /** Confirmed reads waiting for the state machine to apply up to their index. */
  private readonly readWaits: { index: number; id: number }[] = [];
  private readSeq = 0;
  private readonly transfers: PendingTransfer[] = [];

  constructor(private readonly onProposalSettled: (o: ProposalOutcome) => void) {}

  /** Nothing is waiting: no proposal, read or transfer. */
  get empty(): boolean {
    return this.proposals.size === 0 && this.reads.size === 0 && this.transfers.length === 0;
  }

  // ---------------------------------------------------------------- proposals

  /** Wait for the entry proposed at `index` in `term`; `signal` abandons the wait. */
  proposal<R>(index: number, term: number, deadline: number, signal?: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.proposals.set(index, { term, deadline, resolve: resolve as (r: unknown) => void, reject });
      this.proposalOrder.push(index);
      signal?.addEventListener(
        'abort',
        () => {
          const p = this.proposals.get(index);
          if (!p) return;
          this.proposals.delete(index);
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

  /** The entry at `e.index` was applied with `result`: settle whoever proposed that index. */
  applied(e: Entry, result: unknown): void {
    const p = this.proposals.get(e.index);
    if (!p) return;
    this.proposals.delete(e.index);
    if (p.term === e.term) {
      this.onProposalSettled({ ok: true });
      p.resolve(result);
    } else {
      this.onProposalSettled({ ok: false, code: RaftErrorCode.ProposalDropped });
      p.reject(
        new RaftError(
          RaftErrorCode.ProposalDropped,
          `the proposal at index ${e.index} was replaced by another leader's entry; it was not applied and is safe to retry`,
        ),
      );
    }
  }

  // ---------------------------------------------------------------- reads

  nextReadId(): number {
    return ++this.readSeq;
  }

  /** Wait for read `id` to be confirmed and applied; `forwarded` when another node leads. */
  read(id: number, deadline: number, forwarded: boolean, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.reads.set(id, { deadline, forwarded, resolve, reject });
      signal?.addEventListener(
        'abort',
        () => this.failRead(id, new RaftError(RaftErrorCode.Timeout, 'the read was abandoned')),
        { once: true },
      );
    });
  }

  /** The core answered read `id`: confirmed at `index`, or failed (leadership changed). */
  readState(id: number, index: number, failed: boolean, applied: number): void {
    if (!this.reads.has(id)) return;
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
    this.serveReads(applied);
  }

  /** The state machine has applied up to `applied`: release the reads that waited for it. */
  serveReads(applied: number): void {
    if (this.readWaits.length === 0) return;
    let keep = 0;
    for (const w of this.readWaits) {
      if (w.index <= applied) {
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

  // ---------------------------------------------------------------- transfers

  transfer(to: NodeId, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.transfers.push({ to, deadline, resolve, reject });
    });
  }

  /**
   * The leader changed to `leader` (`notLeader` names it for forwarded reads): reads
   * forwarded to the old leader will not be answered; a transfer away from `self` is done
   * once someone else leads.
   */
  leaderChanged(leader: NodeId | null, self: NodeId, notLeader: () => NotLeaderError): void {
    for (const [id, r] of this.reads) if (r.forwarded) this.failRead(id, notLeader());
    if (leader !== self) {
      for (const t of this.transfers.splice(0)) {
        if (leader !== null) t.resolve();
        else this.transfers.push(t);
      }
    }
  }

  // ---------------------------------------------------------------- time and stop

  /** Fail what passed its deadline. Proposals time out with an unknown outcome. */
  sweep(now: number): void {
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
      this.onProposalSettled({ ok: false, code: RaftErrorCode.Timeout });
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

  /** The node stopped: every proposal's outcome is open; reads and transfers fail with `stopped`. */
  stopped(self: NodeId, stopped: RaftError): void {
    for (const p of this.proposals.values()) {
      p.reject(
        new RaftError(
          RaftErrorCode.OutcomeUnknown,
          `node ${self} stopped before the proposal was applied; it may still be committed by the cluster`,
          { cause: stopped },
        ),
      );
    }
    this.proposals.clear();
    this.proposalOrder.length = 0;
    for (const r of this.reads.values()) r.reject(stopped);
    this.reads.clear();
    this.readWaits.length = 0;
    for (const t of this.transfers.splice(0)) t.reject(stopped);
  }
}
