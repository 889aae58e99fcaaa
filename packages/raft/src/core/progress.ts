/**
 * What a leader knows about one follower's log, and how it sends to it.
 *
 * - `probe`: the leader does not know where the follower's log matches; it sends one
 *   append at a time and waits for the answer (or the next heartbeat) before another.
 * - `replicate`: the follower is known to match up to `match`; appends are pipelined
 *   optimistically (`next` runs ahead of `match`) within the inflight window.
 * - `snapshot`: the follower needs a snapshot; nothing else is sent until it reports.
 */
import { Inflights } from './inflights.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be durably in the follower's log and to match the leader's. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = 'probe';
  /** In `probe`: an append was sent and no answer has come back yet. */
  probeSent = false;
  /** In `snapshot`: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from within the current CheckQuorum window. */
  recentActive = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, maxInflightBytes: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // After a snapshot the follower has at least the snapshot's index.
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = index;
  }

  /**
   * An acknowledgement that the follower matches up to `n`. Returns false for a stale
   * (already known) acknowledgement.
   */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.probeSent = false;
    if (this.next < n + 1) this.next = n + 1;
    return true;
  }

  /**
   * The follower rejected an append whose `prevIndex` was `rejected`; `probeFrom` is
   * where the leader should try next (from the follower's hint). Returns false when the
   * rejection is stale (answers an append the leader has already moved past).
   */
  maybeDecrTo(rejected: number, probeFrom: number): boolean {
    if (this.state === 'replicate') {
      // Pipelined appends: a rejection for an index at or below match is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probing sends one append at a time, with prevIndex = next - 1.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending must wait (probe unanswered, window full, or snapshot under way). */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** Record that an append with `count` entries ending at `lastIndex` was sent. */
  sentEntries(count: number, lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }
}
