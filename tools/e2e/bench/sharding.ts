/**
 * A sharded cluster (docs/sharding.md) measured with real node processes:
 *
 *   pnpm --filter @quorate/e2e bench:sharding -- scale [groups=1000]
 *     every group's leader, agreed by all members, how long after launch; idle CPU and
 *     memory per member (against 2 groups, for the cost of one group);
 *   pnpm --filter @quorate/e2e bench:sharding -- throughput [groups=16] [clients=256] [reps=2]
 *     puts of 256 B with `groups` and with 1 group, alternated, through the load generator;
 *   pnpm --filter @quorate/e2e bench:sharding -- failover [rounds=6]
 *     kill -9 of a member leading some of 8 groups, under 16 writers: the gap to the next
 *     acknowledged write in each group it led, and in the others.
 *
 * Build first (`pnpm build`): the nodes and the load generator run from their dist.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupOfKey, QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';

const LOADGEN = join(import.meta.dirname, '..', '..', '..', 'apps', 'loadgen', 'bin', 'quorate-loadgen.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface GroupHealth {
  group: number;
  leaderId: string | null;
}

async function health(endpoint: string): Promise<{ groups?: GroupHealth[] } | null> {
  try {
    return (await (await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2000) })).json()) as {
      groups?: GroupHealth[];
    };
  } catch {
    return null;
  }
}

/** CPU ticks (1/100 s) a process has used. */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function idle(groups: number): Promise<{ agreedMs: number | null; cpu: number[]; rss: number[] }> {
  const t0 = performance.now();
  const c = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--groups', String(groups)] });
  try {
    let agreedMs: number | null = null;
    while (agreedMs === null && performance.now() - t0 < 120_000) {
      const hs = await Promise.all(c.endpoints.map(health));
      const first = hs[0]?.groups;
      if (
        first &&
        hs.every((h) => h?.groups) &&
        first.every((g, i) => g.leaderId !== null && hs.every((h) => h!.groups![i]!.leaderId === g.leaderId))
      )
        agreedMs = performance.now() - t0;
      else await sleep(100);
    }
    await sleep(15_000);
    const pids = c.nodes.map((n) => n.proc!.pid!);
    const a = pids.map(cpuTicks);
    await sleep(10_000);
    const cpu = pids.map((p, i) => cpuTicks(p) - a[i]!);
    return { agreedMs, cpu, rss: pids.map(rssMiB) };
  } finally {
    await c.stop();
  }
}

async function scale(groups: number): Promise<void> {
  const many = await idle(groups);
  const few = await idle(2);
  const perGroupKiB =
    ((many.rss.reduce((a, b) => a + b) - few.rss.reduce((a, b) => a + b)) / 3 / (groups - 2)) * 1024;
  console.log(
    `${groups} groups: every leader agreed ${many.agreedMs === null ? 'NOT within 120 s' : `${(many.agreedMs / 1000).toFixed(1)} s after launch`}; ` +
      `idle CPU per member ${many.cpu.map((t) => `${t / 10} %`).join(', ')} of a core (2 groups: ${few.cpu.map((t) => `${t / 10} %`).join(', ')}); ` +
      `RSS ${many.rss.map((m) => m.toFixed(0)).join(', ')} MiB (2 groups: ${few.rss.map((m) => m.toFixed(0)).join(', ')}): ~${perGroupKiB.toFixed(0)} KiB per group`,
  );
}

function loadgen(groups: number, clients: number): { ops: number; p50: number; p99: number } {
  const out = execFileSync(
    process.execPath,
    [
      LOADGEN,
      '--spawn',
      '3',
      '--groups',
      String(groups),
      '--duration',
      '15s',
      '--num-clients',
      String(clients),
      '--value-size',
      '256',
      '--keys',
      '10000',
      '--quiet',
    ],
    { encoding: 'utf8' },
  );
  const ops = Number(/throughput\s+(\d+)/.exec(out)?.[1]);
  const lat = /p50 ([\d.]+).*p99 ([\d.]+)/.exec(out);
  return { ops, p50: Number(lat?.[1]), p99: Number(lat?.[2]) };
}

function throughput(groups: number, clients: number, reps: number): void {
  const many: number[] = [];
  const one: number[] = [];
  for (let r = 0; r < reps; r++) {
    for (const g of [1, groups]) {
      const x = loadgen(g, clients);
      (g === 1 ? one : many).push(x.ops);
      console.log(`  ${g} group${g > 1 ? 's' : ''}: ${x.ops} puts/s, p50 ${x.p50} ms, p99 ${x.p99} ms`);
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(
    `${clients} clients: ${groups} groups ${med(many)} puts/s against 1 group ${med(one)} (median): ${(med(many) / med(one)).toFixed(2)}x`,
  );
}

async function failover(rounds: number): Promise<void> {
  const G = 8;
  const c = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs: ['--groups', String(G)] });
  const keys = Array.from({ length: 64 }, (_, i) => `f${i}`);
  const acks: number[][] = Array.from({ length: G }, () => []);
  const client = new QuorateClient({ endpoints: c.endpoints });
  let stop = false;
  let errors = 0;
  const writers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = w; !stop; i++) {
      const k = keys[i % keys.length]!;
      try {
        await client.put(k, String(i));
        acks[groupOfKey(k, G)]!.push(performance.now());
      } catch {
        errors++;
      }
    }
  });
  const led: number[] = [];
  const others: number[] = [];
  try {
    await c.waitForLeader(20_000);
    await sleep(5000);
    for (let round = 0; round < rounds; round++) {
      const h = await health(c.endpoints[0]!);
      const byMember = new Map<string, number[]>();
      for (const g of h?.groups ?? [])
        if (g.leaderId) byMember.set(g.leaderId, [...(byMember.get(g.leaderId) ?? []), g.group]);
      const victim = c.nodes.find((n) => (byMember.get(n.id)?.length ?? 0) > 0)!;
      const its = byMember.get(victim.id)!;
      const t = performance.now();
      c.kill(victim);
      await sleep(4000);
      for (let g = 0; g < G; g++)
        (its.includes(g) ? led : others).push((acks[g]!.find((a) => a > t) ?? Infinity) - t);
      console.log(`  round ${round + 1}: killed ${victim.id}, which led groups ${its.join(', ')}`);
      await c.restart(victim);
      await sleep(5000);
    }
  } finally {
    stop = true;
    await Promise.all(writers);
    client.close();
    await c.stop();
  }
  const q = (a: number[], p: number) =>
    [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;
  console.log(
    `groups the killed member led: n=${led.length}, gap to the next acknowledged write p50 ${q(led, 0.5).toFixed(0)} ms, max ${Math.max(...led).toFixed(0)} ms`,
  );
  console.log(
    `other groups: n=${others.length}, p50 ${q(others, 0.5).toFixed(0)} ms, max ${Math.max(...others).toFixed(0)} ms; errors surfaced to callers: ${errors}`,
  );
}

const [mode = 'scale', a, b, c] = process.argv.slice(2).filter((x) => x !== '--');
if (mode === 'scale') await scale(Number(a ?? 1000));
else if (mode === 'throughput') throughput(Number(a ?? 16), Number(b ?? 256), Number(c ?? 2));
else if (mode === 'failover') await failover(Number(a ?? 6));
else {
  console.error(
    'usage: bench:sharding -- scale [groups] | throughput [groups] [clients] [reps] | failover [rounds]',
  );
  process.exit(2);
}
