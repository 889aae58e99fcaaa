/**
 * One partition on one broker: its log, and this broker's role for it: leader (a
 * `Leadership`) or follower (the `follow` loop). The broker's `PartitionMember` decides
 * the role; a newer leader epoch shown by a follower or a producer ends a leadership sooner.
 */
import type { PartitionState } from '@quorate/client';
import type { Directory } from './directory.js';
import { BrokerError, notLeader } from './errors.js';
import { follow } from './follower.js';
import { Leadership } from './leadership.js';
import { PartitionLog } from './log.js';
import { type FetchAnswer, type ProduceAnswer, type ReadAnswer, toWire } from './wire.js';

export interface ReplicaOptions {
  readonly self: string;
  readonly partition: number;
  /** The partition's replicas (they never change for a set). */
  readonly replicas: readonly string[];
  readonly directory: Directory;
  /** A follower not caught up for this long leaves the eligible set. */
  readonly maxLagMs: number;
  /** How long a produce waits for its acknowledgement before answering 503. */
  readonly ackTimeoutMs: number;
  /** How long a fetch with nothing new waits for an entry. */
  readonly maxWaitMs: number;
  /** The most entries one fetch or read answers. */
  readonly maxBatch: number;
  /** The member's compare-and-set of this partition's eligible set (at the epoch it knows). */
  setEligible(eligible: string[]): Promise<PartitionState>;
  /** Whether the member still leads the partition at `leaderEpoch` (its deadline checked now, not by a timer). */
  stillLeads(leaderEpoch: number): boolean;
  say(message: string): void;
}

export interface FetchQuery {
  from: number;
  /** The newest leader epoch the follower knows. */
  leaderEpoch: number;
  /** The leader epoch of the follower's last entry. */
  lastLeaderEpoch: number;
  replica: string;
  maxWaitMs: number;
}

/** What the member says when a leadership begins (its `leading` event). */
export interface LeadingAt {
  leaderEpoch: number;
  epoch: number;
  eligible: readonly string[];
}

export class PartitionReplica {
  readonly log = new PartitionLog();
  /** Entries below this are acknowledged. Never goes down (they are on every later leader). */
  private hw = 0;
  /** The newest leader epoch this broker has seen for the partition. */
  private knownLeaderEpoch = 0;
  private leadership: Leadership | null = null;
  private following: AbortController | null = null;
  /**
   * Whether this process's log is known to hold everything acknowledged: it has caught up
   * with a leader, or led. A broker keeps its log in memory only, so a restarted one
   * starts without (see `lead`).
   */
  private synced = false;
  private readonly listeners = new Set<() => void>();
  private stopped = false;

  constructor(private readonly o: ReplicaOptions) {}

  get partition(): number {
    return this.o.partition;
  }

  get highWatermark(): number {
    return this.hw;
  }

  // ---------------------------------------------------------------- roles

  /** The member says this broker leads at `at.leaderEpoch` until `signal` aborts. */
  lead(at: LeadingAt, signal: AbortSignal): void {
    this.end(this.leadership, 'a new leadership begins');
    const refusal = this.stopped || signal.aborted ? 'over already' : this.refuseToLead(at);
    if (refusal !== null) {
      if (!this.stopped)
        this.o.say(
          `partition ${this.o.partition}: NOT LEADING at leader epoch ${at.leaderEpoch}: ${refusal}`,
        );
      this.follow();
      return;
    }
    this.stopFollowing();
    this.synced = true;
    const l = new Leadership(
      {
        self: this.o.self,
        partition: this.o.partition,
        maxLagMs: this.o.maxLagMs,
        now: () => performance.now(),
        end: () => this.log.end,
        setEligible: (e) => this.o.setEligible(e),
        changed: () => this.notify(),
        say: this.o.say,
      },
      { ...at, replicas: this.o.replicas },
      signal,
      this.hw,
    );
    this.leadership = l;
    this.o.say(
      `partition ${this.o.partition}: leading at leader epoch ${l.leaderEpoch} (epoch ${l.epoch}), eligible ${at.eligible.join(',')}, log end ${this.log.end}, hw ${this.hw}`,
    );
    signal.addEventListener('abort', () => this.end(l, 'the member ended it', true), { once: true });
    this.notify();
    this.advance();
  }

  /** Why this broker must not take up the leadership the member announced, if it must not. */
  private refuseToLead(at: LeadingAt): string | null {
    // A follower or a producer showed a newer leader epoch already: this leadership is over.
    if (at.leaderEpoch < this.knownLeaderEpoch) return `leader epoch ${this.knownLeaderEpoch} seen already`;
    this.learnLeaderEpoch(at.leaderEpoch);
    if (!this.synced && this.o.replicas.length > 1 && at.eligible.length === 1) {
      // quorate keeps a partition's last eligible replica eligible when its session
      // lapses, because a log on disk would still hold everything acknowledged. This one
      // restarted and lost its log: leading would make the followers drop acknowledged
      // records to match it. Refuse; an operator can hand the partition to a replica that
      // holds the data (`POST /partitions/<set>/<p>/unclean`).
      return 'the last eligible replica, but this process restarted (its log is in memory) and has not caught up since; hand the partition to a replica with the data (unclean)';
    }
    return null;
  }

  /** The member says the eligible set of its leadership at `leaderEpoch` is now `eligible`, at `epoch`. */
  epochChanged(leaderEpoch: number, epoch: number, eligible: readonly string[]): void {
    const l = this.leadership;
    if (l?.leaderEpoch === leaderEpoch) l.onEpoch(epoch, eligible);
    this.advance();
  }

  /** The member says its leadership at `leaderEpoch` is over (also when its signal aborts). */
  lost(leaderEpoch: number): void {
    const l = this.leadership;
    if (l && l.leaderEpoch <= leaderEpoch) this.end(l, 'the member lost it', true);
    else this.follow();
  }

  /** End `l` if it is the current leadership; then follow, if asked (and not leading). */
  private end(l: Leadership | null, why: string, thenFollow = false): void {
    if (!l || this.leadership !== l) {
      if (thenFollow) this.follow();
      return;
    }
    this.o.say(`partition ${this.o.partition}: no longer leading (leader epoch ${l.leaderEpoch}): ${why}`);
    l.end();
    this.leadership = null;
    this.notify();
    if (thenFollow) this.follow();
  }

  /**
   * A follower or a producer knows leader epoch `seen`, newer than this leadership's:
   * quorate has handed the partition on since (leader epochs only grow with changes of
   * leader), so this broker is deposed, whatever its member has heard yet.
   */
  private depose(l: Leadership, seen: number, who: string): void {
    this.learnLeaderEpoch(seen);
    this.end(l, `deposed: ${who} knows leader epoch ${seen}`, true);
  }

  /** Copy from whoever leads (unless already doing so). */
  follow(): void {
    if (this.stopped || this.following || this.leadership) return;
    const ctrl = new AbortController();
    this.following = ctrl;
    void follow(
      {
        self: this.o.self,
        partition: this.o.partition,
        log: this.log,
        directory: this.o.directory,
        knownLeaderEpoch: () => this.knownLeaderEpoch,
        learnLeaderEpoch: (e) => this.learnLeaderEpoch(e),
        learnHighWatermark: (hw) => {
          if (hw > this.hw) this.hw = hw;
        },
        caughtUp: () => {
          this.synced = true;
        },
        truncated: () => this.notify(),
        maxWaitMs: this.o.maxWaitMs,
        relookupMs: 1000,
        say: this.o.say,
      },
      ctrl.signal,
    )
      .catch((err) => this.o.say(`partition ${this.o.partition}: follower stopped: ${String(err)}`))
      .finally(() => {
        if (this.following === ctrl) this.following = null;
      });
  }

  private stopFollowing(): void {
    this.following?.abort();
    this.following = null;
  }

  stop(): void {
    this.stopped = true;
    this.stopFollowing();
    this.leadership?.end();
    this.leadership = null;
    this.notify();
  }

  /** The periodic work of a leader. */
  tick(): void {
    this.leadership?.tick();
    this.advance();
  }

  private learnLeaderEpoch(leaderEpoch: number): void {
    if (leaderEpoch > this.knownLeaderEpoch) this.knownLeaderEpoch = leaderEpoch;
  }

  // ---------------------------------------------------------------- waiting

  private notify(): void {
    for (const fn of [...this.listeners]) fn();
  }

  /** Resolves true once `cond` holds (checked at every change), false after `ms` or on `signal`. */
  private waitFor(cond: () => boolean, ms: number, signal?: AbortSignal): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.listeners.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const check = () => {
        if (cond()) done(true);
      };
      const onAbort = () => done(false);
      const t = setTimeout(() => done(cond()), ms);
      this.listeners.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The leadership, if active. */
  private current(): Leadership | null {
    const l = this.leadership;
    return l?.active ? l : null;
  }

  private advance(): void {
    const l = this.leadership;
    if (!l) return;
    const hw = l.advance();
    if (hw > this.hw) {
      this.hw = hw;
      this.notify();
    }
  }

  private notLeader(why: string): BrokerError {
    return notLeader(this.o.partition, null, this.knownLeaderEpoch, why);
  }

  // ---------------------------------------------------------------- the data plane

  /**
   * Append a record and answer once it is acknowledged: held by every replica of the
   * eligible set, two or more. `producerLeaderEpoch`, when given, is the leader epoch the
   * producer looked up: an older one than this leadership's is refused (it was looking
   * for an earlier leadership), a newer one deposes this broker.
   */
  async produce(value: Uint8Array, producerLeaderEpoch: number | undefined): Promise<ProduceAnswer> {
    const started = performance.now();
    const left = () => Math.max(0, this.o.ackTimeoutMs - (performance.now() - started));
    const l = this.current();
    if (!l) throw this.notLeader('not leading');
    if (producerLeaderEpoch !== undefined && producerLeaderEpoch > l.leaderEpoch) {
      this.depose(l, producerLeaderEpoch, 'a producer');
      throw notLeader(
        this.o.partition,
        null,
        producerLeaderEpoch,
        `leader epoch ${producerLeaderEpoch} is newer than ${l.leaderEpoch}`,
      );
    }
    if (producerLeaderEpoch !== undefined && producerLeaderEpoch < l.leaderEpoch) {
      throw notLeader(
        this.o.partition,
        this.o.self,
        l.leaderEpoch,
        `leader epoch ${producerLeaderEpoch} is older than this leadership's (${l.leaderEpoch})`,
      );
    }
    // Refuse up front (nothing written) what could not be acknowledged: fewer than two
    // eligible replicas, still after waiting.
    const ready = await this.waitFor(() => !l.active || l.progress.eligible.length >= 2, left());
    if (!l.active || !this.o.stillLeads(l.leaderEpoch)) throw this.notLeader('leadership ended');
    if (!ready) {
      throw new BrokerError(
        'NOT_ENOUGH_REPLICAS',
        503,
        `partition ${this.o.partition}: eligible ${l.progress.eligible.join(',')}: fewer than 2 (nothing written)`,
        { details: { eligible: l.progress.eligible, leaderEpoch: l.leaderEpoch } },
      );
    }
    const entry = this.log.append(l.leaderEpoch, value);
    this.notify();
    this.advance();
    const details = { offset: entry.offset, leaderEpoch: entry.leaderEpoch };
    const held = () => this.log.leaderEpochAt(entry.offset) === entry.leaderEpoch;
    const done = await this.waitFor(() => this.hw > entry.offset || !held() || !l.active, left());
    if (this.hw > entry.offset && held()) {
      return { partition: this.o.partition, offset: entry.offset, leaderEpoch: entry.leaderEpoch };
    }
    if (!done) {
      throw new BrokerError(
        'NOT_ENOUGH_REPLICAS',
        503,
        `partition ${this.o.partition}: record at ${entry.offset} not held by every eligible replica (${l.progress.ackSet().join(',')}) within ${this.o.ackTimeoutMs} ms`,
        { outcome: 'unknown', details },
      );
    }
    throw new BrokerError(
      'LEADERSHIP_LOST',
      503,
      `partition ${this.o.partition}: leadership at leader epoch ${l.leaderEpoch} ended before the record at ${entry.offset} was acknowledged`,
      { outcome: 'unknown', details },
    );
  }

  /** A follower's fetch (see follower.ts); long-polls up to `maxWaitMs` when it has everything. */
  async fetch(q: FetchQuery, signal: AbortSignal): Promise<FetchAnswer> {
    const l = this.current();
    if (!l) throw this.notLeader('not leading');
    if (q.leaderEpoch > l.leaderEpoch) {
      this.depose(l, q.leaderEpoch, q.replica);
      throw new BrokerError(
        'FENCED',
        409,
        `partition ${this.o.partition}: ${q.replica} knows leader epoch ${q.leaderEpoch}, newer than this leader's ${l.leaderEpoch}`,
        { details: { leaderEpoch: l.leaderEpoch } },
      );
    }
    if (!this.log.matches(q.from, q.lastLeaderEpoch)) {
      return {
        type: 'truncate',
        leaderEpoch: l.leaderEpoch,
        truncateTo: this.log.truncationPoint(q.from, q.lastLeaderEpoch),
      };
    }
    l.progress.recordFetch(q.replica, q.from, this.log.end, performance.now());
    this.advance();
    if (q.from >= this.log.end) {
      await this.waitFor(
        () => this.log.end > q.from || !l.active,
        Math.min(q.maxWaitMs, this.o.maxWaitMs),
        signal,
      );
    }
    if (!l.active) throw this.notLeader('leadership ended');
    const entries = this.log.read(q.from, this.log.end, this.o.maxBatch);
    l.progress.recordAnswer(q.replica, this.log.end);
    return {
      type: 'entries',
      leaderEpoch: l.leaderEpoch,
      highWatermark: this.hw,
      entries: entries.map(toWire),
    };
  }

  /** Acknowledged entries from `from` (what consumers may see). */
  read(from: number, max: number): ReadAnswer {
    const to = Math.min(this.hw, this.log.end);
    const entries = this.log.read(from, to, Math.min(max, this.o.maxBatch));
    return {
      partition: this.o.partition,
      highWatermark: this.hw,
      end: this.log.end,
      entries: entries.map(toWire),
    };
  }

  /** Everything this replica holds from `from`, acknowledged or not (for inspection and tests). */
  dump(from: number, max: number): ReadAnswer {
    const entries = this.log.read(from, this.log.end, max);
    return {
      partition: this.o.partition,
      highWatermark: this.hw,
      end: this.log.end,
      entries: entries.map(toWire),
    };
  }

  status(): Record<string, unknown> {
    const l = this.leadership;
    return {
      partition: this.o.partition,
      role: l ? 'leader' : 'follower',
      knownLeaderEpoch: this.knownLeaderEpoch,
      synced: this.synced,
      end: this.log.end,
      lastLeaderEpoch: this.log.lastLeaderEpoch,
      highWatermark: this.hw,
      ...(l
        ? {
            leaderEpoch: l.leaderEpoch,
            epoch: l.epoch,
            eligible: l.progress.eligible,
            ackSet: l.progress.ackSet(),
            followers: Object.fromEntries(
              l.progress.replicas.filter((r) => r !== this.o.self).map((r) => [r, l.progress.held(r)]),
            ),
          }
        : {}),
    };
  }
}
