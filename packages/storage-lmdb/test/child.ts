import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const pkgDir = fileURLToPath(new URL('..', import.meta.url));
export const fixture = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));

/** Children still running; `killAll()` (in afterEach) ends them. */
const live = new Set<Child>();

/** A fixture process whose stdout is read line by line. */
export class Child {
  readonly lines: string[] = [];
  private stderr = '';
  private waiters: (() => void)[] = [];
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  private done = false;

  /**
   * `wrap` is a command (and its arguments) the child runs under, e.g. one that drops
   * privileges before it executes Node.
   */
  constructor(mode: 'append' | 'hold' | 'try' | 'snapshot', dir: string, wrap: readonly string[] = []) {
    const argv = [process.execPath, '--import', 'tsx', '--conditions=source', fixture, mode, dir];
    const [cmd, ...args] = [...wrap, ...argv] as [string, ...string[]];
    this.proc = spawn(cmd, args, {
      cwd: pkgDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    let partial = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
      this.wake();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', () => {
        this.done = true;
        live.delete(this);
        this.wake();
        resolve();
      });
    });
  }

  /** What the child wrote to stderr so far. */
  get errors(): string {
    return this.stderr;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Wait until `cond()` holds, failing after `ms` or if the child exits first. */
  async until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (this.done) throw new Error(`child ${this.pid} exited before ${what}; stderr:\n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.done) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.kill()));
}
