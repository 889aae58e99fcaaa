/**
 * Sessions and partition leaders (docs/partitions.md): the shapes of the API, and
 * `PartitionMember`, one process's membership of a partition set.
 *
 * ## When a member may act as a partition's leader
 *
 * The cluster hands a partition on only in the log entry that ends the member's session
 * (or its membership, or its leadership by a resignation, a move or an eligibility
 * change). A session lapses when the quorate leader's monotonic clock says `ttlMs` has
 * passed since it *applied* the last keep-alive (a new quorate leader restarts the count
 * at its election), and a keep-alive is applied after it was *sent*. So, as for
 * `LeaderElector`, a member that led `p` at the last confirmed keep-alive still leads it,
 * at that epoch, until
 *
 *     sentAt(last confirmed keep-alive) + ttlMs × (1 − maxDrift) − safetyMarginMs
 *
 * on its own monotonic clock, unless the cluster moved `p` on for another reason; those
 * other hand-overs it learns of late (the next keep-alive answer, or a watch event), which
 * is why a data plane built on this carries the epoch with every write and refuses older
 * epochs. At the deadline, without a newer confirmation, every led partition's signal
 * aborts at once; `leading()` and `epochOf()` compare the clock on every read, so a
 * process that was frozen wakes up leading nothing.
 *
 * The keep-alive answer's `led` list is the authority on what this member leads; the
 * watch only makes it ask sooner (and ends a leadership at once when it shows another
 * member leading the partition at a newer epoch).
 *
 * A leadership is one partition at one epoch. A newer epoch ends it even when this member
 * still leads (say its eligible set changed while it heard nothing): the signal aborts and
 * a `leading` event at the new epoch follows, because the member cannot tell whether
 * someone else led in between, and a data plane fencing on epochs refuses the old one
 * anyway. Only this member's own `setEligible` carries a leadership on to the new epoch,
 * with the same signal.
 */
import type { QuorateClient } from './client.js';
import { ClientError, RejectedError, StaleEpochError } from './errors.js';

// ---------------------------------------------------------------- the API's shapes

export interface Session {
  /** The log index that opened it; never reused. */
  id: number;
  owner: string;
  ttlMs: number;
}

/** A partition a session's members lead, as a keep-alive answer lists it. */
export interface LedPartition {
  set: string;
  partition: number;
  epoch: number;
}

export interface KeepAliveResult extends Session {
  led: LedPartition[];
}

export interface SessionState extends Session {
  members: { set: string; member: string }[];
  /** The quorate leader's view of the time left; null when another member answered. */
  remainingMs: number | null;
}

export interface PartitionState {
  partition: number;
  /** null: leaderless. */
  leader: string | null;
  /** Grows with every change of the leader or of the eligible set. */
  epoch: number;
  /** The in-sync replicas: who may lead. */
  eligible: string[];
  replicas: string[];
}

export interface PartitionSet {
  name: string;
  /** `session`: the live session the member joined with, or null. */
  members: { id: string; session: number | null }[];
  partitions: PartitionState[];
}

export interface PartitionSetSummary {
  name: string;
  /** How many partitions. */
  partitions: number;
  /** How many members. */
  members: number;
  /** How many members are live (joined with a live session); absent from older nodes. */
  live?: number;
  /** How many partitions have no leader. */
  leaderless: number;
}

export interface CreatePartitionSetSpec {
  name: string;
  members: string[];
  /** With `replicationFactor`: replicas round robin (partition p gets members p, p+1, …). */
  partitions?: number;
  replicationFactor?: number;
  /** Or each partition's replicas, the first one the preferred leader. */
  replicas?: string[][];
}

/** `POST /partitions/<set>/<p>/eligible`: by the leader (`member`) or an admin, at `epoch`. */
export type EligibleUpdate = { epoch: number; eligible: string[] } & (
  | { member: string; admin?: never }
  | { admin: true; member?: never }
);

// ---------------------------------------------------------------- PartitionMember

export interface PartitionMemberOptions {
  /** The client to reach the cluster with (`http://` endpoints: these calls are on the HTTP API). */
  cluster: QuorateClient;
  /** The partition set to join. */
  set: string;
  /** This process's member id in the set (one of the set's members). */
  member: string;
  /** The session's time-to-live (within the nodes' lease TTL bounds). */
  ttlMs: number;
  /** How often to send a keep-alive. At most ttlMs / 3. */
  keepAliveEveryMs: number;
  /** Bound on clock-rate difference between this process and the cluster. Default 0.02. */
  maxDrift?: number;
  /** Extra margin for timer lateness. Default min(100, ttlMs / 10) ms. */
  safetyMarginMs?: number;
  /** Monotonic clock (ms). Default performance.now. */
  now?: () => number;
}

export type LostReason =
  /** A keep-alive answer no longer listed it (moved, resigned elsewhere, eligibility changed). */
  | 'moved'
  /** A newer epoch was seen: a leadership at the older one is over (it may continue at the new one). */
  | 'superseded'
  /** The local deadline passed without a confirmed keep-alive. */
  | 'unconfirmed'
  /** The session was found gone (`SESSION_NOT_FOUND`). */
  | 'session-lost'
  | 'resigned'
  | 'stopped';

export type PartitionMemberEvent =
  | { type: 'leading'; partition: number; epoch: number; signal: AbortSignal }
  | { type: 'lost'; partition: number; epoch: number; reason: LostReason }
  | { type: 'session-lost' }
  | { type: 'joined'; session: number }
  | { type: 'error'; during: 'session' | 'join' | 'keepalive' | 'watch'; error: Error };

export class PartitionMemberConfigError extends ClientError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, false);
    this.name = 'PartitionMemberConfigError';
  }
}

interface Led {
  epoch: number;
  ctrl: AbortController;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PartitionMember {
  private readonly o: Required<Omit<PartitionMemberOptions, 'cluster'>> & { cluster: QuorateClient };
  private session: number | null = null;
  private joined = false;
  /** Partitions led, with their epochs. Invariant: empty whenever `deadline` has passed. */
  private readonly led = new Map<number, Led>();
  /** Local deadline of every leadership (monotonic ms); 0 before any confirmation. */
  private deadline = 0;
  private deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Resignations: keep-alive answers sent before one settled may still list the partition
   * at the resigned epoch (they were applied first); they must not make it led again.
   */
  private readonly resigned = new Map<number, { epoch: number; settledAt: number | null }>();
  /**
   * Eligibility changes of this member in flight (partition -> the epoch they were made
   * at): a keep-alive answer one epoch above is most likely that change, and its own
   * answer settles it, not the keep-alive.
   */
  private readonly changing = new Map<number, number>();
  private running = false;
  private loop: Promise<void> | null = null;
  private watching: { ctrl: AbortController; done: Promise<void> } | null = null;
  /** Wakes the loop early (a watch event, a join, stop). */
  private poke: (() => void) | null = null;
  private poked = false;
  private joinFailures = 0;
  private joinNotBefore = 0;
  private readonly listeners = new Set<(e: PartitionMemberEvent) => void>();

  constructor(opts: PartitionMemberOptions) {
    const issues: string[] = [];
    if (!opts.cluster) issues.push('cluster (a QuorateClient) is required');
    if (typeof opts.set !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(opts.set))
      issues.push('set must be 1 to 128 characters of [A-Za-z0-9._-]');
    if (typeof opts.member !== 'string' || opts.member.length === 0 || opts.member.length > 128)
      issues.push('member must be a string of 1 to 128 characters');
    if (!Number.isInteger(opts.ttlMs) || opts.ttlMs < 100 || opts.ttlMs > 3_600_000)
      issues.push(`ttlMs must be an integer from 100 to 3600000 (got ${opts.ttlMs})`);
    if (!Number.isInteger(opts.keepAliveEveryMs) || opts.keepAliveEveryMs < 10) {
      issues.push(`keepAliveEveryMs must be an integer >= 10 (got ${opts.keepAliveEveryMs})`);
    } else if (opts.keepAliveEveryMs * 3 > opts.ttlMs) {
      issues.push(
        `keepAliveEveryMs (${opts.keepAliveEveryMs}) must be at most a third of ttlMs (${opts.ttlMs}), so that two failed keep-alives in a row do not lose the session`,
      );
    }
    const drift = opts.maxDrift ?? 0.02;
    if (typeof drift !== 'number' || !(drift >= 0 && drift < 0.5))
      issues.push(`maxDrift must be a number in [0, 0.5) (got ${String(drift)})`);
    const margin = opts.safetyMarginMs ?? Math.min(100, Math.floor(opts.ttlMs / 10));
    if (typeof margin !== 'number' || !Number.isFinite(margin) || margin < 0 || margin >= opts.ttlMs / 2)
      issues.push(`safetyMarginMs must be a number from 0 to below half of ttlMs (got ${String(margin)})`);
    if (opts.now !== undefined && typeof opts.now !== 'function') issues.push('now must be a function');
    if (issues.length > 0)
      throw new PartitionMemberConfigError(`invalid PartitionMember options: ${issues.join('; ')}`);
    this.o = {
      cluster: opts.cluster,
      set: opts.set,
      member: opts.member,
      ttlMs: opts.ttlMs,
      keepAliveEveryMs: opts.keepAliveEveryMs,
      maxDrift: drift,
      safetyMarginMs: margin,
      now: opts.now ?? (() => performance.now()),
    };
  }

  /** The partitions this member leads right now, with their epochs and signals (checked against the clock). */
  leading(): Map<number, { epoch: number; signal: AbortSignal }> {
    this.checkDeadline();
    const out = new Map<number, { epoch: number; signal: AbortSignal }>();
    for (const [p, l] of this.led) out.set(p, { epoch: l.epoch, signal: l.ctrl.signal });
    return out;
  }

  /** The epoch at which this member leads `partition` right now, or null. */
  epochOf(partition: number): number | null {
    this.checkDeadline();
    return this.led.get(partition)?.epoch ?? null;
  }

  /** The session this member holds, if any. */
  get sessionId(): number | null {
    return this.session;
  }

  on(fn: (e: PartitionMemberEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Open a session, join the set, keep the session alive and follow the set's changes. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
    this.watching = this.follow();
  }

  /**
   * Hand `partition` on (to another eligible live replica, else it becomes leaderless).
   * Its signal aborts first. Throws what the cluster answered (`StaleEpochError`, ...)
   * when it refused; nothing to do when this member does not lead it.
   */
  async resign(partition: number): Promise<void> {
    const l = this.led.get(partition);
    if (!l || !this.checkDeadline()) return;
    const mark = { epoch: l.epoch, settledAt: null as number | null };
    this.resigned.set(partition, mark);
    this.lose(partition, 'resigned');
    try {
      await this.o.cluster.resignPartition(this.o.set, partition, this.o.member, l.epoch, {
        timeoutMs: this.o.ttlMs,
      });
    } catch (err) {
      // Refused: the cluster's state is what the next keep-alive says.
      if (err instanceof RejectedError) this.resigned.delete(partition);
      throw err;
    } finally {
      mark.settledAt = this.o.now();
      this.wakeUp();
    }
  }

  /**
   * Set `partition`'s eligible set (it must hold this member), at the epoch this member
   * leads it at; on success the leadership goes on at the new epoch (same signal).
   * Throws `StaleEpochError` when the cluster's epoch is newer.
   */
  async setEligible(partition: number, eligible: string[]): Promise<PartitionState> {
    const l = this.led.get(partition);
    if (!l || !this.checkDeadline()) {
      throw new RejectedError(
        409,
        'NOT_PARTITION_LEADER',
        `${this.o.member} does not lead partition ${partition} of ${this.o.set} right now`,
        {},
      );
    }
    const base = l.epoch;
    this.changing.set(partition, base);
    let r: PartitionState;
    try {
      r = await this.o.cluster.updateEligible(
        this.o.set,
        partition,
        { member: this.o.member, epoch: base, eligible },
        { timeoutMs: this.o.ttlMs },
      );
    } catch (err) {
      // A newer epoch: the leadership at this one is over (the next keep-alive says
      // whether it goes on at the newer one).
      if (err instanceof StaleEpochError && err.epoch > base && this.led.get(partition) === l) {
        this.lose(partition, 'superseded');
        this.wakeUp();
      }
      throw err;
    } finally {
      if (this.changing.get(partition) === base) this.changing.delete(partition);
    }
    // The same leadership, if it was not lost meanwhile, goes on at the new epoch.
    if (this.led.get(partition) === l && r.epoch > l.epoch) l.epoch = r.epoch;
    return r;
  }

  /** Leave the set and close the session (a graceful shutdown); every signal aborts first. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeUp();
    this.watching?.ctrl.abort();
    await this.loop;
    await this.watching?.done;
    this.watching = null;
    this.loseAll('stopped');
    const session = this.session;
    this.session = null;
    if (session === null) return;
    const opts = { timeoutMs: this.o.ttlMs };
    try {
      if (this.joined) await this.o.cluster.leavePartitionSet(this.o.set, this.o.member, session, opts);
    } catch {
      // The session's close (or its lapse) releases the membership as well.
    }
    this.joined = false;
    try {
      await this.o.cluster.closeSession(session, opts);
    } catch {
      // Not closed: it lapses after its TTL, as if this process had crashed.
    }
  }

  // ---------------------------------------------------------------- the loop

  private emit(e: PartitionMemberEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        // a listener's failure must not stop the member
      }
    }
  }

  private wakeUp(): void {
    this.poked = true;
    this.poke?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.poked) return Promise.resolve();
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.poke = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  /**
   * One round per keep-alive interval (sooner when poked): a session if there is none,
   * a join while not joined (after its backoff), then a keep-alive.
   */
  private async run(): Promise<void> {
    while (this.running) {
      const started = this.o.now();
      this.poked = false;
      if (this.session === null) await this.openSession();
      if (this.running && this.session !== null && !this.joined && this.o.now() >= this.joinNotBefore)
        await this.join();
      if (this.running && this.session !== null) await this.keepAlive();
      if (!this.running) break;
      let wait = this.o.keepAliveEveryMs - (this.o.now() - started);
      if (this.session === null) wait = Math.min(wait, this.backoff());
      else if (!this.joined) wait = Math.min(wait, this.joinNotBefore - this.o.now());
      await this.sleep(Math.max(0, wait));
      this.poke = null;
    }
  }

  private backoff(): number {
    const base = Math.max(10, Math.floor(this.o.keepAliveEveryMs / 2));
    const ms = Math.min(this.o.ttlMs / 2, base * 2 ** Math.min(this.joinFailures, 16));
    return ms / 2 + Math.random() * (ms / 2);
  }

  private async openSession(): Promise<void> {
    try {
      const s = await this.o.cluster.openSession(this.o.member, this.o.ttlMs, {
        timeoutMs: this.o.keepAliveEveryMs,
      });
      this.session = s.id;
      this.joined = false;
      this.joinFailures = 0;
      this.joinNotBefore = 0;
    } catch (err) {
      this.joinFailures++;
      this.emit({ type: 'error', during: 'session', error: err as Error });
    }
  }

  private async join(): Promise<void> {
    const session = this.session!;
    try {
      await this.o.cluster.joinPartitionSet(this.o.set, this.o.member, session, {
        timeoutMs: this.o.keepAliveEveryMs,
      });
      if (this.session !== session) return;
      this.joined = true;
      this.joinFailures = 0;
      this.emit({ type: 'joined', session });
    } catch (err) {
      if (err instanceof RejectedError && err.serverCode === 'SESSION_NOT_FOUND') {
        this.sessionLost(session);
        return;
      }
      // MEMBER_TAKEN: an older session (this member's, before a restart) still holds the
      // member until it lapses; anything else is reported and tried again, backing off.
      this.joinFailures++;
      this.joinNotBefore = this.o.now() + this.backoff();
      this.emit({ type: 'error', during: 'join', error: err as Error });
    }
  }

  private async keepAlive(): Promise<void> {
    const session = this.session!;
    const sentAt = this.o.now();
    let r: KeepAliveResult;
    try {
      r = await this.o.cluster.keepAlive(session, { timeoutMs: this.o.keepAliveEveryMs });
    } catch (err) {
      if (err instanceof RejectedError && err.serverCode === 'SESSION_NOT_FOUND') this.sessionLost(session);
      else this.emit({ type: 'error', during: 'keepalive', error: err as Error });
      // Otherwise keep trying: the local deadline ends every leadership if nothing gets through.
      return;
    }
    if (this.session !== session || !this.running) return;
    this.confirm(
      r.led.filter((x) => x.set === this.o.set),
      sentAt,
    );
  }

  /** A keep-alive sent at `sentAt` was applied while this session's members led `led`. */
  private confirm(led: LedPartition[], sentAt: number): void {
    const until = this.localDeadline(sentAt);
    // An answer that arrives after the time it could vouch for confirms nothing.
    if (until <= this.o.now()) return;
    if (until > this.deadline) this.extend(until);
    for (const [p, mark] of this.resigned)
      if (mark.settledAt !== null && sentAt >= mark.settledAt) this.resigned.delete(p);
    const listed = new Map<number, number>();
    for (const x of led) {
      const mark = this.resigned.get(x.partition);
      if (mark && x.epoch <= mark.epoch) continue;
      listed.set(x.partition, x.epoch);
    }
    for (const [p, l] of [...this.led]) {
      const epoch = listed.get(p);
      if (epoch === undefined) this.lose(p, 'moved');
      else if (epoch === l.epoch + 1 && this.changing.get(p) === l.epoch) continue;
      else if (epoch > l.epoch) this.lose(p, 'superseded');
    }
    for (const [p, epoch] of listed) {
      const l = this.led.get(p);
      // Lower: an answer from before a change this member made itself (setEligible).
      if (l) continue;
      const ctrl = new AbortController();
      this.led.set(p, { epoch, ctrl });
      this.emit({ type: 'leading', partition: p, epoch, signal: ctrl.signal });
    }
  }

  private sessionLost(session: number): void {
    if (this.session !== session) return;
    this.session = null;
    this.joined = false;
    this.loseAll('session-lost');
    this.emit({ type: 'session-lost' });
    this.wakeUp();
  }

  // ---------------------------------------------------------------- the watch

  /**
   * Follow the set's partition changes: one naming this member, or a partition it leads,
   * makes the next keep-alive go at once; another member leading one of ours at a newer
   * epoch ends that leadership right away.
   */
  private follow(): { ctrl: AbortController; done: Promise<void> } {
    const ctrl = new AbortController();
    const done = (async () => {
      let failures = 0;
      while (!ctrl.signal.aborted) {
        try {
          for await (const b of this.o.cluster.watch({ partitions: this.o.set, signal: ctrl.signal })) {
            failures = 0;
            for (const c of b.changes) {
              if (c.type !== 'partition' || c.set !== this.o.set) continue;
              const l = this.led.get(c.partition);
              if (l && c.epoch > l.epoch && c.leader !== this.o.member) this.lose(c.partition, 'moved');
              if (l || c.leader === this.o.member) this.wakeUp();
            }
          }
        } catch (err) {
          if (ctrl.signal.aborted) break;
          this.emit({ type: 'error', during: 'watch', error: err as Error });
        }
        if (!ctrl.signal.aborted) await sleep(Math.min(this.o.ttlMs, 100 * 2 ** Math.min(failures++, 8)));
      }
    })();
    return { ctrl, done };
  }

  // ---------------------------------------------------------------- deadlines

  /** Leadership holds until the last confirmed keep-alive's send time + TTL, less margins. */
  private localDeadline(sentAt: number): number {
    return sentAt + this.o.ttlMs * (1 - this.o.maxDrift) - this.o.safetyMarginMs;
  }

  private extend(until: number): void {
    this.deadline = until;
    this.armDeadline();
  }

  /**
   * A timer for the deadline. Node rounds a timer's delay to whole milliseconds and may
   * fire it up to one early by `performance.now()`: a timer that finds the deadline not
   * yet passed sets itself again, or leaderships would outlive it until the next read.
   */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    const wait = this.deadline - this.o.now();
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = null;
        if (this.checkDeadline()) this.armDeadline();
      },
      Math.max(0, Math.ceil(wait) + 1),
    );
  }

  /** Whether the deadline is still ahead; once it has passed, every leadership ends. */
  private checkDeadline(): boolean {
    if (this.o.now() < this.deadline) return true;
    this.loseAll('unconfirmed');
    return false;
  }

  private lose(partition: number, reason: LostReason): void {
    const l = this.led.get(partition);
    if (!l) return;
    this.led.delete(partition);
    l.ctrl.abort(new Error(`leadership of ${this.o.set}/${partition} at epoch ${l.epoch} ended: ${reason}`));
    this.emit({ type: 'lost', partition, epoch: l.epoch, reason });
  }

  private loseAll(reason: LostReason): void {
    for (const p of [...this.led.keys()]) this.lose(p, reason);
    if (reason !== 'unconfirmed') {
      this.deadline = 0;
      if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
      this.deadlineTimer = null;
    }
  }
}
