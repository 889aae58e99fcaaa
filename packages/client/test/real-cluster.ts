/**
 * A real quorate cluster for the client's tests: `n` `quorate start` processes on free
 * loopback ports, TCP between them, data in a temp directory removed by `stop()`.
 *
 * The node runs from its source (apps/node/src/cli.ts under tsx), so the tests see the
 * server of this working tree without a build; `QUORATE_BIN` runs a built `quorate`
 * instead. `@quorate/node` depends on this package, so it is started by path, not
 * imported. Each node's stdin is a pipe from this process: if the test process dies, the
 * nodes stop too (`--stop-with-stdin`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..', '..');

export interface RealCluster {
  /** The members' HTTP API addresses. */
  readonly endpoints: string[];
  stop(): Promise<void>;
}

const handedOut = new Set<number>();

async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export async function startCluster(n = 3, timeoutMs = 60_000): Promise<RealCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-client-test-'));
  const nodes: { id: string; peer: string; http: string; protocol: string }[] = [];
  for (let i = 1; i <= n; i++) {
    nodes.push({
      id: `n${i}`,
      peer: `127.0.0.1:${await freePort()}`,
      http: `http://127.0.0.1:${await freePort()}`,
      protocol: `quorate://127.0.0.1:${await freePort()}`,
    });
  }
  const members = nodes.map((m) => `${m.id}=${m.peer}=${m.http}=${m.protocol}`).join(',');
  const entry = process.env.QUORATE_BIN
    ? [process.env.QUORATE_BIN]
    : ['--import', 'tsx', '--conditions=source', join(repo, 'apps', 'node', 'src', 'cli.ts')];
  const logs = new Map<string, string[]>();
  const procs: ChildProcess[] = nodes.map((m) => {
    const p = spawn(
      process.execPath,
      [
        ...entry,
        'start',
        '--members',
        members,
        '--node-id',
        m.id,
        '--cluster-id',
        'client-test',
        '--storage.data-dir',
        join(dir, m.id),
        '--transport.kind',
        'tcp',
        '--log.level',
        'warn',
        '--stop-with-stdin',
      ],
      { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const log: string[] = [];
    logs.set(m.id, log);
    const keep = (d: Buffer) => {
      log.push(...d.toString().split('\n').filter(Boolean));
      if (log.length > 40) log.splice(0, log.length - 40);
    };
    p.stdout?.on('data', keep);
    p.stderr?.on('data', keep);
    return p;
  });
  const stop = async () => {
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const leaders = await Promise.all(
      nodes.map(async (m) => {
        try {
          const r = await fetch(`${m.http}/health`, { signal: AbortSignal.timeout(500) });
          return ((await r.json()) as { isLeader?: boolean }).isLeader === true;
        } catch {
          return false;
        }
      }),
    );
    if (leaders.some(Boolean)) break;
    if (performance.now() > deadline || procs.some((p) => p.exitCode !== null)) {
      const why = nodes.map((m) => `${m.id}:\n  ${(logs.get(m.id) ?? []).slice(-8).join('\n  ')}`).join('\n');
      await stop();
      throw new Error(`the test cluster did not elect a leader within ${timeoutMs} ms\n${why}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { endpoints: nodes.map((m) => m.http), stop };
}
