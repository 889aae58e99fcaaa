/**
 * Sessions and partition leaders (docs/partitions.md): the shapes of the API, and
 * `PartitionMember`, one process's membership of a partition set.
 *
 * ## When a member may act as a partition's leader
 *
 * The cluster hands a partition on only in the log entry that ends the member's session
 * (or its membership, or its leadership by a resignation, a move or an unclean
 * hand-over). A session lapses when the quorate leader's monotonic clock says `ttlMs` has
 * passed since it *applied* the last keep-alive (a new quorate leader restarts the count
 * at its election), and a keep-alive is applied after it was *sent*. So, as for
 * `LeaderElector`, a member that led `p` at the last confirmed keep-alive still leads it,
 * at that leader epoch, until
 *
 *     sentAt(last confirmed keep-alive) + ttlMs × (1 − maxDrift) − safetyMarginMs
 *
 * on its own monotonic clock, unless the cluster moved `p` on for another reason; those
 * other hand-overs it learns of late (the next keep-alive answer, or a watch event), which
 * is why a data plane built on this carries the leader epoch with every write and refuses
 * older ones. At the deadline, without a newer confirmation, every led partition's signal
 * aborts at once; `leading()`, `epochOf()` and `leaderEpochOf()` compare the clock on
 * every read, so a process that was frozen wakes up leading nothing.
 *
 * The keep-alive answer's `led` list is the authority on what this member leads; the
 * watch makes it learn sooner: a newer leader epoch ends a leadership at once, an
 * eligible-set change moves its epoch on, and a change naming this member as a leader
 * makes it ask at once.
 *
 * A leadership is one partition at one **leader epoch** (which the cluster bumps exactly
 * when the leader changes). A newer leader epoch ends it even when this member leads again
 * at it (someone else, or no one, led in between): the signal aborts and a `leading` event
 * at the new leader epoch follows. An eligible-set change (by this member's `setEligible`,
 * an admin, or the cluster dropping a lapsed follower) only bumps the **epoch**: the
 * leadership goes on, with the same signal, at the new epoch, which is the one its next
 * compare-and-set must name; an `epoch` event says so.
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
  /** The member of `set` that leads it (through this session). */
  member: string;
  /** Grows with every change of the leader or of the eligible set: compare-and-set is on it. */
  epoch: number;
  /** Grows with every change of the leader only: data planes fence on it. */
  leaderEpoch: number;
  /** The in-sync replicas. */
  eligible: string[];
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
  /** Grows with every change of the leader or of the eligible set: compare-and-set is on it. */
  epoch: number;
  /** Grows with every change of the leader (to a member or to none): data planes fence on it. */
  leaderEpoch: number;
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
  /** Another member leads it, or no one does (a keep-alive answer no longer listed it, or the watch or a refusal said so). */
  | 'moved'
  /** A newer leader epoch naming this member again: someone else (or no one) led in between; a `leading` event at the new one follows. */
  | 'superseded'
  /** The local deadline passed without a confirmed keep-alive. */
  | 'unconfirmed'
  /** The session was found gone (`SESSION_NOT_FOUND`). */
  | 'session-lost'
  | 'resigned'
  | 'stopped';

export type PartitionMemberEvent =
  /** A leadership begins: it lasts until `signal` aborts (and a `lost` event says why). */
  | {
      type: 'leading';
      partition: number;
      epoch: number;
      leaderEpoch: number;
      eligible: string[];
      signal: AbortSignal;
    }
  /**
   * The same leadership (same `leaderEpoch`, same signal) at a newer `epoch`: the eligible
   * set changed, by this member's `setEligible`, an admin, or the cluster. Compare-and-sets
   * name the new epoch from now on.
   */
  | { type: 'epoch'; partition: number; epoch: number; leaderEpoch: number; eligible: string[] }
  | { type: 'lost'; partition: number; epoch: number; leaderEpoch: number; reason: LostReason }
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
  /** What identifies the leadership: it never changes. */
  readonly leaderEpoch: number;
  /** The newest epoch known for it (compare-and-set is on this); goes up with eligible-set changes. */
  epoch: number;
  eligible: string[];
  readonly ctrl: AbortController;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PartitionMember {
  private readonly o: Required<Omit<PartitionMemberOptions, 'cluster'>> & { cluster: QuorateClient };
  private session: number | null = null;
  private joined = false;
  /** Partitions led, each at one leader epoch. Invariant: empty whenever `deadline` has passed. */
  private readonly led = new Map<number, Led>();
  /** Local deadline of every leadership (monotonic ms); 0 before any confirmation. */
  private deadline = 0;
  private deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Resignations: keep-alive answers sent before one settled may still list the partition
   * at the resigned leader epoch (they were applied first); they must not make it led again.
   */
  private readonly resigned = new Map<number, { leaderEpoch: number; settledAt: number | null }>();
  /**
   * The newest leader epoch heard of per partition (a watch change, a refusal, an answer):
   * a keep-alive answer applied before it (the watch can be faster) must not start a
   * leadership that is already over.
   */
  private readonly newest = new Map<number, number>();
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

  /**
   * The partitions this member leads right now (checked against the clock), each with its
   * leader epoch, its newest known epoch and eligible set, and its signal.
   */
  leading(): Map<number, { epoch: number; leaderEpoch: number; eligible: string[]; signal: AbortSignal }> {
    this.checkDeadline();
    const out = new Map<
      number,
      { epoch: number; leaderEpoch: number; eligible: string[]; signal: AbortSignal }
    >();
    for (const [p, l] of this.led)
      out.set(p, {
        epoch: l.epoch,
        leaderEpoch: l.leaderEpoch,
        eligible: [...l.eligible],
        signal: l.ctrl.signal,
      });
    return out;
  }

  /** The epoch (what a compare-and-set names) at which this member leads `partition` right now, or null. */
  epochOf(partition: number): number | null {
    this.checkDeadline();
    return this.led.get(partition)?.epoch ?? null;
  }

  /** The leader epoch (what a data plane fences on) at which this member leads `partition` right now, or null. */
  leaderEpochOf(partition: number): number | null {
    this.checkDeadline();
    return this.led.get(partition)?.leaderEpoch ?? null;
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
   * when it refused (then the next keep-alive answer that lists the partition starts a
   * leadership again); nothing to do when this member does not lead it.
   */
  async resign(partition: number): Promise<void> {
    const l = this.led.get(partition);
    if (!l || !this.checkDeadline()) return;
    const mark = { leaderEpoch: l.leaderEpoch, settledAt: null as number | null };
    this.resigned.set(partition, mark);
    this.lose(partition, 'resigned');
    try {
      const r = await this.o.cluster.resignPartition(this.o.set, partition, this.o.member, l.epoch, {
        timeoutMs: this.o.ttlMs,
      });
      this.heard(partition, r.leaderEpoch);
    } catch (err) {
      if (err instanceof StaleEpochError) this.heard(partition, err.leaderEpoch);
      // Refused: the cluster's state is what the next keep-alive says.
      if (err instanceof RejectedError) this.resigned.delete(partition);
      throw err;
    } finally {
      mark.settledAt = this.o.now();
      this.wakeUp();
    }
  }

  /**
   * Set `partition`'s eligible set (it must hold this member), compare-and-set on the epoch
   * this member knows for its leadership; on success the leadership goes on at the new
   * epoch (same leader epoch, same signal, an `epoch` event). Throws `StaleEpochError` when
   * the cluster's epoch is newer: with a newer leader epoch the leadership is over (`lost`);
   * with the same one only the eligible set changed meanwhile, and the change can be made
   * again once the member knows the new epoch (its `epoch` event, after the next keep-alive,
   * which goes at once).
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
    let r: PartitionState;
    try {
      r = await this.o.cluster.updateEligible(
        this.o.set,
        partition,
        { member: this.o.member, epoch: l.epoch, eligible },
        { timeoutMs: this.o.ttlMs },
      );
    } catch (err) {
      if (err instanceof StaleEpochError) this.heard(partition, err.leaderEpoch);
      if (err instanceof StaleEpochError && this.led.get(partition) === l) {
        // A newer leader epoch (or none given): the leadership is over.
        if (!(err.leaderEpoch <= l.leaderEpoch))
          this.lose(partition, err.leader === this.o.member ? 'superseded' : 'moved');
      }
      // Whatever the refusal, the next keep-alive says where things stand.
      if (err instanceof RejectedError) this.wakeUp();
      throw err;
    }
    // The same leadership, if it was not lost meanwhile, goes on at the new epoch. (A
    // keep-alive answer or a watch change may have brought it already, or an older answer
    // may still come: epochs only go up.)
    this.heard(partition, r.leaderEpoch);
    if (this.led.get(partition) === l && r.leaderEpoch === l.leaderEpoch)
      this.updateEpoch(partition, l, r.epoch, r.eligible);
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
    const listed = new Map<number, LedPartition>();
    for (const x of led) {
      const mark = this.resigned.get(x.partition);
      if (mark && x.leaderEpoch <= mark.leaderEpoch) continue;
      this.heard(x.partition, x.leaderEpoch);
      listed.set(x.partition, x);
    }
    for (const [p, l] of [...this.led]) {
      const x = listed.get(p);
      if (x === undefined) this.lose(p, 'moved');
      else if (x.leaderEpoch > l.leaderEpoch) this.lose(p, 'superseded');
      // The same leadership: at a newer epoch if the eligible set changed (an older one
      // comes from before this member's own setEligible answered).
      else if (x.leaderEpoch === l.leaderEpoch) this.updateEpoch(p, l, x.epoch, x.eligible);
    }
    for (const [p, x] of listed) {
      // Already led: at this leader epoch (above), or at a newer one than this answer's,
      // which cannot be (answers come in the order they were applied).
      if (this.led.has(p)) continue;
      // Over already: the watch (or a refusal) told of a newer leader epoch.
      if (x.leaderEpoch < (this.newest.get(p) ?? 0)) continue;
      const ctrl = new AbortController();
      this.led.set(p, { leaderEpoch: x.leaderEpoch, epoch: x.epoch, eligible: [...x.eligible], ctrl });
      this.emit({
        type: 'leading',
        partition: p,
        epoch: x.epoch,
        leaderEpoch: x.leaderEpoch,
        eligible: [...x.eligible],
        signal: ctrl.signal,
      });
    }
  }

  /** `partition` is at leader epoch `leaderEpoch` or past it. */
  private heard(partition: number, leaderEpoch: number): void {
    if (leaderEpoch > (this.newest.get(partition) ?? 0)) this.newest.set(partition, leaderEpoch);
  }

  /** The leadership `l` of `partition` at a newer `epoch` (its eligible set changed): same signal. */
  private updateEpoch(partition: number, l: Led, epoch: number, eligible: readonly string[]): void {
    if (!(epoch > l.epoch)) return;
    l.epoch = epoch;
    l.eligible = [...eligible];
    this.emit({ type: 'epoch', partition, epoch, leaderEpoch: l.leaderEpoch, eligible: [...eligible] });
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
   * Follow the set's partition changes: a newer leader epoch of a partition this member
   * leads ends that leadership right away, and the same one at a newer epoch (an
   * eligible-set change) carries it on to that epoch; a change naming this member as the
   * leader of a partition it does not lead (yet), or ending one of its leaderships, makes
   * the next keep-alive go at once.
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
              this.heard(c.partition, c.leaderEpoch);
              // Past the deadline, nothing is led any more (and nothing must be updated).
              const l = this.checkDeadline() ? this.led.get(c.partition) : undefined;
              if (!l) {
                if (c.leader === this.o.member) this.wakeUp();
              } else if (c.leaderEpoch > l.leaderEpoch) {
                this.lose(c.partition, c.leader === this.o.member ? 'superseded' : 'moved');
                this.wakeUp();
              } else if (c.leaderEpoch === l.leaderEpoch) {
                this.updateEpoch(c.partition, l, c.epoch, c.eligible);
              }
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
    l.ctrl.abort(
      new Error(`leadership of ${this.o.set}/${partition} at leader epoch ${l.leaderEpoch} ended: ${reason}`),
    );
    this.emit({ type: 'lost', partition, epoch: l.epoch, leaderEpoch: l.leaderEpoch, reason });
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
