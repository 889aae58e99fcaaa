/**
 * The example run as users would: broker processes (the source, through tsx) against a
 * real quorate cluster, a producer per partition that records what was acknowledged, and
 * conditions with deadlines instead of sleeps.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { PartitionSet, QuorateClient } from '@quorate/client';
import { BrokerError } from '../src/errors.js';
import type { LogClient } from '../src/log-client.js';

const pkgDir = join(import.meta.dirname, '..');
/** Every broker's log, whole, for a look after a run (test-artifacts/ is ignored by git). */
const artifacts = join(pkgDir, 'test-artifacts');

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs: number,
  describe?: () => Promise<string> | string,
): Promise<Truthy<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as Truthy<T>;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      const more = describe ? `\n${await describe()}` : '';
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${more}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface BrokerProcess {
  readonly id: string;
  proc: ChildProcess;
  url: string;
  /** The last lines it logged (stderr). */
  readonly log: string[];
}

/** Broker processes, each started and stopped by the test. */
export class Brokers {
  readonly all = new Map<string, BrokerProcess>();

  constructor(
    private readonly quorate: readonly string[],
    private readonly set: string,
    private readonly flags: readonly string[],
  ) {
    rmSync(artifacts, { recursive: true, force: true });
    mkdirSync(artifacts, { recursive: true });
  }

  /** Start broker `id` (again), on a new port; resolves with its address once it has joined. */
  async start(id: string, extraFlags: readonly string[] = []): Promise<BrokerProcess> {
    const args = [
      '--import',
      'tsx',
      '--conditions=source',
      join(pkgDir, 'src', 'broker.ts'),
      '--id',
      id,
      '--set',
      this.set,
      '--port',
      '0',
      '--quorate',
      this.quorate.join(','),
      '--stop-with-stdin',
      ...this.flags,
      ...extraFlags,
    ];
    const proc = spawn(process.execPath, args, { cwd: pkgDir, stdio: ['pipe', 'pipe', 'pipe'] });
    const b: BrokerProcess = { id, proc, url: '', log: this.all.get(id)?.log ?? [] };
    b.log.push(`---- ${id} started (pid ${proc.pid})`);
    this.all.set(id, b);
    const file = join(artifacts, `${id}.log`);
    appendFileSync(file, `---- ${id} started (pid ${proc.pid}) ${extraFlags.join(' ')}\n`);
    proc.stderr!.on('data', (d: Buffer) => {
      appendFileSync(file, d);
      for (const line of d.toString().split('\n')) if (line) b.log.push(line);
      if (b.log.length > 400) b.log.splice(0, b.log.length - 400);
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`broker ${id} not ready within 60 s:\n${b.log.slice(-20).join('\n')}`));
      }, 60_000);
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (!line) return;
        clearTimeout(t);
        b.url = (JSON.parse(line) as { url: string }).url;
        resolve();
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(t);
        reject(new Error(`broker ${id} exited (${code ?? signal}):\n${b.log.slice(-20).join('\n')}`));
      });
    });
    return b;
  }

  get(id: string): BrokerProcess {
    const b = this.all.get(id);
    if (!b) throw new Error(`no broker ${id}`);
    return b;
  }

  signal(id: string, signal: NodeJS.Signals): void {
    this.get(id).proc.kill(signal);
  }

  /** SIGKILL and wait for the exit. */
  async kill(id: string): Promise<void> {
    const p = this.get(id).proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await exited;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.all.keys()].map((id) => this.kill(id)));
  }

  /** Each broker's recent log, for a failure message. */
  tails(lines = 30): string {
    return [...this.all.values()].map((b) => `== ${b.id}\n${b.log.slice(-lines).join('\n')}`).join('\n');
  }
}

export interface Acked {
  seq: number;
  offset: number;
  leaderEpoch: number;
}

/**
 * One producer loop per partition, each writing `p<p>-<seq>` one at a time, and what
 * became of each: acknowledged (with its offset and leader epoch), certainly not written, or
 * unknown.
 */
export class Workload {
  readonly acked = new Map<number, Acked[]>();
  readonly unknown = new Map<number, string[]>();
  readonly notWritten = new Map<number, number>();
  readonly errors = new Map<string, number>();
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly client: LogClient,
    readonly partitions: number,
  ) {
    for (let p = 0; p < partitions; p++) {
      this.acked.set(p, []);
      this.unknown.set(p, []);
      this.notWritten.set(p, 0);
      this.loops.push(this.run(p));
    }
  }

  private async run(p: number): Promise<void> {
    for (let seq = 0; this.running; seq++) {
      const value = `p${p}-${seq}`;
      try {
        const a = await this.client.produce(p, value, { timeoutMs: 8000 });
        this.acked.get(p)!.push({ seq, offset: a.offset, leaderEpoch: a.leaderEpoch });
      } catch (err) {
        const code = err instanceof BrokerError ? `${err.code}/${err.outcome}` : String(err);
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
        if (err instanceof BrokerError && err.outcome === 'not-written') {
          this.notWritten.set(p, this.notWritten.get(p)! + 1);
        } else {
          this.unknown.get(p)!.push(value);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      // About 50 records a second per partition at most: enough to see every phase.
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  count(p: number): number {
    return this.acked.get(p)!.length;
  }

  total(): number {
    let n = 0;
    for (const a of this.acked.values()) n += a.length;
    return n;
  }

  /** Wait until every partition (or those given) got `n` more acknowledgements than now. */
  async progress(n: number, timeoutMs: number, partitions?: number[]): Promise<void> {
    const ps = partitions ?? [...this.acked.keys()];
    const from = new Map(ps.map((p) => [p, this.count(p)]));
    await waitFor(
      () => ps.every((p) => this.count(p) >= from.get(p)! + n),
      `${n} more acknowledged records on partitions ${ps.join(',')}`,
      timeoutMs,
      () =>
        `acked: ${ps.map((p) => `${p}: ${this.count(p) - from.get(p)!}`).join(', ')}; errors: ${JSON.stringify(Object.fromEntries(this.errors))}`,
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/** The partition set as quorate has it, in one line per partition (for failure messages). */
export async function describeSet(quorate: QuorateClient, set: string): Promise<string> {
  const s: PartitionSet | null = await quorate.getPartitionSet(set);
  if (!s) return `no set ${set}`;
  return s.partitions
    .map(
      (p) =>
        `p${p.partition}: leader ${p.leader} leader epoch ${p.leaderEpoch} epoch ${p.epoch} eligible ${p.eligible.join(',')}`,
    )
    .join('\n');
}

export interface RawProduce {
  /** Resolves once the request is in the broker's socket (even a stopped process's kernel takes it). */
  readonly sent: Promise<void>;
  readonly answer: Promise<{ status: number; code: string; outcome: string }>;
}

/** `POST /produce/<p>` straight to one broker, bypassing the client's leader lookup. */
export function produceTo(url: string, p: number, value: string, leaderEpoch?: number): RawProduce {
  let sent!: () => void;
  const sentP = new Promise<void>((r) => (sent = r));
  const answer = new Promise<{ status: number; code: string; outcome: string }>((resolve, reject) => {
    const req = request(`${url}/produce/${p}`, {
      method: 'POST',
      headers: {
        'content-length': Buffer.byteLength(value),
        ...(leaderEpoch !== undefined ? { 'x-leader-epoch': String(leaderEpoch) } : {}),
      },
      timeout: 30_000,
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const b = JSON.parse(body) as { code?: string; outcome?: string };
        resolve({
          status: res.statusCode ?? 0,
          code: String(b.code ?? 'OK'),
          outcome: String(b.outcome ?? ''),
        });
      });
    });
    req.end(value, () => sent());
  });
  return { sent: sentP, answer };
}
