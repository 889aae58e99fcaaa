/**
 * `pnpm bench` for @quorate/raft: core throughput beside etcd's raft core
 * (shared/anchors/etcdraft-bench) measured alternately in the same run when Go and
 * Debian's etcd sources are installed. Election timing is `@quorate/sim`'s benchmark.
 *
 *   pnpm --filter @quorate/raft bench [-- --reps 3 --duration 3 --bs 1,16,64,256]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runRuntime } from './runtime.js';
import { runThroughput } from './throughput.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const { values } = parseArgs({
  args: argv,
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    bs: { type: 'string', default: '1,16,64,256' },
    'no-etcd': { type: 'boolean', default: false },
  },
});
const reps = Number(values.reps);
const durationS = Number(values.duration);
const bs = values.bs!.split(',').map(Number);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const fmt = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(0)}k` : x.toFixed(0));

// ---------------------------------------------------------------- throughput
const anchorDir = resolve(import.meta.dirname, '../../../../shared/anchors/etcdraft-bench');
function buildAnchor(): string | null {
  if (values['no-etcd']) return null;
  const hasGo = spawnSync('sh', ['-c', 'command -v go'], { stdio: 'ignore' }).status === 0;
  if (!hasGo || !existsSync('/usr/share/gocode/src/go.etcd.io/etcd/raft') || !existsSync(anchorDir)) {
    console.log(
      '\n(etcd anchor skipped: needs `apt-get install -y golang-go golang-etcd-server-dev` and ../shared/anchors)',
    );
    return null;
  }
  const dir = join(tmpdir(), 'quorate-anchors');
  mkdirSync(join(dir, 'gopath'), { recursive: true });
  const bin = join(dir, 'etcdraft-bench');
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: anchorDir,
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOFLAGS: '',
      GOPATH: `${join(dir, 'gopath')}:/usr/share/gocode`,
    },
    stdio: 'inherit',
  });
  return bin;
}

function runEtcd(bin: string, b: number, mode: 'single' | 'batch'): number {
  const out = execFileSync(
    bin,
    ['-b', String(b), '-propmode', mode, '-warmup', '1s', '-duration', `${durationS}s`],
    {
      encoding: 'utf8',
    },
  );
  const m = /ents\/s=(\d+)/.exec(out);
  if (!m) throw new Error(`unexpected etcdraft-bench output: ${out}`);
  return Number(m[1]);
}

console.log(
  `\n## Core throughput: 3 nodes in one loop, in-memory storage, 256-byte entries (median of ${reps}, ${durationS} s each)\n`,
);
const etcd = buildAnchor();
console.log(
  etcd
    ? '| B | quorate entries/s | MB/s | CPU cores | heap MiB | etcd single entries/s | etcd batch entries/s | quorate / etcd single | quorate / etcd batch |'
    : '| B | quorate entries/s | MB/s | CPU cores | heap MiB |',
);
console.log(etcd ? '|---|---|---|---|---|---|---|---|---|' : '|---|---|---|---|---|');
for (const b of bs) {
  const ours: ReturnType<typeof runThroughput>[] = [];
  const single: number[] = [];
  const batch: number[] = [];
  const rSingle: number[] = [];
  const rBatch: number[] = [];
  for (let i = 0; i < reps; i++) {
    // Alternate, so that drift on this shared machine hits both sides alike.
    const r = runThroughput(b, 1000, durationS * 1000);
    ours.push(r);
    if (etcd) {
      const s = runEtcd(etcd, b, 'single');
      const t = runEtcd(etcd, b, 'batch');
      single.push(s);
      batch.push(t);
      rSingle.push(r.entriesPerSec / s);
      rBatch.push(r.entriesPerSec / t);
    }
  }
  const eps = median(ours.map((r) => r.entriesPerSec));
  const base = `| ${b} | ${fmt(eps)} | ${median(ours.map((r) => r.mbPerSec)).toFixed(1)} | ${median(ours.map((r) => r.cpuCores)).toFixed(2)} | ${median(ours.map((r) => r.heapMiB)).toFixed(0)} |`;
  console.log(
    etcd
      ? `${base} ${fmt(median(single))} | ${fmt(median(batch))} | ${median(rSingle).toFixed(2)} | ${median(rBatch).toFixed(2)} |`
      : base,
  );
}
console.log(
  '\nquorate proposes B entries per iteration with B propose() calls; etcd "single" makes B Propose calls, "batch" one Step with B entries.',
);

// ---------------------------------------------------------------- runtime
console.log(
  `\n## Runtime throughput: 3 RaftNodes in one process, in-memory transport and storage, 256-byte proposals (median of ${reps}, ${durationS} s each)\n`,
);
console.log('| proposals in flight | proposals/s | CPU cores | CPU µs per proposal |');
console.log('|---|---|---|---|');
for (const c of [1, 16, 256]) {
  const rs: Awaited<ReturnType<typeof runRuntime>>[] = [];
  for (let i = 0; i < reps; i++) rs.push(await runRuntime(c, durationS * 1000));
  console.log(
    `| ${c} | ${fmt(median(rs.map((r) => r.opsPerSec)))} | ${median(rs.map((r) => r.cpuCores)).toFixed(2)} | ${median(rs.map((r) => r.cpuMicrosPerOp)).toFixed(1)} |`,
  );
}
