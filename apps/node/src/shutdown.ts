/**
 * Bounded, certain shutdown. A node asked to stop (SIGTERM, SIGINT, or its parent gone)
 * exits within `killMs` whatever it is doing:
 *
 * 1. it stops cleanly (a leader hands over, HTTP, Raft, transport and storage close) and
 *    exits with status 0;
 * 2. if that has not finished after `graceMs`, it logs why and exits with status 1;
 * 3. if even that cannot run (the main thread is blocked), a watchdog thread writes a
 *    line to stderr and kills the process (SIGKILL) at `killMs`.
 *
 * A second signal exits at once with status 1. LMDB keeps the data consistent whichever
 * way the process ends; only the clean stop hands leadership over first.
 */
import { Worker } from 'node:worker_threads';
import { closeLog } from './logging.js';
import type { RunningNode } from './run.js';

export interface ShutdownOptions {
  /** After this, give up on a clean stop and exit with status 1. Default 3,500 ms. */
  graceMs?: number;
  /** After this, the watchdog kills the process. Default 4,500 ms. */
  killMs?: number;
  /**
   * Stop when standard input ends: a parent that gives each node a pipe as stdin (the
   * `pnpm start` launcher) takes its nodes with it however it dies, SIGKILL included.
   */
  stopWithStdin?: boolean;
}

// Runs on its own thread: timers fire there even if the main thread never returns.
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
setTimeout(() => {
  fs.write(2, workerData.line, () => {});
  setTimeout(() => process.kill(workerData.pid, 'SIGKILL'), 100);
}, workerData.ms);
`;

function armWatchdog(ms: number, why: string): void {
  const line = `${JSON.stringify({ level: 60, time: Date.now() + ms, pid: process.pid, msg: `${why}: still running ${ms} ms later; killing the process` })}\n`;
  const w = new Worker(WATCHDOG, {
    eval: true,
    workerData: { ms: Math.max(0, ms - 100), pid: process.pid, line },
  });
  w.unref();
}

export function stopOnSignals(running: RunningNode, opts: ShutdownOptions = {}): void {
  const graceMs = opts.graceMs ?? 3500;
  const killMs = opts.killMs ?? 4500;
  const log = running.log;
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await closeLog(log);
    process.exit(code);
  };
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    armWatchdog(killMs, why);
    setTimeout(() => {
      log.error(`${why}: not stopped after ${graceMs} ms; exiting without a clean close`);
      void exit(1);
    }, graceMs);
    log.info(
      { snapshotting: running.node.raft.snapshotting },
      `${why}: stopping (a leader hands over first)`,
    );
    running.stop().then(
      () => exit(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'stop failed');
        return exit(1);
      },
    );
  };
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn(`second ${sig}: exiting now`);
      // At once: the log gets a tenth of a second to write its last lines, no more.
      void closeLog(log, 100).then(() => process.exit(1));
      return;
    }
    stop(sig);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (opts.stopWithStdin) {
    const gone = () => stop('standard input closed (the parent is gone)');
    process.stdin.on('end', gone);
    process.stdin.on('close', gone);
    process.stdin.on('error', gone);
    process.stdin.resume();
  }
}
