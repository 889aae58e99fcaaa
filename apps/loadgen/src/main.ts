/**
 * One load-generator run: optionally spawn a cluster, run the clients while faults are
 * injected, report, check the history, stop everything.
 */
import { writeFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { HistoryFile } from './history.js';
import { Nemesis } from './nemesis/nemesis.js';
import { type LoadgenOptions, LoadgenUsageError } from './options.js';
import { type FaultRecord, formatTable, type Report, toHtml, toJson } from './report.js';
import { run } from './runner.js';
import { LocalCluster, type SpawnedNode } from './spawn.js';
import type { Stats } from './stats.js';

/** What must be undone if the process is interrupted mid-run (clusters, namespaces, mounts). */
const cleanups = new Set<() => Promise<void>>();

/**
 * Undo what runs under way have set up: their clusters stopped, the nemesis's network
 * namespaces removed and disks unmounted. The CLIs call it on SIGINT and SIGTERM.
 */
export async function interruptRuns(): Promise<void> {
  for (const c of [...cleanups].reverse()) await c().catch(() => {});
  cleanups.clear();
}

/** Exit cleanly on Ctrl-C or SIGTERM: undo the runs under way first. */
export function cleanUpOnSignals(): void {
  const on = (sig: NodeJS.Signals, code: number) =>
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping the cluster and removing what the run set up...\n`);
      void interruptRuns().finally(() => process.exit(code));
    });
  on('SIGINT', 130);
  on('SIGTERM', 143);
}

export interface MainResult {
  report: Report;
  exitCode: number;
}

/** Some replicas could not be read back (unreachable, or never caught up) before the deadline. */
export class FinalStateError extends Error {
  readonly code = 'FINAL_STATE_UNREADABLE';
  constructor(
    /** The replicas not read, each with why. */
    readonly unread: { endpoint: string; reason: string }[],
    /** What was read from the others. */
    readonly partial: Map<string, Map<string, string>>,
  ) {
    super(
      `could not read the final state of ${unread.map((u) => `${u.endpoint} (${u.reason})`).join(', ')}; ` +
        'the lost-write check covers only the replicas that answered',
    );
    this.name = 'FinalStateError';
  }
}

/**
 * Reads every key of every replica (stale reads, once each has applied what the leader
 * had committed when the run ended). Every replica must be read: one that stays
 * unreachable, or behind, past `timeoutMs` fails with a `FinalStateError` naming it
 * (carrying what the others held), never silently drops out of the check.
 */
/** Each member's client-protocol address, from its `/health`; a usage error when one has none. */
async function protocolAddresses(endpoints: readonly string[], token?: string): Promise<string[]> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return Promise.all(
    endpoints.map(async (e) => {
      let h: { protocolAddress?: string | null };
      try {
        const r = await fetch(`${e}/health`, { headers, signal: AbortSignal.timeout(3000) });
        h = (await r.json()) as { protocolAddress?: string | null };
      } catch (err) {
        throw new LoadgenUsageError([
          `--server-list: ${e}/health did not answer (${(err as Error).message})`,
        ]);
      }
      if (!h.protocolAddress)
        throw new LoadgenUsageError([
          `--wire binary: ${e} does not serve the client protocol (no client.listen / protocolAddress); pass --wire http`,
        ]);
      return h.protocolAddress;
    }),
  );
}

export async function finalStates(
  endpoints: readonly string[],
  token?: string,
  timeoutMs = 30_000,
): Promise<Map<string, Map<string, string>>> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const deadline = performance.now() + timeoutMs;
  const pause = () => new Promise((r) => setTimeout(r, 50));
  type GroupHealth = { group: number; isLeader: boolean; commitIndex: number; appliedIndex: number };
  type Health = { isLeader: boolean; commitIndex: number; appliedIndex: number; groups?: GroupHealth[] };
  const health = async (e: string) => {
    try {
      const r = await fetch(`${e}/health`, { headers, signal: AbortSignal.timeout(1000) });
      if (!r.ok) return null;
      return (await r.json()) as Health;
    } catch {
      return null;
    }
  };
  // Each group as one: a sharded cluster lists its groups, a single group is group 0.
  const groupsOf = (h: Health): GroupHealth[] => h.groups ?? [{ group: 0, ...h }];
  // What each group's leader has committed: every replica must have applied at least that.
  let target: Map<number, number> | null = null;
  while (target === null && performance.now() < deadline) {
    const hs = (await Promise.all(endpoints.map(health))).filter((h): h is Health => h !== null);
    const t = new Map<number, number>();
    for (const h of hs) for (const g of groupsOf(h)) if (g.isLeader) t.set(g.group, g.commitIndex);
    const count = hs.length > 0 ? Math.max(...hs.map((h) => groupsOf(h).length)) : 0;
    if (count > 0 && t.size === count) target = t;
    else await pause();
  }
  const why = new Map<string, string>();
  if (target === null)
    for (const e of endpoints) why.set(e, 'no leader was found to learn the commit index from');
  const caughtUp = async (e: string): Promise<boolean> => {
    for (;;) {
      const h = await health(e);
      const behind = h ? groupsOf(h).filter((g) => g.appliedIndex < (target!.get(g.group) ?? 0)) : [];
      if (h && behind.length === 0) return true;
      if (performance.now() > deadline) {
        why.set(
          e,
          h
            ? behind
                .map(
                  (g) =>
                    `${h.groups ? `group ${g.group}: ` : ''}applied ${g.appliedIndex} of ${target!.get(g.group)}`,
                )
                .join(', ')
            : 'unreachable',
        );
        return false;
      }
      await pause();
    }
  };
  const readAll = async (e: string): Promise<Map<string, string> | null> => {
    const kv = new Map<string, string>();
    let after = '';
    for (;;) {
      const q = new URLSearchParams({ prefix: '', limit: '10000', stale: 'true', after });
      type Page = { items: { key: string; value: string }[]; more: boolean };
      let page = null as Page | null;
      let last = '';
      while (page === null) {
        try {
          const r = await fetch(`${e}/kv?${q}`, { headers, signal: AbortSignal.timeout(10_000) });
          if (r.ok) page = (await r.json()) as Page;
          else last = `GET /kv answered ${r.status}`;
        } catch (err) {
          last = String((err as Error)?.message ?? err);
        }
        if (page === null) {
          if (performance.now() > deadline) {
            why.set(e, last);
            return null;
          }
          await pause();
        }
      }
      for (const it of page.items) kv.set(it.key, it.value);
      if (!page.more || page.items.length === 0) return kv;
      after = page.items[page.items.length - 1]!.key;
    }
  };
  const out = new Map<string, Map<string, string>>();
  if (target !== null) {
    await Promise.all(
      endpoints.map(async (e) => {
        if (!(await caughtUp(e))) return;
        const kv = await readAll(e);
        if (kv) out.set(e, kv);
      }),
    );
  }
  const unread = endpoints.filter((e) => !out.has(e));
  if (unread.length > 0)
    throw new FinalStateError(
      unread.map((e) => ({ endpoint: e, reason: why.get(e) ?? 'unreadable' })),
      out,
    );
  return out;
}

/**
 * `[#######.............]  35%`: how far the run is, by time (`--duration`) or by
 * operations (`--reqs-per-client`), whichever ends it first.
 */
export function progressBar(
  ops: number,
  elapsedMs: number,
  o: Pick<LoadgenOptions, 'durationMs' | 'reqsPerClient' | 'numClients'>,
): string {
  const byTime = o.durationMs ? elapsedMs / o.durationMs : 0;
  const byOps = o.reqsPerClient ? ops / (o.reqsPerClient * o.numClients) : 0;
  const done = Math.min(1, Math.max(byTime, byOps));
  const width = 20;
  const filled = Math.round(done * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(done * 100)).padStart(3)}%`;
}

/** Faults against the leader of a spawned cluster, and the gap each one caused. */
class FaultInjector {
  readonly faults: FaultRecord[] = [];
  private open: (FaultRecord & { t: number })[] = [];
  private timers: ReturnType<typeof setTimeout>[] = [];
  private stopped = false;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly o: LoadgenOptions,
    private readonly t0: number,
    private readonly say: (line: string) => void,
  ) {}

  start(): void {
    if (this.o.killLeaderEveryMs) this.every(this.o.killLeaderEveryMs, () => this.killLeader());
    if (this.o.pauseLeaderEveryMs) this.every(this.o.pauseLeaderEveryMs, () => this.pauseLeader());
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const loop = () => {
      if (this.stopped) return;
      // No fault in the last seconds of a timed run: its recovery could not be observed.
      const left =
        this.o.durationMs !== undefined ? this.o.durationMs - (performance.now() - this.t0) : Infinity;
      if (left < 2000) return;
      void fn().finally(() => {
        if (!this.stopped) this.timers.push(setTimeout(loop, ms));
      });
    };
    this.timers.push(setTimeout(loop, ms));
  }

  private record(kind: FaultRecord['kind'], n: SpawnedNode): void {
    const t = performance.now();
    const f = { kind, at: (t - this.t0) / 1000, node: n.id, gapMs: null, electedMs: null, errors: 0, t };
    this.faults.push(f);
    this.open.push(f);
    this.say(`${f.at.toFixed(1)}s: ${kind} ${n.id}`);
    void this.watchElection(f, n);
  }

  /** Poll the members until one other than `faulted` says it leads; record when. */
  private async watchElection(f: FaultRecord & { t: number }, faulted: SpawnedNode): Promise<void> {
    const giveUp = f.t + 30_000;
    while (!this.stopped && performance.now() < giveUp) {
      const l = await this.cluster.leader().catch(() => null);
      if (l && l !== faulted) {
        f.electedMs = performance.now() - f.t;
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async killLeader(): Promise<void> {
    const l = await this.cluster.leader();
    if (!l) return;
    this.cluster.kill(l);
    this.record('kill-leader', l);
    this.timers.push(setTimeout(() => void this.cluster.restart(l), this.o.restartAfterMs));
  }

  private async pauseLeader(): Promise<void> {
    const l = await this.cluster.leader();
    if (!l) return;
    this.cluster.pause(l);
    this.record('pause-leader', l);
    this.timers.push(setTimeout(() => this.cluster.resume(l), this.o.pauseForMs));
  }

  /**
   * A write sent at `sentAt` succeeded at `at`: it closes the gap of every fault it was
   * sent after (a write already in flight at the fault proves nothing about recovery).
   */
  writeOk(sentAt: number, at: number): void {
    if (this.open.length === 0) return;
    const still: typeof this.open = [];
    for (const f of this.open) {
      if (sentAt > f.t) {
        f.gapMs = at - f.t;
        this.say(
          `  ${f.kind} ${f.node}: next write after ${f.gapMs.toFixed(0)} ms (${f.errors} errors meanwhile)`,
        );
      } else still.push(f);
    }
    this.open = still;
  }

  error(): void {
    for (const f of this.open) f.errors++;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    for (const n of this.cluster.nodes) {
      if (n.paused) this.cluster.resume(n);
      if (!n.proc) await this.cluster.restart(n);
    }
    for (const f of this.faults) delete (f as Partial<{ t: number }>).t;
  }
}

export type Checker = (
  history: HistoryFile,
  finals: Map<string, Map<string, string>>,
) => Promise<NonNullable<Report['check']>>;

export async function main(o: LoadgenOptions, checker?: Checker): Promise<MainResult> {
  const out = o.quiet ? () => {} : (s: string) => process.stderr.write(`${s}\n`);
  const nemesis =
    o.nemesis.length > 0
      ? await Nemesis.prepare(
          {
            families: o.nemesis,
            seed: o.seed,
            intervalMs: o.nemesisIntervalMs,
            electionTimeoutMs: 150,
            maxLeaderAfterHealMs: o.maxLeaderAfterHealMs,
            // With lease reads, clock rates stay within the bound the nodes assume (0.1).
            ...(o.leaseReads ? { maxClockRateChange: 0.09 } : {}),
            ...(o.token ? { token: o.token } : {}),
          },
          o.spawn,
          out,
        )
      : null;
  const undo = async () => {
    await nemesis?.cleanup();
  };
  cleanups.add(undo);
  try {
    return await runWith(o, checker, out, nemesis);
  } finally {
    cleanups.delete(undo);
    await nemesis?.cleanup();
  }
}

async function runWith(
  o: LoadgenOptions,
  checker: Checker | undefined,
  out: (s: string) => void,
  nemesis: Nemesis | null,
): Promise<MainResult> {
  let cluster: LocalCluster | null = null;
  let stopCluster: (() => Promise<void>) | null = null;
  if (o.spawn > 0) {
    out(
      `spawning a ${o.spawn}-node cluster (${o.transport}${o.groups > 1 ? `, ${o.groups} groups` : ''})${nemesis ? ` under the nemesis: ${nemesis.families.join(', ')}` : ''}...`,
    );
    cluster = await LocalCluster.start({
      n: o.spawn,
      transport: o.transport,
      ...(o.dataDir ? { baseDir: o.dataDir } : {}),
      ...(nemesis?.clusterOptions() ?? {}),
      ...(o.leaseReads || o.groups > 1
        ? {
            extraArgs: [
              ...(nemesis?.clusterOptions().extraArgs ?? []),
              ...(o.leaseReads ? ['--raft.lease-reads', 'true'] : []),
              ...(o.groups > 1 ? ['--groups', String(o.groups)] : []),
            ],
          }
        : {}),
    });
    const c = cluster;
    stopCluster = () => c.stop();
    cleanups.add(stopCluster);
    out(`cluster ready: ${cluster.endpoints.join(' ')}`);
  }
  // HTTP addresses for health, faults and the final states; the clients' own per --wire.
  const endpoints = cluster ? cluster.endpoints : o.serverList;
  const clientEndpoints =
    o.wire === 'http'
      ? endpoints
      : cluster
        ? cluster.protocolEndpoints
        : await protocolAddresses(endpoints, o.token);
  const history = o.history || o.check ? new HistoryFile(o.history ?? null, o.check) : undefined;
  const t0 = performance.now();
  const faults = cluster ? new FaultInjector(cluster, o, t0, out) : null;
  const tty = process.stderr.isTTY && !o.quiet;
  try {
    faults?.start();
    if (nemesis && cluster) nemesis.start(cluster, t0, o.durationMs!);
    const progress = (line: { t: number; ops: number; errors: number; p99Ms: number }, stats: Stats) => {
      const s = `${String(line.t + 1).padStart(4)}s  ${String(line.ops).padStart(7)} ops/s  p99 ${line.p99Ms.toFixed(1).padStart(7)} ms  errors ${stats.errorCount}`;
      if (tty) process.stderr.write(`\r${progressBar(stats.ops, performance.now() - t0, o)} ${s}   `);
      else out(s);
    };
    const result = await run({
      endpoints: clientEndpoints,
      wire: o.wire,
      clients: o.numClients,
      ...(o.reqsPerClient !== undefined ? { reqsPerClient: o.reqsPerClient } : {}),
      ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : {}),
      ...(o.rate !== undefined ? { rate: o.rate } : {}),
      workload: {
        mode: o.mode,
        readRatio: o.readRatio,
        keys: o.keys,
        zipf: o.zipf,
        valueSize: o.valueSize,
        seed: o.seed,
      },
      timeoutMs: o.timeoutMs,
      ...(o.token ? { token: o.token } : {}),
      ...(history ? { history } : {}),
      onSecond: o.quiet ? undefined : progress,
      onWriteOk: (sentAt, at) => {
        faults?.writeOk(sentAt, at);
        nemesis?.writeOk(sentAt);
      },
      onError: () => faults?.error(),
    });
    if (tty) process.stderr.write('\n');
    await faults?.stop();
    await nemesis?.stop();
    await history?.close();
    const s = result.stats;
    const report: Report = {
      config: { ...o, endpoints },
      durationS: result.elapsedMs / 1000,
      ops: s.ops,
      throughput: s.ops / (result.elapsedMs / 1000),
      latencyMs: s.latencyMs(),
      errors: s.errorCount,
      errorRate: s.ops > 0 ? s.errorCount / s.ops : 0,
      errorsByKind: Object.fromEntries(s.errors),
      casMisses: s.casMisses,
      ambiguous: s.ambiguous,
      faults: faults?.faults ?? [],
      timeline: s.timeline,
      loadgenCpuMicrosPerOp: result.cpuMicrosPerOp,
    };
    s.destroy();
    if (o.leaseReads && cluster) report.leaseReads = await leaseReadsServed(cluster.endpoints, o.token);
    if (nemesis) {
      out('nemesis: checking the members agree (state hashes at one applied index)...');
      report.nemesis = await nemesis.verify();
    }
    if (o.check && history) {
      if (!checker) throw new Error('--check needs the checker');
      out('checking the history...');
      let finals: Map<string, Map<string, string>>;
      let unread: FinalStateError | null = null;
      try {
        finals = await finalStates(endpoints, o.token);
      } catch (err) {
        if (!(err instanceof FinalStateError)) throw err;
        unread = err;
        finals = err.partial;
      }
      report.check = await checker(history, finals);
      if (unread) {
        report.check.unreadReplicas = unread.unread.map((u) => u.endpoint);
        report.check.detail = [unread.message, report.check.detail].filter(Boolean).join('\n               ');
      }
    }
    process.stdout.write(formatTable(report));
    if (o.json) {
      await writeFile(o.json, toJson(report));
      out(`wrote the JSON report to ${resolvePath(o.json)}`);
    }
    if (o.html) {
      await writeFile(o.html, toHtml(report));
      out(`wrote the HTML report to ${resolvePath(o.html)}`);
    }
    let exitCode = 0;
    if (o.maxErrorRate !== undefined && report.errorRate > o.maxErrorRate) {
      out(
        `error rate ${(report.errorRate * 100).toFixed(3)} % is above --max-error-rate ${o.maxErrorRate * 100} %`,
      );
      exitCode = 1;
    }
    if (report.nemesis && report.nemesis.failures.length > 0) {
      for (const f of report.nemesis.failures) out(`nemesis: FAILED: ${f}`);
      exitCode = 1;
    }
    if (
      report.check &&
      (report.check.linearizable !== true ||
        report.check.lostWrites > 0 ||
        (report.check.unreadReplicas?.length ?? 0) > 0)
    )
      exitCode = 1;
    return { report, exitCode };
  } finally {
    await faults?.stop().catch(() => {});
    await nemesis?.stop().catch(() => {});
    if (stopCluster) cleanups.delete(stopCluster);
    await cluster?.stop();
  }
}

/** The members' `quorate_lease_reads_total`, summed (a member that does not answer counts 0). */
async function leaseReadsServed(endpoints: readonly string[], token?: string): Promise<number> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let sum = 0;
  for (const e of endpoints) {
    try {
      const text = await (await fetch(`${e}/metrics`, { headers, signal: AbortSignal.timeout(3000) })).text();
      const m = /^quorate_lease_reads_total (\d+(?:\.\d+)?)$/m.exec(text);
      if (m) sum += Number(m[1]);
    } catch {
      // unreachable: its reads are not counted
    }
  }
  return sum;
}
