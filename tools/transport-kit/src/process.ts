/**
 * Child processes for tests: spawned with IPC (structured clone, so bytes survive), killed
 * for real (SIGKILL, SIGSTOP), and all of them stopped when the parent is done or dies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { childExecArgv } from './config.js';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

type Reply = { t: string; rid?: number; [k: string]: unknown };

/** A child process with request/response over IPC and a stream of events. */
export class ChildHandle {
  readonly proc: ChildProcess;
  private rid = 0;
  private readonly waiting = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  private readonly listeners = new Set<(m: Reply) => void>();
  readonly exited: Promise<number | null>;

  constructor(script: string, args: readonly string[] = []) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const p of live) p.kill('SIGKILL');
      });
    }
    this.proc = spawn(process.execPath, [...childExecArgv, script, ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    live.add(this.proc);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code) => {
        live.delete(this.proc);
        for (const w of this.waiting.values()) w.reject(new Error(`child ${script} exited (${code})`));
        this.waiting.clear();
        resolve(code);
      });
    });
    this.proc.on('message', (m: Reply) => {
      if (m.rid !== undefined && this.waiting.has(m.rid)) {
        const w = this.waiting.get(m.rid)!;
        this.waiting.delete(m.rid);
        if (m.t === 'error') w.reject(new Error(String(m.message)));
        else w.resolve(m);
        return;
      }
      for (const l of this.listeners) l(m);
    });
    this.proc.on('error', () => {});
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Send a fire-and-forget message. */
  post(m: object): void {
    if (this.alive && this.proc.connected) this.proc.send(m, () => {});
  }

  /** Send a request and wait for the reply that carries the same id. */
  request(m: object, timeoutMs = 30_000): Promise<Reply> {
    const rid = ++this.rid;
    return new Promise((resolve, reject) => {
      if (!this.alive || !this.proc.connected) {
        reject(new Error('child is not running'));
        return;
      }
      const timer = setTimeout(() => {
        this.waiting.delete(rid);
        reject(new Error(`no reply to ${JSON.stringify(m).slice(0, 80)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(rid, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ ...m, rid }, () => {});
    });
  }

  on(listener: (m: Reply) => void): void {
    this.listeners.add(listener);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(sig);
  }

  /** SIGKILL and wait until it is gone. */
  async kill(): Promise<void> {
    if (this.alive) {
      this.proc.kill('SIGCONT');
      this.proc.kill('SIGKILL');
    }
    await this.exited;
  }
}

/** Child side: answer requests from the parent; exit when the parent goes away. */
export function serveParent(handle: (m: Reply) => Promise<object | undefined> | object | undefined): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m: Reply) => {
    try {
      const r = await handle(m);
      if (m.rid !== undefined) process.send!({ t: 'ok', ...(r ?? {}), rid: m.rid });
    } catch (err) {
      if (m.rid !== undefined)
        process.send!({ t: 'error', message: (err as Error)?.message ?? String(err), rid: m.rid });
    }
  });
}

/** The heap after a full collection (the child runs with --expose-gc). */
export function settledHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}
