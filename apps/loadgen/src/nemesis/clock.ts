/**
 * Per-process clocks through libfaketime (Debian's `faketime` package): a node started
 * with `env()` reads its wall and monotonic clocks through the library, which applies the
 * offset and rate written in the node's spec file; the file is read again on each clock
 * call, so a change takes effect at once.
 *
 * libfaketime computes `fake = start + (real − start) × rate + offset`, `start` being
 * when the process began. A rate change alone would make the clock jump (and a monotonic
 * clock go backwards when it slows), so `setRate` moves the offset too, keeping the clock
 * continuous at the moment of the change: the node sees its clock run faster or slower,
 * never jump. `jump()` moves it forward on purpose.
 */
import { access, writeFile } from 'node:fs/promises';

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
      FAKETIME_NO_CACHE: '1',
    };
  }

  /** Make the clock run at `rate` from now on, without a step. */
  async setRate(rate: number): Promise<void> {
    const elapsed = Date.now() / 1000 - this.startReal;
    this.offsetS += elapsed * (this.rateNow - rate);
    this.rateNow = rate;
    await this.write();
  }

  /** Step the clock forward by `s` seconds. */
  async jump(s: number): Promise<void> {
    this.offsetS += s;
    await this.write();
  }

  private async write(): Promise<void> {
    const sign = this.offsetS < 0 ? '-' : '+';
    await writeFile(
      this.specFile,
      `${sign}${Math.abs(this.offsetS).toFixed(6)} x${this.rateNow.toFixed(6)}\n`,
    );
  }
}
