/**
 * Benchmarks of the reference node and of LeaderElector with real processes on loopback
 * (TCP, LMDB with fsync): the time from the last node's start to the first leader,
 * failover after kill -9 of the leader under light load, lease acquire and renew latency,
 * and an elector's takeover after its holder is SIGKILLed or resigns.
 *
 *   pnpm --filter @quorate/e2e bench [-- --kills 12 --starts 5]
 *
 * Figures are medians and percentiles of one run on this machine; the machine is shared,
 * so compare runs side by side, never against numbers recorded at another time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LeaderElector, QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';

const { values: args } = parseArgs({
  // pnpm passes the `--` that separates its own flags from the script's
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    kills: { type: 'string', default: '12' },
    starts: { type: 'string', default: '5' },
    leases: { type: 'string', default: '300' },
    takeovers: { type: 'string', default: '5' },
  },
});

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
const summary = (xs: number[]) =>
  `n=${xs.length}  min ${Math.min(...xs).toFixed(1)}  p50 ${quantile(xs, 0.5).toFixed(1)}  p90 ${quantile(xs, 0.9).toFixed(1)}  p99 ${quantile(xs, 0.99).toFixed(1)}  max ${Math.max(...xs).toFixed(1)} ms`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  f: () => Promise<T | null | undefined> | T | null | undefined,
  ms = 30_000,
) {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ------------------------------------------------------------------ cold start to leader
async function coldStarts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--log.level', 'info'] });
    try {
      // pino's `time` (wall clock ms) of each node's start and of the first "became leader".
      const times = (msg: string) =>
        c.nodes.flatMap((node) =>
          node.log
            .filter((l) => l.includes(`"msg":"${msg}"`))
            .map((l) => (JSON.parse(l) as { time: number }).time),
        );
      const started = await until('three started lines', () => {
        const t = times('node started');
        return t.length === 3 ? t : null;
      });
      const leader = await until('a leader line', () => {
        const t = times('became leader');
        return t.length > 0 ? t : null;
      });
      out.push(Math.min(...leader) - Math.max(...started));
    } finally {
      await c.stop();
    }
  }
  return out;
}

// ------------------------------------------------------------------ failover under load
async function failovers(kills: number) {
  const c = await LocalCluster.start({ n: 3, transport: 'tcp' });
  const client = new QuorateClient({
    endpoints: c.endpoints,
    timeoutMs: 15_000,
    backoff: { baseMs: 5, maxMs: 50 },
  });
  const gaps: number[] = [];
  const electionGaps: number[] = [];
  let stop = false;
  const lastOk: { sent: number; at: number }[] = [];
  // Light load: four writers, one write in flight each.
  const writers = Array.from({ length: 4 }, async (_, w) => {
    let i = 0;
    while (!stop) {
      const sent = performance.now();
      try {
        await client.put(`w${w}-${i++ % 100}`, String(i));
        lastOk.push({ sent, at: performance.now() });
        if (lastOk.length > 1000) lastOk.splice(0, 500);
      } catch {
        // the deadline passed; try the next one
      }
    }
  });
  try {
    await sleep(1000);
    for (let k = 0; k < kills; k++) {
      const leader = await c.waitForLeader(30_000);
      const t = performance.now();
      c.kill(leader);
      const newLeader = until('a new leader', async () => {
        const l = await c.leader();
        return l && l !== leader ? performance.now() : null;
      });
      const ok = await until('a write sent after the kill to succeed', () => lastOk.find((o) => o.sent > t));
      gaps.push(ok.at - t);
      electionGaps.push((await newLeader) - t);
      await c.restart(leader);
      // Let it catch up before the next kill, so every kill finds a healthy cluster.
      await until('the restarted node to catch up', async () => {
        try {
          const h = (await (await fetch(`${leader.clientAddress}/health`)).json()) as {
            appliedIndex: number;
          };
          const l = await c.leader();
          if (!l) return null;
          const lh = (await (await fetch(`${l.clientAddress}/health`)).json()) as { commitIndex: number };
          return h.appliedIndex >= lh.commitIndex - 50;
        } catch {
          return null;
        }
      });
      await sleep(300);
    }
  } finally {
    stop = true;
    await Promise.allSettled(writers);
    await client.close();
    await c.stop();
  }
  return { gaps, electionGaps };
}

// ------------------------------------------------------------------ lease latency
async function leaseLatency(n: number) {
  const c = await LocalCluster.start({ n: 3, transport: 'tcp' });
  const client = new QuorateClient({ endpoints: c.endpoints });
  try {
    const acquire: number[] = [];
    const renew: number[] = [];
    for (let i = 0; i < 20; i++) await client.acquireLease(`warm-${i}`, 'h', 60_000); // finds the leader
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      const l = await client.acquireLease(`job-${i}`, 'holder-1', 60_000);
      acquire.push(performance.now() - t);
      t = performance.now();
      await client.renewLease(`job-${i}`, 'holder-1', l.token);
      renew.push(performance.now() - t);
    }
    return { acquire, renew };
  } finally {
    await client.close();
    await c.stop();
  }
}

// ------------------------------------------------------------------ elector takeover
async function electorTakeovers(rounds: number) {
  const c = await LocalCluster.start({ n: 3, transport: 'tcp' });
  const TTL = 1500;
  const RENEW = 300;
  const dir = mkdtempSync(join(tmpdir(), 'quorate-elector-bench-'));
  const logFile = join(dir, 'service.log');
  writeFileSync(logFile, '');
  const fixture = join(import.meta.dirname, '..', 'fixtures', 'elector-service.ts');
  const procs = new Map<string, ChildProcess>();
  const start = (holder: string) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', fixture], {
      env: {
        ...process.env,
        ENDPOINTS: c.endpoints.join(','),
        HOLDER: holder,
        TTL_MS: String(TTL),
        RENEW_MS: String(RENEW),
        STORE: 'http://127.0.0.1:9', // discard: the bench only times elections
        LOG: logFile,
      },
      stdio: 'ignore',
    });
    procs.set(holder, p);
  };
  const electedAfter = (t: number, not: string) =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { at: number; holder: string; what: string })
      .find((l) => l.what === 'elected' && l.at > t && l.holder !== not);
  const holderNow = () =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { at: number; holder: string; what: string })
      .filter((l) => l.what === 'elected')
      .pop()?.holder;
  const afterKill: number[] = [];
  const afterResign: number[] = [];
  try {
    for (const h of ['a', 'b', 'c']) start(h);
    for (let r = 0; r < rounds * 2; r++) {
      const holder = await until('a holder', () => holderNow());
      await sleep(2 * RENEW);
      const p = procs.get(holder)!;
      const t = Date.now();
      p.kill(r % 2 === 0 ? 'SIGKILL' : 'SIGTERM'); // SIGTERM: the service resigns
      const e = await until('a successor', () => electedAfter(t, holder));
      (r % 2 === 0 ? afterKill : afterResign).push(e.at - t);
      await new Promise((res) =>
        p.exitCode !== null || p.signalCode !== null ? res(null) : p.once('exit', res),
      );
      start(holder);
    }
  } finally {
    for (const p of procs.values()) p.kill('SIGKILL');
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { afterKill, afterResign, TTL, RENEW };
}

// In-process electors: acquisition latency as an application sees it.
async function electorAcquire(n: number) {
  const c = await LocalCluster.start({ n: 3, transport: 'tcp' });
  const client = new QuorateClient({ endpoints: c.endpoints });
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const e = new LeaderElector({
        cluster: client,
        name: `bench-${i}`,
        holderId: 'me',
        ttlMs: 2000,
        renewEveryMs: 400,
      });
      const t = performance.now();
      const won = new Promise<void>((r) => e.on((ev) => ev.type === 'elected' && r()));
      e.start();
      await won;
      times.push(performance.now() - t);
      await e.stop();
    }
  } finally {
    await client.close();
    await c.stop();
  }
  return times;
}

console.log('quorate cluster benchmarks: 3 real node processes, TCP, LMDB with fsync, loopback\n');
const starts = await coldStarts(Number(args.starts));
console.log(`cold start: last node started -> first leader      ${summary(starts)}`);
const f = await failovers(Number(args.kills));
console.log(`failover: kill -9 leader -> new leader seen         ${summary(f.electionGaps)}`);
console.log(`failover: kill -9 leader -> next write succeeds     ${summary(f.gaps)}`);
const l = await leaseLatency(Number(args.leases));
console.log(
  `lease acquire (new name, via the leader)           ${summary(l.acquire)}   (Redis-lock design promise: < 10 ms)`,
);
console.log(
  `lease renew                                         ${summary(l.renew)}   (Redis-lock design promise: < 5 ms)`,
);
const ea = await electorAcquire(30);
console.log(`LeaderElector start -> elected (free lease)         ${summary(ea)}`);
const t = await electorTakeovers(Number(args.takeovers));
console.log(
  `LeaderElector takeover after holder SIGKILL         ${summary(t.afterKill)}   (TTL ${t.TTL} ms, renew every ${t.RENEW} ms)`,
);
console.log(`LeaderElector takeover after resign (SIGTERM)       ${summary(t.afterResign)}`);
