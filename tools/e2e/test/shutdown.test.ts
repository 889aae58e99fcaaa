/**
 * Shutdown is bounded and certain: a node exits within 5 s of SIGTERM whatever it is
 * doing (under load, writing a snapshot, its log reader not reading), and the nodes of
 * `pnpm start`'s launcher never outlive it, however it dies.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuorateClient } from '@quorate/client';
import { LocalCluster, resolveNodeBin } from '@quorate/loadgen';
import { afterEach, expect, it } from 'vitest';
import { freePort, waitFor } from './helpers.js';

/** The promise: gone within this of SIGTERM. */
const EXIT_MS = 5000;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'quorate-shutdown-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Signal `p` and measure how long it takes to exit, and with what. */
function signalAndTime(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM') {
  const t0 = performance.now();
  const exited = new Promise<{ ms: number; code: number | null; signal: NodeJS.Signals | null }>((r) =>
    p.once('exit', (code, signal) => r({ ms: performance.now() - t0, code, signal })),
  );
  p.kill(sig);
  return exited;
}

/** Exited, or a zombie nobody reaped yet: either way it runs no more code and holds no lock. */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // it exited while we looked
    }
  }
  return out;
}

async function members(n: number): Promise<{ flag: string; urls: string[] }> {
  const parts: string[] = [];
  const urls: string[] = [];
  for (let i = 1; i <= n; i++) {
    const url = `http://127.0.0.1:${await freePort()}`;
    parts.push(`n${i}=127.0.0.1:${await freePort()}=${url}`);
    urls.push(url);
  }
  return { flag: parts.join(','), urls };
}

async function leaderOf(urls: readonly string[]): Promise<string | null> {
  for (const u of urls) {
    try {
      const h = (await (await fetch(`${u}/health`, { signal: AbortSignal.timeout(500) })).json()) as {
        isLeader: boolean;
      };
      if (h.isLeader) return u;
    } catch {
      // not up (yet)
    }
  }
  return null;
}

/** Keep `clients` writers busy until the returned stop() is called. */
function load(endpoints: readonly string[], clients: number, value: string) {
  let running = true;
  const cs = Array.from({ length: clients }, () => new QuorateClient({ endpoints: [...endpoints] }));
  const done = Promise.all(
    cs.map(async (c, i) => {
      for (let k = 0; running; k++) await c.put(`k-${i}-${k % 50}`, value).catch(() => {});
    }),
  );
  return async () => {
    running = false;
    await done;
    await Promise.all(cs.map((c) => c.close()));
  };
}

it('the leader under write load exits cleanly (status 0) within 5 s of SIGTERM', async () => {
  const cluster = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--log.level', 'info'] });
  cleanups.push(() => cluster.stop());
  cleanups.push(load(cluster.endpoints, 16, 'x'.repeat(256)));
  const leader = await cluster.waitForLeader(20_000);
  const c = new QuorateClient({ endpoints: cluster.endpoints });
  cleanups.push(() => c.close());
  await c.put('warm', 'up');
  const r = await signalAndTime(leader.proc!);
  expect(r.ms).toBeLessThan(EXIT_MS);
  expect(r, leader.log.join('\n')).toMatchObject({ code: 0, signal: null });
});

it('a second SIGTERM exits at once (status 1) while the first is still handing over', async () => {
  const cluster = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--log.level', 'info'] });
  cleanups.push(() => cluster.stop());
  const leader = await cluster.waitForLeader(20_000);
  // With its followers stopped, the leader's hand-over cannot complete: its clean stop
  // waits out the transfer timeout (1 s) — the window for the second signal.
  for (const n of cluster.nodes) if (n !== leader) cluster.pause(n);
  const p = leader.proc!;
  const exited = new Promise<{ code: number | null; at: number }>((r) =>
    p.once('exit', (code) => r({ code, at: performance.now() })),
  );
  p.kill('SIGTERM');
  await waitFor(() => leader.log.some((l) => l.includes('SIGTERM: stopping')), 'the first stop to begin');
  const second = performance.now();
  p.kill('SIGTERM');
  const r = await exited;
  expect(r.code, leader.log.join('\n')).toBe(1);
  expect(r.at - second).toBeLessThan(1000);
  expect(leader.log.join('\n')).toMatch(/second SIGTERM: exiting now/);
  for (const n of cluster.nodes) cluster.resume(n);
});

it('a node writing a snapshot exits within 5 s of SIGTERM', async () => {
  // Large values and a snapshot every 8 MiB applied: the leader snapshots all the time.
  const cluster = await LocalCluster.start({
    n: 3,
    transport: 'tcp',
    extraArgs: ['--log.level', 'info', '--raft.snapshot-bytes', String(8 * 1024 * 1024)],
  });
  cleanups.push(() => cluster.stop());
  cleanups.push(load(cluster.endpoints, 8, 'v'.repeat(128 * 1024)));
  // Signal the leader the moment it says a snapshot is under way; the snapshot may end in
  // the instant between the poll and the signal (the node's stopping line tells), so try
  // again, on the next leader, until one stop did land mid-snapshot.
  let midSnapshot = 0;
  for (let attempt = 0; attempt < 6 && midSnapshot === 0; attempt++) {
    const leader = await cluster.waitForLeader(20_000);
    await waitFor(
      async () =>
        ((await (await fetch(`${leader.clientAddress}/health`)).json()) as { snapshotting: boolean })
          .snapshotting,
      'a snapshot in progress',
      60_000,
    );
    const r = await signalAndTime(leader.proc!);
    const log = leader.log.join('\n');
    expect(r.ms).toBeLessThan(EXIT_MS);
    expect(r.code === 0 || r.code === 1, `exit ${JSON.stringify(r)}\n${log}`).toBe(true);
    if (/"snapshotting":true[^\n]*SIGTERM: stopping/.test(log)) midSnapshot++;
    await cluster.restart(leader);
  }
  expect(midSnapshot).toBe(1);
});

for (const mode of ['non-blocking', 'blocking'] as const) {
  it(`a node whose log reader never reads (a full ${mode} pipe) keeps serving, and exits within 5 s of SIGTERM`, async () => {
    const dir = tempDir();
    const fifo = join(dir, 'log.fifo');
    execFileSync('mkfifo', [fifo]);
    // A reader that never reads, and the pipe filled to the brim before the node starts.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const filler = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    cleanups.push(() => {
      closeSync(filler);
      closeSync(reader);
    });
    const chunk = Buffer.alloc(4096, 0x2e);
    for (;;) {
      try {
        writeSync(filler, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
    }
    const out = mode === 'blocking' ? openSync(fifo, constants.O_WRONLY) : filler;
    if (out !== filler) cleanups.push(() => closeSync(out));
    const { flag, urls } = await members(1);
    const p = spawn(
      process.execPath,
      [
        resolveNodeBin(),
        'start',
        '--members',
        flag,
        '--node-id',
        'n1',
        '--storage.data-dir',
        join(dir, 'n1'),
        '--log.level',
        'debug',
      ],
      { stdio: ['ignore', out, 'pipe'] },
    );
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d));
    cleanups.push(() => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    });
    const c = new QuorateClient({ endpoints: urls });
    cleanups.push(() => c.close());
    // Its log lines (start, configuration, leadership) all met a full pipe: it serves anyway.
    await waitFor(() => leaderOf(urls), 'the node to lead', 30_000);
    for (let i = 0; i < 20; i++) expect((await c.put(`k${i}`, 'v')).version).toBe(1);
    const r = await signalAndTime(p);
    expect(r.ms).toBeLessThan(EXIT_MS);
    expect(r, stderr).toMatchObject({ code: 0, signal: null });
  });
}

/** `pnpm start`'s launcher on free ports in a directory of its own, with its group to itself. */
async function launcher() {
  const dir = tempDir();
  const { flag, urls } = await members(3);
  const bin = join(import.meta.dirname, '..', '..', '..', 'apps', 'node', 'dist', 'launcher.js');
  const p = spawn(process.execPath, [bin, '--members', flag], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
  });
  let nodes: number[] = [];
  cleanups.push(() => {
    for (const pid of [p.pid!, ...nodes]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  await waitFor(() => leaderOf(urls), 'the launched cluster to elect a leader', 30_000);
  nodes = await waitFor(() => {
    const c = childrenOf(p.pid!);
    return c.length === 3 ? c : null;
  }, "the launcher's three nodes");
  return { p, nodes };
}

it('SIGKILL of the launcher: no node outlives it', async () => {
  const { p, nodes } = await launcher();
  const t0 = performance.now();
  p.kill('SIGKILL');
  await waitFor(() => nodes.every(gone), 'every node to exit', 15_000);
  expect(performance.now() - t0).toBeLessThan(EXIT_MS + 1000);
});

it('a supervisor stops the launcher (SIGTERM to its group, SIGKILL a second later): no node outlives it', async () => {
  const { p, nodes } = await launcher();
  const t0 = performance.now();
  process.kill(-p.pid!, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 1000));
  try {
    process.kill(-p.pid!, 'SIGKILL');
  } catch {
    // the launcher's group had already exited
  }
  await waitFor(() => nodes.every(gone), 'every node to exit', 15_000);
  expect(performance.now() - t0).toBeLessThan(EXIT_MS + 1000);
});

it('Ctrl-C of `pnpm start` in a terminal: the nodes stop, the command exits 0, no ELIFECYCLE', async () => {
  // As a newcomer meets it: a terminal (a pty, through util-linux `script`), pnpm running a
  // package script that starts the launcher, and one Ctrl-C typed into the terminal, which
  // reaches both pnpm and the launcher.
  const dir = tempDir();
  const { flag, urls } = await members(3);
  const root = join(import.meta.dirname, '..', '..', '..');
  const bin = join(root, 'apps', 'node', 'dist', 'launcher.js');
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'ctrl-c',
      private: true,
      // The repository's pnpm, which corepack has (it would otherwise look for the latest).
      packageManager: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager,
      scripts: { start: `exec node ${bin} --members ${flag}` },
    }),
  );
  // `exec`: in a real terminal the interactive shell gives pnpm a foreground process group of
  // its own, and the shell is not in it. `script` runs its command through $SHELL (dash when
  // unset), and dash stays as pnpm's parent and dies of the Ctrl-C itself, which `script -e`
  // reports as 130.
  const p = spawn('script', ['-qfec', 'exec pnpm start', '/dev/null'], {
    cwd: dir,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  cleanups.push(() => {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  await waitFor(() => leaderOf(urls), 'the cluster started by `pnpm start` to elect a leader', 60_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}; output:\n${out}`);
    },
  );
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  p.stdin.write('\x03');
  const code = await Promise.race([exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 20_000))]);
  expect(code, out).toBe(0);
  expect(out).toContain('stopping 3 node(s)');
  expect(out).not.toContain('ELIFECYCLE');
  for (const u of urls) {
    await waitFor(
      async () =>
        (await fetch(`${u}/health/live`).then(
          () => false,
          () => true,
        )) || null,
      `${u} to stop`,
      15_000,
    );
  }
}, 120_000);
