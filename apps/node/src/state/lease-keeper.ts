/**
 * Lease expiry, decided through the log. Every replica learns grants and renewals as it
 * applies them; only the leader acts on time: when a lease's TTL has passed on its own
 * monotonic clock since the last renewal it applied, it proposes `expire(name, token)`.
 *
 * A new leader does not know when its predecessor last saw a renewal, so it restarts
 * every lease's TTL from its own election: a holder never loses a lease early because of
 * a failover, only later. Expiry therefore never happens before TTL has passed since the
 * holder *sent* its last successful renewal, which is what holders rely on to stop in
 * time (see `LeaderElector` in `@quorate/client`).
 */
import type { RaftNode } from '@quorate/raft';
import { encodeCommand } from './commands.js';
import type { Applied, LeaseRecord, QuorateMachine } from './machine.js';

export class LeaseKeeper {
  /** name -> the grant (token, last renewal's index) and its monotonic deadline in ms */
  private readonly deadlines = new Map<string, { token: number; renewedIndex: number; at: number }>();
  private readonly expiring = new Set<string>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly raft: RaftNode<Applied>,
    machine: QuorateMachine,
    private readonly now: () => number = () => performance.now(),
  ) {
    machine.onLease = (name, lease) => this.onLease(name, lease);
    raft.events.on('leaderChanged', (e) => {
      if (e.leaderId === raft.id) this.restartAll(machine);
    });
  }

  private onLease(name: string, lease: LeaseRecord | null): void {
    if (lease === null) {
      this.deadlines.delete(name);
      this.expiring.delete(name);
      return;
    }
    this.deadlines.set(name, {
      token: lease.token,
      renewedIndex: lease.renewedIndex,
      at: this.now() + lease.ttlMs,
    });
    this.expiring.delete(name);
  }

  private restartAll(machine: QuorateMachine): void {
    const t = this.now();
    for (const l of machine.leases.values())
      this.deadlines.set(l.name, { token: l.token, renewedIndex: l.renewedIndex, at: t + l.ttlMs });
    this.expiring.clear();
  }

  /** The leader's view of a lease's remaining time, for `GET /leases/<name>`. */
  remainingMs(name: string): number | null {
    const d = this.deadlines.get(name);
    return d ? Math.max(0, Math.round(d.at - this.now())) : null;
  }

  start(intervalMs = 25): void {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(): void {
    if (!this.raft.isLeader) return;
    const t = this.now();
    for (const [name, d] of this.deadlines) {
      if (d.at > t || this.expiring.has(name)) continue;
      this.expiring.add(name);
      this.raft
        .propose(encodeCommand({ op: 'expire', name, token: d.token, renewedIndex: d.renewedIndex }), {
          timeoutMs: 2000,
        })
        .catch(() => {})
        .finally(() => this.expiring.delete(name));
    }
  }
}
