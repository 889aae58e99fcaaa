/**
 * Latency and throughput bookkeeping: an HDR histogram for the whole run (microsecond
 * resolution, up to 10 minutes) and one line per second for the timeline.
 */
import * as hdr from 'hdr-histogram-js';

export type Outcome = 'ok' | 'fail' | 'info';

export interface SecondLine {
  /** Seconds since the start. */
  t: number;
  ops: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

const newHistogram = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });

export class Stats {
  private readonly all = newHistogram();
  private second = newHistogram();
  private secondOps = 0;
  private secondErrors = 0;
  readonly timeline: SecondLine[] = [];
  ops = 0;
  /** Completed without a definite success: errors by kind (`TIMEOUT`, `CAS_FAILED`, ...). */
  readonly errors = new Map<string, number>();
  errorCount = 0;
  /** Operations that failed definitely because the precondition was false (cas): not errors. */
  casMisses = 0;
  /** Errors whose outcome is open (the write may have been applied): `info` in the history. */
  ambiguous = 0;
  private readonly started: number;
  private secondStart: number;

  constructor(now: number) {
    this.started = now;
    this.secondStart = now;
  }

  /** Record one completed operation that took `micros`. */
  record(micros: number, error: string | null): void {
    this.ops++;
    this.secondOps++;
    const v = Math.max(1, Math.round(micros));
    this.all.recordValue(v);
    this.second.recordValue(v);
    if (error !== null) {
      this.errorCount++;
      this.secondErrors++;
      this.errors.set(error, (this.errors.get(error) ?? 0) + 1);
    }
  }

  /** Close the current second if it is over (call often). */
  tick(now: number): SecondLine | null {
    if (now - this.secondStart < 1000) return null;
    const line: SecondLine = {
      t: Math.round((this.secondStart - this.started) / 1000),
      ops: this.secondOps,
      errors: this.secondErrors,
      p50Ms: this.second.totalCount ? this.second.getValueAtPercentile(50) / 1000 : 0,
      p99Ms: this.second.totalCount ? this.second.getValueAtPercentile(99) / 1000 : 0,
    };
    this.timeline.push(line);
    this.second.destroy();
    this.second = newHistogram();
    this.secondOps = 0;
    this.secondErrors = 0;
    this.secondStart += 1000;
    return line;
  }

  latencyMs(): LatencySummary {
    const h = this.all;
    if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    const at = (p: number) => h.getValueAtPercentile(p) / 1000;
    return {
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: h.maxValue / 1000,
      mean: h.mean / 1000,
    };
  }

  destroy(): void {
    this.all.destroy();
    this.second.destroy();
  }
}
