/**
 * Real time enters quorate only here, behind an interface the tests and embedders can
 * replace. The core never sees it: the runtime turns it into ticks.
 */
export interface TimerProvider {
  /** Monotonic milliseconds (never wall-clock time). */
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Run `fn` after pending I/O callbacks, so work arriving in one turn is batched. */
  defer(fn: () => void): void;
}

export const systemTimers: TimerProvider = {
  now: () => performance.now(),
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    (h as { unref?: () => void }).unref?.();
    return h;
  },
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  defer: (fn) => {
    if (typeof setImmediate === 'function') setImmediate(fn);
    else setTimeout(fn, 0);
  },
};
