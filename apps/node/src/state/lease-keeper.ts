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
 *
 * Sessions (docs/partitions.md) are kept the same way, and end with `session-expire`.
 */
import type { RaftNode } from '@quorate/raft';
import { encodeCommand } from './commands.js';
import type { Applied, LeaseRecord, QuorateMachine } from './machine.js';
import type { SessionRecord } from './partitions.js';

export class LeaseKeeper {
  /** name -> the grant (token, last renewal's index) and its monotonic deadline in ms */
  private readonly deadlines = new Map<string, { token: number; renewedIndex: number; at: number }>();
  private readonly expiring = new Set<string>();
  /** session id -> its last keep-alive's index and its monotonic deadline in ms */
  private readonly sessionDeadlines = new Map<number, { renewedIndex: number; at: number }>();
  private readonly sessionsExpiring = new Set<number>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly raft: RaftNode<Applied>,
    machine: QuorateMachine,
    private readonly now: () => number = () => performance.now(),
  ) {
    machine.onLease = (name, lease) => this.onLease(name, lease);
    machine.onSession = (id, session) => this.onSession(id, session);
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

  private onSession(id: number, s: SessionRecord | null): void {
    this.sessionsExpiring.delete(id);
    if (s === null) this.sessionDeadlines.delete(id);
    else this.sessionDeadlines.set(id, { renewedIndex: s.renewedIndex, at: this.now() + s.ttlMs });
  }

  private restartAll(machine: QuorateMachine): void {
    const t = this.now();
    for (const l of machine.leases.values())
      this.deadlines.set(l.name, { token: l.token, renewedIndex: l.renewedIndex, at: t + l.ttlMs });
    this.expiring.clear();
    for (const s of machine.partitions.sessions.values())
      this.sessionDeadlines.set(s.id, { renewedIndex: s.renewedIndex, at: t + s.ttlMs });
    this.sessionsExpiring.clear();
  }

  /** The leader's view of a session's remaining time. */
  sessionRemainingMs(id: number): number | null {
    const d = this.sessionDeadlines.get(id);
    return d ? Math.max(0, Math.round(d.at - this.now())) : null;
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
    for (const [session, d] of this.sessionDeadlines) {
      if (d.at > t || this.sessionsExpiring.has(session)) continue;
      this.sessionsExpiring.add(session);
      this.raft
        .propose(encodeCommand({ op: 'session-expire', session, renewedIndex: d.renewedIndex }), {
          timeoutMs: 2000,
        })
        .catch(() => {})
        .finally(() => this.sessionsExpiring.delete(session));
    }
  }
}
