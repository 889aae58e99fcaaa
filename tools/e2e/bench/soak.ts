/**
 * Steadiness under sustained load with snapshots: a 3-node cluster at its defaults (TCP,
 * fsync, default timeouts) except a snapshot every `--snapshot-entries` entries, a state of
 * `--keys` keys of 256 B written first, then `quorate-loadgen` at a fixed rate (open loop)
 * over those keys for `--duration`. Reported: leader changes (each node's
 * raft_leader_changes_total and the term before and after), snapshots taken, the event
 * loop's longest delay per node (quorate_event_loop_delay_seconds) and its warnings, the
 * nodes' RSS, the run's throughput and latency.
 *
 *   pnpm --filter @quorate/e2e bench:soak [-- --duration 10m --rate 10000 --keys 200000 --snapshot-entries 10000 --sample-every 60 --node-bin PATH --log-layout lmdb]
 *
 * `--log-layout lmdb` starts the members on stores made with the log in LMDB (format 1, as
 * every store was before the write-ahead log, and every group of a sharded node), to
 * measure what that layout's compactions cost.
 *
 * Each node's RSS and data directory size are printed every `--sample-every` seconds, so
 * memory and disk over a long run can be seen flat (or not).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { QuorateClient } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';
import { LmdbStorage } from '@quorate/storage-lmdb';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    duration: { type: 'string', default: '10m' },
    rate: { type: 'string', default: '10000' },
    keys: { type: 'string', default: '200000' },
    'snapshot-entries': { type: 'string', default: '10000' },
    /** Print each node's RSS and data size this often (0: only at the end). */
    'sample-every': { type: 'string', default: '60' },
    /** Another build's node binary, to compare builds (its own flags must match this one's). */
    'node-bin': { type: 'string' },
    /** `lmdb`: the members' stores are made with the log in LMDB (format 1) before they start. */
    'log-layout': { type: 'string', default: 'wal' },
  },
});

/** Bytes under a directory. */
function du(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? du(p) : statSync(p).size;
  }
  return total;
}

const require = createRequire(import.meta.url);
const loadgenBin = join(
  dirname(require.resolve('@quorate/loadgen/package.json')),
  'bin',
  'quorate-loadgen.js',
);
const keyName = (i: number) => `key-${String(i).padStart(7, '0')}`;

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
}
const metric = (text: string, name: string) => {
  const m = new RegExp(`^quorate_${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
};
/** The sum of a metric's series whose labels contain `filter`. */
const sum = (text: string, name: string, filter: string) => {
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^quorate_${name}\\{([^}]*)\\} ([0-9.e+]+)$`, 'gm')))
    if (m[1]!.includes(filter)) total += Number(m[2]);
  return total;
};
/** The highest bucket bound with any observation, from a Prometheus histogram. */
const longestDelay = (text: string) => {
  let last = 0;
  let prev = 0;
  for (const m of text.matchAll(/^quorate_event_loop_delay_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    const n = Number(m[2]);
    if (n > prev) last = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
    prev = n;
  }
  return last;
};
/** The loop-delay histogram's observations above 50 ms between two scrapes, per bucket. */
const slowDelays = (before: string, after: string) => {
  const buckets = (text: string) =>
    [...text.matchAll(/^quorate_event_loop_delay_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(
      (m) => [m[1]!, Number(m[2])] as const,
    );
  const b = buckets(before);
  const a = buckets(after).map(([le, n], i) => [le, n - (b[i]?.[1] ?? 0)] as const);
  const out: string[] = [];
  for (let i = 1; i < a.length; i++) {
    const lo = Number(a[i - 1]![0]);
    if (lo < 0.05) continue;
    out.push(`${lo}-${a[i]![0]} s: ${a[i]![1] - a[i - 1]![1]}`);
  }
  return out.join(', ');
};
const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
};

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-soak-'));
  if (args['log-layout'] !== 'wal' && args['log-layout'] !== 'lmdb') {
    throw new Error(`--log-layout is wal or lmdb (got ${args['log-layout']})`);
  }
  if (args['log-layout'] === 'lmdb') {
    // A store keeps the layout it was made with: make each member's now (LocalCluster names
    // its members n1..n3 and its cluster "loadgen").
    for (const id of ['n1', 'n2', 'n3']) {
      const s = await LmdbStorage.open({ dir: join(dir, id), clusterId: 'loadgen', nodeId: id, log: 'lmdb' });
      await s.close();
    }
  }
  const c = await LocalCluster.start({
    n: 3,
    transport: 'tcp',
    extraArgs: ['--raft.snapshot-entries', args['snapshot-entries'], '--log.level', 'info'],
    dataDirOf: (id) => join(dir, id),
    ...(args['node-bin'] ? { nodeBin: args['node-bin'] } : {}),
  });
  try {
    const keys = Number(args.keys);
    console.error(`writing ${keys} keys of 256 B...`);
    const client = new QuorateClient({
      // Another build may not speak the client protocol: HTTP then.
      endpoints: args['node-bin'] ? c.endpoints : c.protocolEndpoints,
      timeoutMs: 30_000,
    });
    const value = 'x'.repeat(256);
    let next = 0;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < keys) await client.put(keyName(next++), value);
      }),
    );
    await client.close();
    // The nodes' whole logs from here on (the cluster keeps only the last 50 lines): every
    // loop warning's longest stretch, and every snapshot's duration.
    const seen = c.nodes.map(() => ({
      warnings: 0,
      longestMs: 0,
      snapshots: [] as number[],
      stepDowns: [] as string[],
    }));
    c.nodes.forEach((n, i) => {
      let rest = '';
      n.proc?.stdout?.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('event loop was held')) {
            seen[i]!.warnings++;
            const m = /"longestMs":(\d+)/.exec(line);
            if (m) seen[i]!.longestMs = Math.max(seen[i]!.longestMs, Number(m[1]));
          } else if (line.includes('stepped down')) {
            seen[i]!.stepDowns.push(line);
          } else if (line.includes('snapshot taken')) {
            const m = /"ms":(\d+)/.exec(line);
            if (m) seen[i]!.snapshots.push(Number(m[1]));
          }
        }
      });
    });
    const before = await Promise.all(c.nodes.map((n) => scrape(n.clientAddress)));
    const term0 = Math.max(...before.map((t) => metric(t, 'raft_term')));
    console.error(`state written (term ${term0}); ${args.duration} at ${args.rate} puts/s...`);
    const json = join(dir, 'soak.json');
    const t0 = performance.now();
    const sample = () =>
      console.error(
        `  ${Math.round((performance.now() - t0) / 1000)} s: ${c.nodes
          .map(
            (n) =>
              `${n.id} RSS ${n.proc?.pid ? rssMb(n.proc.pid) : '?'} MB data ${Math.round(du(n.dataDir) / 2 ** 20)} MB`,
          )
          .join(', ')}`,
      );
    const every = Number(args['sample-every']);
    const sampler = every > 0 ? setInterval(sample, every * 1000) : null;
    await new Promise<void>((resolve, reject) => {
      const p = spawn(
        process.execPath,
        [
          loadgenBin,
          '--quiet',
          '--server-list',
          c.endpoints.join(','),
          '--mode',
          'put',
          '--keys',
          String(keys),
          '--value-size',
          '256',
          '--num-clients',
          '256',
          '--rate',
          args.rate,
          '--duration',
          args.duration,
          '--json',
          json,
          ...(args['node-bin'] ? ['--wire', 'http'] : []),
        ],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loadgen exited ${code}`))));
    });
    if (sampler) clearInterval(sampler);
    sample();
    const after = await Promise.all(c.nodes.map((n) => scrape(n.clientAddress)));
    const r = JSON.parse(readFileSync(json, 'utf8')) as {
      ops: number;
      throughput: number;
      errors: number;
      latencyMs: { p50: number; p99: number; max: number };
    };
    console.log(
      `\nsoak: ${args.duration} at ${args.rate} puts/s offered, ${keys} keys of 256 B, snapshot every ${args['snapshot-entries']} entries, log in ${args['log-layout']}`,
    );
    console.log(
      `  throughput ${Math.round(r.throughput)} puts/s, ${r.ops} ops, ${r.errors} errors, latency p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} max ${r.latencyMs.max} ms`,
    );
    const term1 = Math.max(...after.map((t) => metric(t, 'raft_term')));
    console.log(`  term ${term0} -> ${term1}`);
    c.nodes.forEach((n, i) => {
      const changes =
        metric(after[i]!, 'raft_leader_changes_total') - metric(before[i]!, 'raft_leader_changes_total');
      const s = seen[i]!;
      const snapMs = s.snapshots.length
        ? `${Math.min(...s.snapshots)}-${Math.max(...s.snapshots)} ms each`
        : 'none logged';
      console.log(
        `  ${n.id}${metric(before[i]!, 'raft_is_leader') === 1 ? ' (leader at the start)' : ''}${metric(after[i]!, 'raft_is_leader') === 1 ? ' (leader at the end)' : ''}: leader changes seen ${changes}, step-downs ${s.stepDowns.length}${s.stepDowns.length ? ` (${s.stepDowns.slice(0, 5).join(' | ')})` : ''}, snapshots taken ${sum(after[i]!, 'snapshots_total', 'kind="create"') - sum(before[i]!, 'snapshots_total', 'kind="create"')} (${snapMs}), longest loop delay <= ${longestDelay(after[i]!)} s, loop delays over 50 ms (${slowDelays(before[i]!, after[i]!)}), loop warnings ${s.warnings} (longest ${s.longestMs} ms), RSS ${n.proc?.pid ? rssMb(n.proc.pid) : '?'} MB`,
      );
    });
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
