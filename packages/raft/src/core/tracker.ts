/**
 * The leader's view of the cluster: the (possibly joint) voter configuration, the
 * learners, and one {@link Progress} per member.
 */
import type { ConfState, NodeId } from '../types.js';
import { Progress } from './progress.js';
import {
  allVoters,
  jointActive,
  jointIndex,
  jointVote,
  type QuorumConfig,
  type VoteResult,
} from './quorum.js';

export class ProgressTracker {
  config: QuorumConfig;
  learners: Set<NodeId>;
  /** Every member (voters of both halves and learners). */
  readonly progress = new Map<NodeId, Progress>();
  private readonly matchOf = (id: NodeId): number | undefined => this.progress.get(id)?.match;

  constructor(
    conf: ConfState,
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {
    this.config = { incoming: [...conf.voters], outgoing: [...conf.votersOutgoing] };
    this.learners = new Set(conf.learners);
  }

  confState(): ConfState {
    return {
      voters: [...this.config.incoming],
      learners: [...this.learners],
      votersOutgoing: [...this.config.outgoing],
    };
  }

  voters(): NodeId[] {
    return allVoters(this.config);
  }

  members(): NodeId[] {
    const all = this.voters();
    for (const l of this.learners) if (!all.includes(l)) all.push(l);
    return all;
  }

  isVoter(id: NodeId): boolean {
    return this.config.incoming.includes(id) || this.config.outgoing.includes(id);
  }

  isSingleVoter(id: NodeId): boolean {
    return (
      this.config.outgoing.length === 0 && this.config.incoming.length === 1 && this.config.incoming[0] === id
    );
  }

  /**
   * Switch to a new configuration. Members that stay keep their progress; new ones start
   * probing at `nextIndex`; members that left are forgotten.
   */
  setConf(conf: ConfState, nextIndex: number): void {
    this.config = { incoming: [...conf.voters], outgoing: [...conf.votersOutgoing] };
    this.learners = new Set(conf.learners);
    const members = new Set(this.members());
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const pr = this.progress.get(id);
      if (pr) pr.isLearner = !this.isVoter(id);
      else
        this.progress.set(
          id,
          new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, !this.isVoter(id)),
        );
    }
  }

  /** Re-create every progress: `next` at `nextIndex`, nothing known to match. */
  resetProgress(nextIndex: number): void {
    this.progress.clear();
    for (const id of this.members()) {
      this.progress.set(
        id,
        new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, !this.isVoter(id)),
      );
    }
  }

  /** The largest index a quorum has durably acknowledged. */
  committedIndex(): number {
    return jointIndex(this.config, this.matchOf);
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    return jointVote(this.config, votes);
  }

  /** Whether a quorum was heard from in the current CheckQuorum window. */
  quorumActive(self: NodeId): boolean {
    return jointActive(this.config, (id) => id === self || this.progress.get(id)?.recentActive === true);
  }

  /** Whether `acks` (a set of members) forms a quorum. */
  isQuorum(acks: ReadonlySet<NodeId>): boolean {
    return jointActive(this.config, (id) => acks.has(id));
  }
}
