/**
 * How late the event loop runs: a timer due every `everyMs` notes how late it fires. Every
 * lateness goes into a histogram (`quorate_event_loop_delay_seconds`), and a turn that held
 * the loop longer than the heartbeat interval is logged (at most once per 10 s, with the
 * longest seen and how many), since heartbeats sent late are what makes followers start
 * elections.
 */
import type { Logger } from 'pino';

export interface LoopMonitorOptions {
  /** How often to sample (default 20 ms). */
  everyMs?: number;
  /** Lateness worth a warning: the heartbeat interval. */
  warnMs: number;
  log?: Logger;
  /** Called with each sample's lateness, in seconds. */
  observe?: (seconds: number) => void;
}

export class LoopMonitor {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastWarn = Number.NEGATIVE_INFINITY;
  private stretches = 0;
  private longest = 0;

  constructor(private readonly opts: LoopMonitorOptions) {}

  start(): void {
    const every = this.opts.everyMs ?? 20;
    let due = performance.now() + every;
    const tick = () => {
      const now = performance.now();
      const late = Math.max(0, now - due);
      this.opts.observe?.(late / 1000);
      if (late > this.opts.warnMs) {
        this.stretches++;
        this.longest = Math.max(this.longest, late);
        if (now - this.lastWarn > 10_000) {
          this.opts.log?.warn(
            {
              longestMs: Math.round(this.longest),
              stretches: this.stretches,
              heartbeatIntervalMs: this.opts.warnMs,
            },
            'the event loop was held longer than the heartbeat interval (heartbeats went out late)',
          );
          this.lastWarn = now;
          this.stretches = 0;
          this.longest = 0;
        }
      }
      due = now + every;
      this.timer = setTimeout(tick, every);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
