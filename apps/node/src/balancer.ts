/**
 * Spreads the leaders of a sharded node's groups over the members. Each member checks
 * its own share every few seconds: when it leads at least two groups more than the live
 * member that leads the fewest (as this member sees the groups' leaders), it hands one of
 * its groups to that member by a leadership transfer. Every transfer narrows the gap, so
 * the counts settle within one of each other: after the cluster starts (whoever wins the
 * first elections), and after a member comes back from a crash.
 */
import type { MultiRaftHost } from '@quorate/multiraft';
import type { NodeId, RaftNode } from '@quorate/raft';
import type { Logger } from 'pino';
import type { Applied } from './state/machine.js';

interface Led {
  readonly group: number;
  readonly raft: RaftNode<Applied>;
}

export class Balancer {
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;
  /** Transfers started (and how many the members refused or timed out). */
  moves = 0;
  failed = 0;

  constructor(
    private readonly host: MultiRaftHost,
    private readonly shards: readonly Led[],
    private readonly intervalMs: number,
    private readonly log: Logger | undefined,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** How many groups each member leads, as this member sees them (members leading none included). */
  leaderCounts(): Map<NodeId, number> {
    const counts = new Map<NodeId, number>();
    const first = this.shards[0];
    if (!first) return counts;
    for (const id of first.raft.status().voters) counts.set(id, 0);
    for (const sh of this.shards) {
      const l = sh.raft.leaderId;
      if (l !== null) counts.set(l, (counts.get(l) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Transfers one after another while they succeed and this member still leads too many
   * (so that leaders spread within moments of a start, not one group per interval).
   */
  async round(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let i = 0; i < this.shards.length && this.timer !== null; i++) if (!(await this.step())) break;
    } finally {
      this.busy = false;
    }
  }

  /** One check, and at most one transfer: true when a group was handed over. */
  async step(): Promise<boolean> {
    const self = this.host.id;
    const counts = this.leaderCounts();
    const mine = counts.get(self) ?? 0;
    let to: NodeId | null = null;
    let least = Number.POSITIVE_INFINITY;
    for (const [id, n] of counts) {
      if (id === self || !this.host.isPeerLive(id)) continue;
      if (n < least || (n === least && to !== null && id < to)) {
        least = n;
        to = id;
      }
    }
    if (to === null || mine - least < 2) return false;
    // Only a group whose log the target holds in full and that heard from it lately: the
    // transfer is quick, and a member that just died (not yet seen down) is not chosen.
    const sh = this.shards.find((x) => {
      if (!x.raft.isLeader) return false;
      const st = x.raft.status();
      const pr = st.progress?.[to];
      return pr?.recentActive === true && pr.match === st.lastIndex;
    });
    if (!sh) return false;
    this.moves++;
    try {
      await sh.raft.transferLeadership(to);
      this.log?.debug({ group: sh.group, to, led: mine - 1 }, 'handed a group over to spread leaders');
      return true;
    } catch (err) {
      this.failed++;
      this.log?.debug({ group: sh.group, to, err: (err as Error).message }, 'a leader hand-over failed');
      return false;
    }
  }
}
