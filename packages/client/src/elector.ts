/**
 * `LeaderElector`: one instance of a service among several holds a named lease and runs
 * the job; the others stand by and take over when it goes away.
 *
 * ## Why two instances never both believe they lead
 *
 * The cluster expires a lease only when its leader's own monotonic clock says `ttlMs`
 * has passed since it *applied* the last renewal (and a new Raft leader restarts every
 * lease's TTL from its election). A renewal is applied after it was *sent*. So on the
 * cluster's clock, expiry comes at least `ttlMs` after the holder sent its last
 * successful renewal.
 *
 * The holder therefore considers itself leader only until
 *
 *     sentAt(last successful renewal) + ttlMs × (1 − maxDrift) − safetyMarginMs
 *
 * on its own monotonic clock, where `maxDrift` bounds how much slower the holder's
 * clock may run than the cluster leader's (a slow holder clock, or a fast leader clock,
 * makes the cluster's TTL run out before the holder's own count does; default 2 %, far
 * above what NTP-disciplined or even free-running quartz clocks do), and
 * `safetyMarginMs` covers timer lateness.
 * At that moment it aborts its task's signal; `isLeader` turns false at once, even if
 * the process was frozen and the timer has not fired yet (it compares the clock on
 * every read). Before any side effect, a task should check `signal.aborted` or
 * `elector.isLeader`, and send its fencing token so a store can refuse a stale holder.
 *
 * ## Why renew well under the TTL
 *
 * `renewEveryMs` must be at most a third of `ttlMs`: two renewals in a row may fail (a
 * leader election in the cluster takes a few hundred milliseconds) and the holder still
 * keeps the lease.
 */

import type { QuorateClient } from './client.js';
import { ClientError, RejectedError } from './errors.js';

export interface ElectorOptions {
  /** The client to reach the cluster with. */
  cluster: QuorateClient;
  /** The lease's name: one leader per name. */
  name: string;
  /** This instance's identity (unique among the instances). */
  holderId: string;
  /** Lease time-to-live. */
  ttlMs: number;
  /** How often the holder renews (and a standby tries to acquire). At most ttlMs / 3. */
  renewEveryMs: number;
  /** Bound on clock-rate difference between this process and the cluster. Default 0.02. */
  maxDrift?: number;
  /** Extra margin for timer lateness. Default min(100, ttlMs / 10) ms. */
  safetyMarginMs?: number;
  /** Monotonic clock (ms). Default performance.now. */
  now?: () => number;
}

export type ElectorEvent =
  | { type: 'elected'; token: number }
  | { type: 'lost'; token: number; reason: 'released' | 'lease-lost' | 'unconfirmed' | 'stopped' }
  | { type: 'holderChanged'; holder: string | null; token: number | null }
  | { type: 'renewed'; token: number; latencyMs: number }
  | { type: 'renewFailed'; error: Error };

export type ElectorHealth =
  | { status: 'healthy'; role: 'leader'; token: number }
  | { status: 'standby'; role: 'follower'; holder: string | null }
  | { status: 'unhealthy'; role: 'unknown'; reason: string };

export class ElectorConfigError extends ClientError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, false);
    this.name = 'ElectorConfigError';
  }
}

export class LeaderElector {
  private readonly o: Required<Omit<ElectorOptions, 'cluster'>> & { cluster: QuorateClient };
  private token: number | null = null;
  /** Local deadline of our leadership (monotonic ms), or 0 when not leader. */
  private deadline = 0;
  private holderSeen: string | null = null;
  private tokenSeen: number | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private abort: AbortController | null = null;
  private deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  private lastContact = 0;
  /** After resigning, stand by this long (monotonic ms) so a successor can take over. */
  private standbyUntil = 0;
  private lastError: Error | null = null;
  private readonly listeners = new Set<(e: ElectorEvent) => void>();
  private readonly tasks = new Set<(signal: AbortSignal, token: number) => Promise<void> | void>();

  constructor(opts: ElectorOptions) {
    const issues: string[] = [];
    if (!opts.cluster) issues.push('cluster (a QuorateClient) is required');
    if (typeof opts.name !== 'string' || opts.name.length === 0)
      issues.push('name must be a non-empty string');
    if (typeof opts.holderId !== 'string' || opts.holderId.length === 0 || opts.holderId.length > 128) {
      issues.push('holderId must be a string of 1 to 128 characters');
    }
    if (!Number.isInteger(opts.ttlMs) || opts.ttlMs < 100 || opts.ttlMs > 3_600_000) {
      issues.push(`ttlMs must be an integer from 100 to 3600000 (got ${opts.ttlMs})`);
    }
    if (!Number.isInteger(opts.renewEveryMs) || opts.renewEveryMs < 10) {
      issues.push(`renewEveryMs must be an integer >= 10 (got ${opts.renewEveryMs})`);
    } else if (opts.renewEveryMs * 3 > opts.ttlMs) {
      issues.push(
        `renewEveryMs (${opts.renewEveryMs}) must be at most a third of ttlMs (${opts.ttlMs}), so that two failed renewals in a row do not lose the lease`,
      );
    }
    // Each default is taken field by field: an option given as `undefined` gets its
    // default too (spreading `opts` over the defaults would turn the deadline into NaN,
    // and a NaN deadline never passes).
    const drift = opts.maxDrift ?? 0.02;
    if (typeof drift !== 'number' || !(drift >= 0 && drift < 0.5))
      issues.push(`maxDrift must be a number in [0, 0.5) (got ${String(drift)})`);
    const margin = opts.safetyMarginMs ?? Math.min(100, Math.floor(opts.ttlMs / 10));
    if (typeof margin !== 'number' || !Number.isFinite(margin) || margin < 0 || margin >= opts.ttlMs / 2) {
      issues.push(`safetyMarginMs must be a number from 0 to below half of ttlMs (got ${String(margin)})`);
    }
    if (opts.now !== undefined && typeof opts.now !== 'function') issues.push('now must be a function');
    if (typeof opts.name === 'string' && opts.name.length > 256)
      issues.push('name must be at most 256 characters');
    if (issues.length > 0)
      throw new ElectorConfigError(`invalid LeaderElector options: ${issues.join('; ')}`);
    this.o = {
      cluster: opts.cluster,
      name: opts.name,
      holderId: opts.holderId,
      ttlMs: opts.ttlMs,
      renewEveryMs: opts.renewEveryMs,
      maxDrift: drift,
      safetyMarginMs: margin,
      now: opts.now ?? (() => performance.now()),
    };
  }

  /** Whether this instance leads right now (checked against the clock on every read). */
  /**
   * Follow who holds this elector's name, without campaigning: yields the current holder
   * (`null`: nobody), then each change, from the watch stream (`GET /watch?lease=`). Runs
   * until `signal` aborts. Changes made before the first read may show once more, in
   * order, right after it; the last item is always the current holder.
   */
  async *observe(
    opts: { signal?: AbortSignal } = {},
  ): AsyncGenerator<{ holder: string | null; token: number | null }> {
    const name = this.o.name;
    const queue: { index: number; holder: string | null; token: number | null }[] = [];
    const state = { wake: null as (() => void) | null, failure: null as unknown };
    let started: () => void = () => {};
    const connected = new Promise<void>((r) => {
      started = r;
    });
    const ctrl = new AbortController();
    opts.signal?.addEventListener('abort', () => ctrl.abort(), { once: true });
    const pump = (async () => {
      try {
        // The first progress event says the stream is live: only then is the holder read,
        // so no change falls between the read and the stream.
        const it = this.o.cluster.watch({ lease: name, signal: ctrl.signal, onProgress: () => started() });
        for await (const b of it) {
          for (const c of b.changes) {
            if (c.type === 'lease' && c.name === name)
              queue.push({ index: b.index, holder: c.holder, token: c.token });
          }
          state.wake?.();
        }
      } catch (err) {
        if (!ctrl.signal.aborted) state.failure = err;
      } finally {
        started();
        state.wake?.();
      }
    })();
    try {
      await connected;
      const first = await this.o.cluster.getLease(name);
      let holder = first?.holder ?? null;
      let token = first?.token ?? null;
      // Tokens are the index of the acquiring entry: a change at or before it is older.
      let since = token ?? 0;
      yield { holder, token };
      while (!ctrl.signal.aborted) {
        while (queue.length > 0) {
          const c = queue.shift()!;
          if (c.index <= since) continue;
          since = c.index;
          if (c.holder === holder && c.token === token) continue;
          holder = c.holder;
          token = c.token;
          yield { holder, token };
        }
        if (state.failure) throw state.failure;
        await new Promise<void>((r) => {
          state.wake = r;
        });
        state.wake = null;
      }
    } finally {
      ctrl.abort();
      await pump;
    }
  }

  get isLeader(): boolean {
    if (this.token === null) return false;
    if (this.o.now() >= this.deadline) {
      this.lose('unconfirmed');
      return false;
    }
    return true;
  }

  /** The fencing token of the current leadership, or null. */
  get fencingToken(): number | null {
    return this.isLeader ? this.token : null;
  }

  /** Who holds the lease, as last seen. */
  get holder(): string | null {
    return this.isLeader ? this.o.holderId : this.holderSeen;
  }

  on(fn: (e: ElectorEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  health(): ElectorHealth {
    if (this.isLeader) return { status: 'healthy', role: 'leader', token: this.token! };
    // A standby hears from the cluster every renewEveryMs; three missed rounds is a problem.
    const reachable = this.lastContact > 0 && this.o.now() - this.lastContact < 3 * this.o.renewEveryMs;
    if (!reachable) {
      return {
        status: 'unhealthy',
        role: 'unknown',
        reason: this.lastError?.message ?? 'the cluster has not answered yet',
      };
    }
    return { status: 'standby', role: 'follower', holder: this.holderSeen };
  }

  /**
   * Run `task` whenever this instance leads. Its signal aborts the moment leadership is
   * lost or cannot be confirmed; it runs again after the next election won. Returns a
   * function that stops running it.
   */
  runWhileLeader(task: (signal: AbortSignal, token: number) => Promise<void> | void): () => void {
    this.tasks.add(task);
    if (this.isLeader && this.abort) void this.runTask(task, this.abort.signal, this.token!);
    return () => this.tasks.delete(task);
  }

  /** Start campaigning. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.campaign();
  }

  /** Give the lease up at once, so a successor takes over without waiting for the TTL. */
  async resign(): Promise<void> {
    const token = this.token;
    if (token === null) return;
    this.lose('released');
    this.standbyUntil = this.o.now() + this.o.ttlMs;
    try {
      await this.o.cluster.releaseLease(this.o.name, this.o.holderId, token, { timeoutMs: this.o.ttlMs });
    } catch {
      // Not released: it expires after the TTL, as if we had crashed.
    }
  }

  /** Resign and stop campaigning (a graceful shutdown). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.resign();
    await this.loop;
  }

  private emit(e: ElectorEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        // a listener's failure must not stop the elector
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  private async campaign(): Promise<void> {
    while (this.running) {
      const started = this.o.now();
      if (this.token !== null && this.isLeader) await this.renew();
      else if (this.o.now() >= this.standbyUntil) await this.tryAcquire();
      else await this.watch();
      const spent = this.o.now() - started;
      if (this.running) await this.sleep(Math.max(0, this.o.renewEveryMs - spent));
    }
  }

  private async tryAcquire(): Promise<void> {
    const sentAt = this.o.now();
    try {
      const lease = await this.o.cluster.acquireLease(this.o.name, this.o.holderId, this.o.ttlMs, {
        timeoutMs: this.o.renewEveryMs,
      });
      this.lastContact = this.o.now();
      this.seeHolder(lease.holder, lease.token);
      this.win(lease.token, sentAt);
    } catch (err) {
      this.lastError = err as Error;
      if (err instanceof RejectedError && err.serverCode === 'LEASE_HELD') {
        this.lastContact = this.o.now();
        const l = err.details.lease as { holder?: string; token?: number } | undefined;
        this.seeHolder(l?.holder ?? null, l?.token ?? null);
      }
    }
  }

  /** Standing by after a resignation: just follow who holds the lease. */
  private async watch(): Promise<void> {
    try {
      const l = await this.o.cluster.getLease(this.o.name, { timeoutMs: this.o.renewEveryMs });
      this.lastContact = this.o.now();
      this.seeHolder(l?.holder ?? null, l?.token ?? null);
    } catch (err) {
      this.lastError = err as Error;
    }
  }

  private async renew(): Promise<void> {
    const token = this.token!;
    const sentAt = this.o.now();
    try {
      await this.o.cluster.renewLease(this.o.name, this.o.holderId, token, {
        timeoutMs: this.o.renewEveryMs,
      });
      this.lastContact = this.o.now();
      if (this.token === token) {
        this.extend(sentAt);
        this.emit({ type: 'renewed', token, latencyMs: this.o.now() - sentAt });
      }
    } catch (err) {
      this.lastError = err as Error;
      this.emit({ type: 'renewFailed', error: err as Error });
      if (err instanceof RejectedError && err.serverCode === 'LEASE_LOST') {
        this.lastContact = this.o.now();
        this.lose('lease-lost');
      }
      // Otherwise keep trying: the local deadline ends leadership if nothing gets through.
    }
  }

  private seeHolder(holder: string | null, token: number | null): void {
    if (holder !== this.holderSeen || token !== this.tokenSeen) {
      this.holderSeen = holder;
      this.tokenSeen = token;
      this.emit({ type: 'holderChanged', holder, token });
    }
  }

  private win(token: number, sentAt: number): void {
    if (this.token === token) {
      this.extend(sentAt);
      return;
    }
    // An answer that arrives after the time it could vouch for is not leadership.
    if (this.localDeadline(sentAt) <= this.o.now()) return;
    this.token = token;
    this.extend(sentAt);
    this.abort = new AbortController();
    this.emit({ type: 'elected', token });
    for (const t of this.tasks) void this.runTask(t, this.abort.signal, token);
  }

  /** Leadership holds until the last successful renewal's send time + TTL, less margins. */
  private localDeadline(sentAt: number): number {
    return sentAt + this.o.ttlMs * (1 - this.o.maxDrift) - this.o.safetyMarginMs;
  }

  private extend(sentAt: number): void {
    this.deadline = this.localDeadline(sentAt);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.armDeadline();
  }

  /**
   * Fire when the deadline passes. Node rounds timer delays to whole milliseconds and may
   * fire a little before `performance.now()` reaches the deadline: then arm it again, so the
   * task's signal aborts on time, not at the next renewal.
   */
  private armDeadline(): void {
    const wait = this.deadline - this.o.now();
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = null;
        if (this.isLeader) this.armDeadline();
      },
      Math.max(0, Math.ceil(wait)),
    );
  }

  private lose(reason: 'released' | 'lease-lost' | 'unconfirmed' | 'stopped'): void {
    const token = this.token;
    if (token === null) return;
    this.token = null;
    this.deadline = 0;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.abort?.abort(new Error(`leadership of ${this.o.name} ended: ${reason}`));
    this.abort = null;
    this.emit({ type: 'lost', token, reason });
  }

  private async runTask(
    task: (signal: AbortSignal, token: number) => Promise<void> | void,
    signal: AbortSignal,
    token: number,
  ): Promise<void> {
    try {
      await task(signal, token);
    } catch {
      // A task that fails (or throws on abort) does not end leadership by itself.
    }
  }
}
