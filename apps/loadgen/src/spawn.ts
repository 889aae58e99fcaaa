/**
 * A local cluster of `quorate` node processes that the load generator owns: it starts
 * them on free loopback ports with their own data directories, kills, pauses, resumes
 * and restarts them for fault injection, and stops them all (SIGTERM, then SIGKILL)
 * afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { NetLab } from './nemesis/netlab.js';

export interface SpawnedNode {
  readonly id: string;
  readonly clientAddress: string;
  /** `quorate://127.0.0.1:<port>`: its client protocol. */
  readonly protocolAddress: string;
  readonly peerAddress: string;
  readonly dataDir: string;
  proc: ChildProcess | null;
  paused: boolean;
  /** Recent output, for error reports. */
  log: string[];
  /** A node added with `join()`: the member it asked to be added by, on its first start. */
  joinVia?: string;
}

export interface LocalClusterOptions {
  n: number;
  transport: 'tcp' | 'ws';
  /** Where data directories go; default a temp dir removed by stop(). */
  baseDir?: string;
  /** The `quorate` entry script; default: `@quorate/node`'s bin (or $QUORATE_BIN). */
  nodeBin?: string;
  /** Extra `quorate start` flags for every node. */
  extraArgs?: string[];
  /** Extra environment for the nodes. */
  env?: Record<string, string>;
  /** The cluster's bearer token (set as http.token on every node, and sent by this class's own requests). */
  token?: string;
  /**
   * Run each node in its own network namespace of this lab, on the lab's address for it
   * (`n<i>` hosts, created beforehand), with fixed ports (each namespace has its own).
   */
  lab?: NetLab;
  /** Extra environment for one node, asked at each (re)start (e.g. its fake clock). */
  envOf?: (n: SpawnedNode) => Promise<Record<string, string>>;
  /** A node's data directory (default: `<base>/<id>`). */
  dataDirOf?: (id: string) => string;
}

/** Ports this process has handed out: the OS may offer a just-closed port again. */
const handedOut = new Set<number>();

/**
 * A port the OS says is free on 127.0.0.1 now, and never one this process handed out
 * before (a cluster's members need several distinct ports known up front).
 */
export async function freePort(): Promise<number> {
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

function withoutBin(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { QUORATE_BIN: _, ...rest } = env;
  return rest;
}

/** Where the `quorate` binary is: $QUORATE_BIN, else the installed `@quorate/node`. */
export function resolveNodeBin(): string {
  if (process.env.QUORATE_BIN) return process.env.QUORATE_BIN;
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@quorate/node/package.json')), 'bin', 'quorate.js');
}

/**
 * Node `n<i>` on three free loopback ports (or, in a lab, on its namespace's address and
 * fixed ports), its data under `base`; not started yet.
 */
async function newNode(
  base: string,
  i: number,
  joinVia: string | undefined,
  opts: LocalClusterOptions,
): Promise<SpawnedNode> {
  const id = `n${i}`;
  const ip = opts.lab?.host(id).ip;
  return {
    id,
    clientAddress: `http://${ip ?? '127.0.0.1'}:${ip ? 8080 : await freePort()}`,
    protocolAddress: `quorate://${ip ?? '127.0.0.1'}:${ip ? 9080 : await freePort()}`,
    peerAddress: `${ip ?? '127.0.0.1'}:${ip ? 7080 : await freePort()}`,
    dataDir: opts.dataDirOf?.(id) ?? join(base, id),
    proc: null,
    paused: false,
    log: [],
    ...(joinVia ? { joinVia } : {}),
  };
}

/** A member as `--members` takes it: id, peer, HTTP and client-protocol addresses. */
function memberOf(n: SpawnedNode): string {
  return `${n.id}=${n.peerAddress}=${n.clientAddress}=${n.protocolAddress}`;
}

export class LocalCluster {
  readonly nodes: SpawnedNode[];
  private readonly ownDir: string | null;
  private readonly members: string;
  private readonly secret = randomBytes(24).toString('hex');

  private constructor(
    private readonly opts: LocalClusterOptions,
    nodes: SpawnedNode[],
    ownDir: string | null,
  ) {
    this.nodes = nodes;
    this.ownDir = ownDir;
    this.members = nodes.map(memberOf).join(',');
  }

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const ownDir = opts.baseDir ? null : await mkdtemp(join(tmpdir(), 'quorate-loadgen-'));
    const base = opts.baseDir ?? ownDir!;
    const nodes: SpawnedNode[] = [];
    for (let i = 1; i <= opts.n; i++) nodes.push(await newNode(base, i, undefined, opts));
    const c = new LocalCluster(opts, nodes, ownDir);
    try {
      for (const n of nodes) await c.launch(n);
      await c.waitForLeader(30_000);
    } catch (err) {
      // No process outlives a cluster that failed to start.
      await c.stop();
      throw err;
    }
    return c;
  }

  /** The members' HTTP API addresses. */
  get endpoints(): string[] {
    return this.nodes.map((n) => n.clientAddress);
  }

  /** The members' client-protocol addresses. */
  get protocolEndpoints(): string[] {
    return this.nodes.map((n) => n.protocolAddress);
  }

  /**
   * Start one more node, empty, that joins the cluster through `via` (`quorate start
   * --join`): it is added as a learner and promotes itself once caught up.
   */
  async join(via: SpawnedNode): Promise<SpawnedNode> {
    const n = await newNode(
      this.opts.baseDir ?? this.ownDir!,
      this.nodes.length + 1,
      via.clientAddress,
      this.opts,
    );
    this.nodes.push(n);
    await this.launch(n);
    return n;
  }

  /** Stop one node for good (SIGTERM, then SIGKILL after 5 s), e.g. after removing it. */
  async stopNode(n: SpawnedNode): Promise<void> {
    const p = n.proc;
    if (!p) return;
    if (n.paused) p.kill('SIGCONT');
    const exited = new Promise<void>((r) =>
      p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r()),
    );
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  private async launch(n: SpawnedNode): Promise<void> {
    const bin = this.opts.nodeBin ?? resolveNodeBin();
    // A joining node knows only itself; it learns the others from the member it joins.
    const self = memberOf(n);
    const args = [
      bin,
      'start',
      ...(n.joinVia ? ['--join', n.joinVia] : []),
      '--members',
      n.joinVia ? self : this.members,
      '--node-id',
      n.id,
      '--cluster-id',
      'loadgen',
      '--storage.data-dir',
      n.dataDir,
      '--transport.kind',
      this.opts.transport,
      '--log.level',
      'warn',
      // stdin is a pipe from this process: if it dies, however, its nodes stop too.
      '--stop-with-stdin',
      ...(this.opts.extraArgs ?? []),
    ];
    const own = (await this.opts.envOf?.(n)) ?? {};
    // In a lab: `ip netns exec` enters the node's namespace and execs node (the pid stays).
    const prefix = this.opts.lab?.prefix(n.id) ?? [];
    const proc = spawn(
      prefix[0] ?? process.execPath,
      prefix.length ? [...prefix.slice(1), process.execPath, ...args] : args,
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          // QUORATE_BIN names the binary for this class; the node itself refuses unknown
          // QUORATE_* variables, so it is not passed on.
          ...withoutBin(process.env),
          ...this.opts.env,
          ...own,
          // Off loopback (a lab's addresses), members must authenticate each other.
          ...(this.opts.lab ? { QUORATE_TRANSPORT_CLUSTER_SECRET: this.secret } : {}),
          ...(this.opts.token ? { QUORATE_HTTP_TOKEN: this.opts.token } : {}),
        },
      },
    );
    const keep = (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line) n.log.push(line);
      if (n.log.length > 50) n.log.splice(0, n.log.length - 50);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('exit', () => {
      if (n.proc === proc) n.proc = null;
    });
    n.proc = proc;
    n.paused = false;
  }

  /** Poll every live member's /health; the node that says it leads (with a majority agreeing). */
  async leader(): Promise<SpawnedNode | null> {
    const views = await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.proc || n.paused) return null;
        try {
          const r = await fetch(`${n.clientAddress}/health`, {
            signal: AbortSignal.timeout(500),
            ...(this.opts.token ? { headers: { authorization: `Bearer ${this.opts.token}` } } : {}),
          });
          return (await r.json()) as {
            nodeId: string;
            isLeader: boolean;
            leaderId: string | null;
            term: number;
          };
        } catch {
          return null;
        }
      }),
    );
    const claims = views.filter((v) => v?.isLeader);
    if (claims.length === 0) return null;
    // With a stale leader around, the one with the highest term is the real one.
    claims.sort((a, b) => b!.term - a!.term);
    return this.nodes.find((n) => n.id === claims[0]!.nodeId) ?? null;
  }

  async waitForLeader(timeoutMs: number): Promise<SpawnedNode> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (performance.now() > deadline) {
        const logs = this.nodes.map(
          (n) => `${n.id}: ${n.proc ? 'running' : 'exited'}\n    ${n.log.slice(-5).join('\n    ')}`,
        );
        throw new Error(`no leader within ${timeoutMs} ms\n${logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  kill(n: SpawnedNode): void {
    n.proc?.kill('SIGKILL');
  }

  pause(n: SpawnedNode): void {
    if (n.proc && !n.paused) {
      n.proc.kill('SIGSTOP');
      n.paused = true;
    }
  }

  resume(n: SpawnedNode): void {
    if (n.proc && n.paused) {
      n.proc.kill('SIGCONT');
      n.paused = false;
    }
  }

  /** Start a node again (after a kill), on the same ports and data. */
  async restart(n: SpawnedNode): Promise<void> {
    if (n.proc) {
      const p = n.proc;
      p.kill('SIGKILL');
      await new Promise<void>((r) =>
        p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r()),
      );
    }
    await this.launch(n);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n)));
    if (this.ownDir) await rm(this.ownDir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
