/**
 * What the status page shows of the past, kept by the node itself so that a page opened
 * late still sees it: the commit index once a second (the last two minutes), and the
 * leader changes this node saw, each with the time it saw it.
 */
import type { RaftNode } from '@quorate/raft';

export interface CommitSample {
  readonly at: number;
  readonly commit: number;
}

export interface LeaderChange {
  /** Wall-clock ms when this node learned of the change. */
  readonly at: number;
  readonly leaderId: string | null;
  readonly term: number;
}

export class StatusHistory {
  private readonly commits: CommitSample[] = [];
  private readonly leaders: LeaderChange[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly off: () => void;

  constructor(
    private readonly raft: RaftNode<unknown>,
    private readonly keepSamples = 120,
    private readonly keepChanges = 20,
  ) {
    this.off = raft.events.on('leaderChanged', (e) => {
      this.leaders.push({ at: Date.now(), leaderId: e.leaderId, term: e.term });
      if (this.leaders.length > this.keepChanges) this.leaders.shift();
    });
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  private sample(): void {
    let commit: number;
    try {
      commit = this.raft.commitIndex;
    } catch {
      return;
    }
    this.commits.push({ at: Date.now(), commit });
    if (this.commits.length > this.keepSamples) this.commits.shift();
  }

  /** The commit index, a sample a second, oldest first (a fresh one appended now). */
  commitSamples(): CommitSample[] {
    return [...this.commits, { at: Date.now(), commit: this.raft.commitIndex }];
  }

  /** Leader changes this node saw, oldest first. */
  leaderChanges(): LeaderChange[] {
    return [...this.leaders];
  }

  close(): void {
    clearInterval(this.timer);
    this.off();
  }
}
