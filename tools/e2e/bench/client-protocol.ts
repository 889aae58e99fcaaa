/**
 * The client protocol against HTTP, side by side: one 3-node cluster as `pnpm start` runs
 * it (TCP, LMDB with fsync, default settings, each node its own process), and the load
 * generator as users run it (its own process, `--history` on, 256-byte puts over 1,000
 * keys), for 1, 16, 64 and 256 clients, the two wires alternated in each round. Reported:
 * ops/s, the load generator's whole CPU per operation (its own report), and the leader
 * process's CPU per operation (from /proc/<pid>/stat over the run).
 *
 *   pnpm --filter @quorate/e2e bench:protocol [-- --rounds 2 --duration 8s --clients 1,16,64,256]
 *
 * Figures are medians of the rounds of one run on this (shared) machine: compare rows of
 * the same run, never against numbers recorded at another time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster } from '@quorate/loadgen';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '8s' },
    clients: { type: 'string', default: '1,16,64,256' },
  },
});

const require = createRequire(import.meta.url);
const loadgenBin = join(
  dirname(require.resolve('@quorate/loadgen/package.json')),
  'bin',
  'quorate-loadgen.js',
);
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

/** CPU time (µs) a process has used, from /proc/<pid>/stat. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

interface Row {
  ops: number;
  throughput: number;
  loadgenUs: number;
  leaderUs: number;
  p50: number;
}

function loadgen(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [loadgenBin, '--quiet', ...argv], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`loadgen exited ${code}: ${err.slice(-2000)}`)),
    );
  });
}

async function one(
  c: LocalCluster,
  dir: string,
  wire: 'binary' | 'http',
  clients: number,
  i: number,
): Promise<Row> {
  const leader = await c.waitForLeader(30_000);
  const pid = leader.proc!.pid!;
  const json = join(dir, `r${i}-${wire}-${clients}.json`);
  const cpu0 = cpuMicros(pid);
  await loadgen([
    '--server-list',
    c.endpoints.join(','),
    '--wire',
    wire,
    '--num-clients',
    String(clients),
    '--duration',
    args.duration,
    '--mode',
    'put',
    '--keys',
    '1000',
    '--value-size',
    '256',
    '--history',
    join(dir, `h-${i}.jsonl`),
    '--json',
    json,
  ]);
  const leaderCpu = cpuMicros(pid) - cpu0;
  const r = JSON.parse(readFileSync(json, 'utf8')) as {
    ops: number;
    throughput: number;
    loadgenCpuMicrosPerOp: number;
    latencyMs: { p50: number };
  };
  return {
    ops: r.ops,
    throughput: r.throughput,
    loadgenUs: r.loadgenCpuMicrosPerOp,
    leaderUs: leaderCpu / Math.max(1, r.ops),
    p50: r.latencyMs.p50,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-bench-protocol-'));
  const c = await LocalCluster.start({ n: 3, transport: 'tcp' });
  const counts = args.clients.split(',').map(Number);
  const rounds = Number(args.rounds);
  const rows = new Map<string, Row[]>();
  let i = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const clients of counts) {
        // Alternate which wire goes first, round by round.
        const order: ('binary' | 'http')[] = round % 2 === 0 ? ['binary', 'http'] : ['http', 'binary'];
        for (const wire of order) {
          const r = await one(c, dir, wire, clients, i++);
          const k = `${clients}:${wire}`;
          rows.set(k, [...(rows.get(k) ?? []), r]);
          console.error(
            `round ${round + 1} ${String(clients).padStart(3)} clients ${wire.padEnd(6)} ${Math.round(r.throughput)} ops/s  loadgen ${r.loadgenUs.toFixed(0)} µs/op  leader ${r.leaderUs.toFixed(0)} µs/op  p50 ${r.p50.toFixed(2)} ms`,
          );
        }
      }
    }
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `\nclient protocol vs HTTP: 3 nodes (TCP, fsync), 256 B puts over 1,000 keys, --history on, ${args.duration} per run, medians of ${rounds} alternated round(s)\n`,
  );
  console.log('| clients | wire | puts/s | p50 ms | load generator CPU µs/op | leader CPU µs/op |');
  console.log('|---|---|---|---|---|---|');
  for (const clients of counts) {
    for (const wire of ['binary', 'http'] as const) {
      const rs = rows.get(`${clients}:${wire}`) ?? [];
      console.log(
        `| ${clients} | ${wire} | ${Math.round(median(rs.map((r) => r.throughput)))} (${rs.map((r) => Math.round(r.throughput)).join(' · ')}) | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.loadgenUs)).toFixed(0)} | ${median(rs.map((r) => r.leaderUs)).toFixed(0)} |`,
      );
    }
    const b = median((rows.get(`${clients}:binary`) ?? []).map((r) => r.throughput));
    const h = median((rows.get(`${clients}:http`) ?? []).map((r) => r.throughput));
    console.log(`|  | binary / http | ${(b / h).toFixed(2)}× | | | |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
