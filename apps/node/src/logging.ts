/**
 * The node's log: JSON lines on stdout, written asynchronously so that a slow or blocked
 * reader (a full pipe nobody drains) never stalls the event loop, with a bounded buffer.
 *
 * pino's default destination writes synchronously and, when the pipe is full, sleeps in
 * `Atomics.wait` until it drains: a node whose log reader stopped reading then blocks
 * for good, in the middle of whatever it was doing, and not even a signal handler runs.
 * Here a blocked reader costs log lines past a bound, never memory or progress, and the
 * last lines are flushed before exit for at most `closeLog`'s deadline.
 */
import type { Config } from '@quorate/config';
import { type Logger, pino } from 'pino';

/** Log bytes held for a reader that does not keep up; beyond this, lines are dropped. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** How long the last lines may take to be written before exit (async or synchronous flush). */
const EXIT_FLUSH_MS = 300;

type Destination = ReturnType<typeof pino.destination>;
const destinations = new WeakMap<Logger, { dest: Destination; abandon(): void }>();

export function createLogger(config: Config, fd = 1): Logger {
  let abandoned = false;
  /** When a synchronous flush began (at exit), or null. */
  let flushingSince: number | null = null;
  const dest = pino.destination({
    fd,
    sync: false,
    // Written at once all the same; a minimum above 0 makes flush(cb) wait for the writes.
    minLength: 1,
    maxLength: MAX_BUFFERED_BYTES,
    // A full pipe: try again later (a timer, never a blocking wait) until abandoned; a
    // synchronous flush (at exit) retries for at most EXIT_FLUSH_MS.
    retryEAGAIN: () =>
      !abandoned && (flushingSince === null || performance.now() - flushingSince < EXIT_FLUSH_MS),
  });
  // A failing log sink is not a reason to stop serving (pino handles EPIPE itself).
  dest.on('error', () => {});
  // pino flushes synchronously at exit, however the process exits: bounded, never fatal.
  const flushSync = dest.flushSync.bind(dest);
  dest.flushSync = () => {
    if (abandoned) return;
    flushingSince = performance.now();
    try {
      flushSync();
    } catch {
      // The reader is gone or stuck: what is left cannot be written.
    } finally {
      flushingSince = null;
    }
  };
  const log = pino(
    {
      level: config.log.level,
      base: { nodeId: config.nodeId },
      ...(config.log.format === 'pretty' ? { formatters: { level: (label) => ({ level: label }) } } : {}),
    },
    dest,
  );
  destinations.set(log, {
    dest,
    abandon: () => {
      abandoned = true;
    },
  });
  return log;
}

/**
 * Before exiting: write out what the log holds, waiting at most `ms` (a reader that does
 * not read gets no more), then close it so that exiting cannot block on it. Resolves true
 * if everything was written.
 */
export function closeLog(log: Logger, ms = EXIT_FLUSH_MS): Promise<boolean> {
  const d = destinations.get(log);
  if (!d) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    d.dest.flush((err) => {
      clearTimeout(t);
      resolve(!err);
    });
  }).finally(d.abandon);
}
