/**
 * What a partition's leader knows of its followers, and what follows from it: the high
 * watermark and the changes of the eligible set to ask quorate for. Pure: time is handed
 * in, nothing is sent.
 *
 * ## The rule an acknowledgement rests on
 *
 * An entry is acknowledged once every replica the eligible set may contain holds it, and
 * the eligible set has at least two replicas. quorate hands a partition only to an
 * eligible replica, so the next leader holds every acknowledged entry, and with two or
 * more a single lost broker cannot take one away.
 *
 * "May contain" matters while a change of the eligible set is in flight: quorate may
 * already have applied it, or not yet. So until the compare-and-set answers, the entries
 * wait for the old set **and** the new one (`ackSet`): a follower being added counts from
 * the moment it is proposed (else an entry acknowledged without it is missing if quorate
 * hands it the partition), and one being removed counts until quorate confirms.
 */

export interface FollowerState {
  /** Whether it has fetched from this leadership at all (a replica that is down never has). */
  seen: boolean;
  /** Entries below this are known to be held (and to match this log). */
  held: number;
  /** The last time (ms) it fetched everything the leader had when it answered it before. */
  caughtUpAt: number;
  /** The leader's end when it last answered this follower. */
  endAtLastAnswer: number;
}

export interface EligibleChange {
  readonly eligible: readonly string[];
  readonly why: string;
}

export class ReplicaProgress {
  private readonly followers = new Map<string, FollowerState>();
  /** The eligible set as quorate last confirmed it. */
  private confirmed: string[];
  /** A compare-and-set in flight: the set it proposes. */
  private proposed: string[] | null = null;
  private hw: number;

  constructor(
    readonly self: string,
    readonly replicas: readonly string[],
    eligible: readonly string[],
    /** Entries below this were acknowledged already (by this broker or an earlier leader). */
    highWatermark: number,
    now: number,
  ) {
    this.confirmed = [...eligible];
    this.hw = highWatermark;
    // Every follower gets a full maxLag from the start of this leadership to catch up.
    for (const r of replicas) {
      if (r !== self) this.followers.set(r, { seen: false, held: 0, caughtUpAt: now, endAtLastAnswer: 0 });
    }
  }

  get eligible(): readonly string[] {
    return this.confirmed;
  }

  get changing(): boolean {
    return this.proposed !== null;
  }

  get highWatermark(): number {
    return this.hw;
  }

  /** Replicas every acknowledged entry must be on (see the module comment). */
  ackSet(): string[] {
    return [...new Set([...this.confirmed, ...(this.proposed ?? [])])];
  }

  /**
   * A fetch from `replica` whose prefix matched: it holds everything below `from`.
   * `end`: this log's end when the fetch arrived.
   */
  recordFetch(replica: string, from: number, end: number, now: number): void {
    const f = this.followers.get(replica);
    if (!f) return;
    f.seen = true;
    f.held = from;
    if (from >= f.endAtLastAnswer || from >= end) f.caughtUpAt = now;
  }

  /** The leader answered `replica` with everything up to `end`. */
  recordAnswer(replica: string, end: number): void {
    const f = this.followers.get(replica);
    if (f) f.endAtLastAnswer = end;
  }

  held(replica: string): number | undefined {
    return this.followers.get(replica)?.held;
  }

  /**
   * Move the high watermark to what every replica of `ackSet()` holds, when the confirmed
   * set has two or more. It never goes down. Returns the new value.
   */
  advance(end: number): number {
    if (this.confirmed.length < 2 || !this.confirmed.includes(this.self)) return this.hw;
    let min = end;
    for (const r of this.ackSet()) {
      if (r === this.self) continue;
      min = Math.min(min, this.followers.get(r)?.held ?? 0);
    }
    if (min > this.hw) this.hw = min;
    return this.hw;
  }

  /**
   * The next change to ask for, if any, one at a time: drop an eligible follower that has
   * not caught up within `maxLagMs`; add back a replica that holds everything (`end`).
   */
  nextChange(end: number, now: number, maxLagMs: number): EligibleChange | null {
    if (this.proposed) return null;
    const lagging = this.confirmed.filter((r) => {
      const f = this.followers.get(r);
      return f !== undefined && now - f.caughtUpAt > maxLagMs;
    });
    if (lagging.length > 0) {
      return {
        eligible: this.confirmed.filter((r) => !lagging.includes(r)),
        why: `${lagging.join(', ')} not caught up for ${maxLagMs} ms`,
      };
    }
    const back = [...this.followers]
      .filter(
        ([r, f]) => !this.confirmed.includes(r) && f.seen && f.held >= end && now - f.caughtUpAt <= maxLagMs,
      )
      .map(([r]) => r);
    if (back.length > 0) {
      // Keep the replica list's order: it is quorate's order of preference.
      const next = this.replicas.filter((r) => this.confirmed.includes(r) || back.includes(r));
      return { eligible: next, why: `${back.join(', ')} caught up at ${end}` };
    }
    return null;
  }

  /** A compare-and-set of the eligible set is sent. */
  propose(eligible: readonly string[]): void {
    this.proposed = [...eligible];
  }

  /** quorate answered: the eligible set is now `eligible` (the proposal, or what it holds instead). */
  confirm(eligible: readonly string[]): void {
    this.confirmed = [...eligible];
    this.proposed = null;
  }
}
