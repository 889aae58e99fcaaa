/**
 * A `TimerProvider` for one group's `RaftNode` that sets no timer of its own: its
 * intervals (the runtime's deadline sweep) run from the host's one ticker, and pause while
 * the group is quiesced. Timeouts, `defer` and the clock are the host's.
 */
import type { TimerProvider } from '@quorate/raft';

interface Interval {
  readonly fn: () => void;
  readonly everyTicks: number;
  countdown: number;
  cancelled: boolean;
}

export class GroupTimers implements TimerProvider {
  private readonly intervals: Interval[] = [];

  constructor(
    private readonly base: TimerProvider,
    private readonly tickMs: number,
  ) {}

  now(): number {
    return this.base.now();
  }
  setTimeout(fn: () => void, ms: number): unknown {
    return this.base.setTimeout(fn, ms);
  }
  clearTimeout(handle: unknown): void {
    this.base.clearTimeout(handle);
  }
  defer(fn: () => void): void {
    this.base.defer(fn);
  }

  setInterval(fn: () => void, ms: number): unknown {
    const everyTicks = Math.max(1, Math.round(ms / this.tickMs));
    const h: Interval = { fn, everyTicks, countdown: everyTicks, cancelled: false };
    this.intervals.push(h);
    return h;
  }

  clearInterval(handle: unknown): void {
    const h = handle as Interval;
    h.cancelled = true;
    const i = this.intervals.indexOf(h);
    if (i >= 0) this.intervals.splice(i, 1);
  }

  /** One host tick: run the intervals that are due. */
  tick(): void {
    for (const h of this.intervals) {
      if (--h.countdown > 0) continue;
      h.countdown = h.everyTicks;
      if (!h.cancelled) h.fn();
    }
  }
}
