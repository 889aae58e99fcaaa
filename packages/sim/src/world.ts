/**
 * Virtual time and the scheduler. Everything that happens in a simulated run is an event
 * on one heap, ordered by (virtual time, insertion order); the seed's random stream
 * decides every latency, so it decides the order of every asynchronous completion.
 *
 * After each event the scheduler lets the microtasks it caused run to the end (one
 * macrotask turn) before the next event: the promise continuations inside `RaftNode` run
 * exactly where they would on a real event loop, and nothing else interleaves.
 */
import type { TimerProvider } from '@quorate/raft';
import { seededRandom } from '@quorate/raft/core';
import { EventHeap } from './heap.js';

export type Random = ReturnType<typeof seededRandom>;

interface Scheduled {
  time: number;
  seq: number;
  fn: () => void | Promise<void>;
}

/** One macrotask turn: every microtask queued before it has run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class World {
  /** Virtual time, in microseconds. */
  now = 0;
  readonly rnd: Random;
  /** Called with the virtual time before each event runs. */
  onTime: (now: number) => void = () => {};
  private seq = 0;
  private readonly heap = new EventHeap<Scheduled>();

  constructor(seed: number) {
    this.rnd = seededRandom(seed);
  }

  /** Run `fn` at virtual time `time` (µs), after everything already scheduled for then. */
  at(time: number, fn: () => void | Promise<void>): void {
    this.heap.push({ time: Math.max(time, this.now), seq: this.seq++, fn });
  }

  after(us: number, fn: () => void | Promise<void>): void {
    this.at(this.now + us, fn);
  }

  /** Resolves at virtual time now + `us`. */
  sleep(us: number): Promise<void> {
    return new Promise((resolve) => this.after(us, resolve));
  }

  /** Run every event before `end` (µs); stop early when `stop()` says so. */
  async runUntil(end: number, stop: () => boolean): Promise<void> {
    for (let ev = this.heap.peek(); ev && ev.time < end; ev = this.heap.peek()) {
      this.heap.pop();
      this.now = ev.time;
      this.onTime(ev.time);
      const r = ev.fn();
      if (r) await r;
      await turn();
      if (stop()) return;
    }
    this.now = end;
    this.onTime(end);
  }
}

/**
 * One incarnation of one node's process. Every callback into the node's code (a timer,
 * a message, a disk acknowledgement) goes through `run`: a crashed process runs nothing
 * ever again; a paused one holds its callbacks until it resumes, in order.
 */
export class SimProcess {
  alive = true;
  paused = false;
  private held: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly incarnation: number,
    private readonly world: World,
  ) {}

  run(fn: () => void): void {
    if (!this.alive) return;
    if (this.paused) this.held.push(fn);
    else fn();
  }

  pause(): void {
    if (this.alive) this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const fn of held) this.world.after(0, () => this.run(fn));
  }

  crash(): void {
    this.alive = false;
    this.paused = false;
    this.held = [];
  }
}

interface TimerHandle {
  cancelled: boolean;
  /** An interval fire is held while the process is paused (at most one, as real timers coalesce). */
  heldFire?: boolean;
}

/**
 * The runtime's `TimerProvider` on virtual time. Timers fire late by a seeded jitter
 * (never early), as real ones do; `defer` runs after a seeded sliver of time, so the
 * seed decides what a ready-loop turn batches.
 */
/**
 * A node's own monotonic clock, running at `rate` against virtual time (1: exactly; 1.1:
 * ten percent fast); the rate may change during a run, the clock never steps.
 */
export class NodeClock {
  private baseMs = 0;
  private t0: number;

  constructor(
    private readonly world: World,
    private rateNow = 1,
  ) {
    this.t0 = world.now;
  }

  get rate(): number {
    return this.rateNow;
  }

  now(): number {
    return this.baseMs + ((this.world.now - this.t0) / 1000) * this.rateNow;
  }

  setRate(rate: number): void {
    this.baseMs = this.now();
    this.t0 = this.world.now;
    this.rateNow = rate;
  }
}

export class SimTimers implements TimerProvider {
  constructor(
    private readonly world: World,
    private readonly proc: SimProcess,
    /** The node's own clock; absent: virtual time itself. (A timer already set keeps its length
     * in virtual time when the clock's rate changes: close enough for short timers.) */
    private readonly clock?: NodeClock,
  ) {}

  /** Virtual µs for `ms` of this node's clock. */
  private us(ms: number): number {
    return this.clock ? Math.ceil((ms * 1000) / this.clock.rate) : ms * 1000;
  }

  private late(): number {
    const r = this.world.rnd;
    return r.next() < 0.01 ? 1_000 + r(9_000) : r(300);
  }

  now(): number {
    return this.clock ? this.clock.now() : this.world.now / 1000;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const h: TimerHandle = { cancelled: false };
    this.world.after(this.us(ms) + this.late(), () => {
      if (!h.cancelled) this.proc.run(() => !h.cancelled && fn());
    });
    return h;
  }

  clearTimeout(handle: unknown): void {
    (handle as TimerHandle).cancelled = true;
  }

  setInterval(fn: () => void, ms: number): unknown {
    const h: TimerHandle = { cancelled: false };
    const fire = (): void => {
      if (h.cancelled || !this.proc.alive) return;
      if (this.proc.paused) {
        if (!h.heldFire) {
          h.heldFire = true;
          this.proc.run(() => {
            h.heldFire = false;
            if (!h.cancelled) fn();
          });
        }
      } else fn();
      this.world.after(this.us(ms) + this.late(), fire);
    };
    this.world.after(this.us(ms) + this.late(), fire);
    return h;
  }

  clearInterval(handle: unknown): void {
    (handle as TimerHandle).cancelled = true;
  }

  defer(fn: () => void): void {
    this.world.after(this.world.rnd(50), () => this.proc.run(fn));
  }
}
