/**
 * How long the leader's process can stand still before the cluster replaces it. A 3-node
 * cluster at its defaults (TCP, fsync, default timeouts) under a light write load; the
 * leader is stopped (SIGSTOP: its event loop, timers, sockets and threads all stand still,
 * as in a long turn of its loop) for each length in `--stalls`, `--trials` times, then
 * continued (SIGCONT). A trial counts a leader change when, once things settle, another
 * member leads or the term went up.
 *
 *   pnpm --filter @quorate/e2e bench:stall [-- --stalls 40,80,100,120,150,200,300 --trials 20 --clients 16 --node-bin PATH]
 *
 * It tells which event-loop stretches on a leader cost an election with the default timeouts
 * (heartbeat 50 ms, election timeout drawn from (150, 300] ms), to set against the stretches
 * the soak (bench:soak) measures during snapshots.
 */
import { parseArgs } from 'node:util';
import { QuorateClient } from '@quorate/client';
import { LocalCluster, type SpawnedNode } from '@quorate/loadgen';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    stalls: { type: 'string', default: '40,80,100,120,150,200,300' },
    trials: { type: 'string', default: '20' },
    clients: { type: 'string', default: '16' },
    /** Another build's node binary, to compare builds (its own flags must match this one's). */
    'node-bin': { type: 'string' },
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The leader's id and term, as every live member sees it, once they agree. */
async function settled(c: LocalCluster): Promise<{ leader: SpawnedNode; term: number }> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const views = await Promise.all(
      c.nodes.map(async (n) => {
        const r = await fetch(`${n.clientAddress}/health`, { signal: AbortSignal.timeout(1000) });
        return (await r.json()) as { leaderId: string | null; term: number };
      }),
    ).catch(() => null);
    const first = views?.[0];
    if (
      views &&
      first?.leaderId &&
      views.every((v) => v.leaderId === first.leaderId && v.term === first.term)
    ) {
      const leader = c.nodes.find((n) => n.id === first.leaderId);
      if (leader) return { leader, term: first.term };
    }
    if (performance.now() > deadline) throw new Error('the members do not agree on a leader');
    await sleep(50);
  }
}

async function main() {
  const stalls = args.stalls.split(',').map(Number);
  const trials = Number(args.trials);
  const c = await LocalCluster.start({
    n: 3,
    transport: 'tcp',
    extraArgs: ['--log.level', 'warn'],
    ...(args['node-bin'] ? { nodeBin: args['node-bin'] } : {}),
  });
  let stop = false;
  const client = new QuorateClient({ endpoints: c.endpoints, timeoutMs: 30_000 });
  const writers = Array.from({ length: Number(args.clients) }, async (_, w) => {
    let i = w;
    while (!stop) await client.put(`k${i++ % 1000}`, 'v'.repeat(256)).catch(() => {});
  });
  const rows: string[] = [];
  try {
    await c.waitForLeader(20_000);
    await sleep(1000);
    console.error(`3 members, ${args.clients} writing clients; ${trials} stalls of each length`);
    for (const ms of stalls) {
      let changes = 0;
      const actual: number[] = [];
      for (let t = 0; t < trials; t++) {
        const before = await settled(c);
        // Stall at a random point of the heartbeat interval.
        await sleep(Math.random() * 50);
        const t0 = performance.now();
        c.pause(before.leader);
        const until = t0 + ms;
        while (performance.now() < until - 2) await sleep(Math.max(1, until - performance.now() - 2));
        while (performance.now() < until) {}
        c.resume(before.leader);
        actual.push(performance.now() - t0);
        await sleep(700);
        const after = await settled(c);
        if (after.leader !== before.leader || after.term !== before.term) changes++;
      }
      actual.sort((a, b) => a - b);
      const row = `| ${ms} | ${actual[0]!.toFixed(0)}–${actual.at(-1)!.toFixed(0)} | ${changes} / ${trials} |`;
      console.error(row);
      rows.push(row);
    }
  } finally {
    stop = true;
    await Promise.allSettled(writers);
    await client.close();
    await c.stop();
  }
  console.log('\n| leader stopped for (ms) | measured (ms) | leader changes |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(r);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
