/**
 * Per-process clocks through libfaketime (Debian's `faketime` package): a node started
 * with `env()` reads its wall and monotonic clocks through the library, which applies the
 * offset and rate written in the node's spec file. The library reads the file again once
 * a second (`FAKETIME_CACHE_DURATION=1`; reading it on every call, `FAKETIME_NO_CACHE`,
 * stalls a Node process under load: seen here, 62 writes/s with timeouts, against 5,000).
 *
 * libfaketime computes `fake = start + (real − start) × rate + offset`, `start` being
 * when the process began. A rate change alone would make the clock step (and a monotonic
 * clock go backwards when it slows), so `setRate` moves the offset too. The change lands
 * at some moment of the next second, unknown here, so the offset is chosen for the
 * moment that makes any step forward: when slowing down, continuous at the end of that
 * window; when speeding up, at its start. The node then sees its clock step forward by at
 * most (1 s × the rate change), never back, and run at the new rate.
 */
import { access, rename, writeFile } from 'node:fs/promises';

const LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
];

/** Where libfaketime is, or null (then the clock family cannot run). */
export async function findLibfaketime(): Promise<string | null> {
  for (const p of LIBS) {
    try {
      await access(p);
      return p;
    } catch {}
  }
  return null;
}

export class FakeClock {
  private startReal = 0;
  private offsetS: number;
  private rateNow = 1;

  constructor(
    private readonly lib: string,
    private readonly specFile: string,
    /** A constant offset of this node's clocks from the others', seconds. */
    initialOffsetS: number,
  ) {
    this.offsetS = initialOffsetS;
  }

  get rate(): number {
    return this.rateNow;
  }

  get offset(): number {
    return this.offsetS;
  }

  /** Write the spec, then return the environment a node process is started with. */
  async env(): Promise<Record<string, string>> {
    this.rateNow = 1;
    await this.write();
    // The process's own start; the library's is a few ms later (its first clock read), an
    // error that a later rate change turns into a step of (error × rate change): microseconds.
    this.startReal = Date.now() / 1000;
    return {
      LD_PRELOAD: this.lib,
      FAKETIME_TIMESTAMP_FILE: this.specFile,
      FAKETIME_CACHE_DURATION: '1',
    };
  }

  /** Make the clock run at `rate` within the next second or two, with a forward step at most. */
  async setRate(rate: number): Promise<void> {
    const now = Date.now() / 1000;
    // The window in which the library rereads the file (its second may be a fake one).
    const window = Math.max(1, 1 / this.rateNow) + 0.05;
    const at = rate < this.rateNow ? now + window : now;
    this.offsetS += (at - this.startReal) * (this.rateNow - rate);
    this.rateNow = rate;
    await this.write();
  }

  /**
   * How far the node's wall clock should be from the real one now, seconds: by the
   * library's formula, (real − start) × (rate − 1) + offset.
   */
  expectedOffsetS(realNowS = Date.now() / 1000): number {
    return (realNowS - this.startReal) * (this.rateNow - 1) + this.offsetS;
  }

  /** Step the clock forward by `s` seconds. */
  async jump(s: number): Promise<void> {
    this.offsetS += s;
    await this.write();
  }

  private async write(): Promise<void> {
    const sign = this.offsetS < 0 ? '-' : '+';
    // Write aside and rename: the library reads the file on every clock call, and must
    // never see it empty or half written (it would fall back to the real time: a jump).
    const tmp = `${this.specFile}.tmp`;
    await writeFile(tmp, `${sign}${Math.abs(this.offsetS).toFixed(6)} x${this.rateNow.toFixed(6)}\n`);
    await rename(tmp, this.specFile);
  }
}
