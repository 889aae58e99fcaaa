/**
 * The command line of `quorate-loadgen`, parsed and validated into one options object.
 * Errors say which flag and what is wrong; the CLI prints them and exits 2.
 */
import { Command, InvalidArgumentError } from 'commander';
import { FAMILIES, type Family } from './nemesis/nemesis.js';
import type { Mode } from './workload.js';

export interface LoadgenOptions {
  serverList: string[];
  spawn: number;
  transport: 'tcp' | 'ws';
  numClients: number;
  reqsPerClient: number | undefined;
  durationMs: number | undefined;
  rate: number | undefined;
  /** How the clients talk to the cluster: the client protocol (default) or HTTP. */
  wire: 'binary' | 'http';
  mode: Mode;
  readRatio: number;
  keys: number;
  zipf: number;
  valueSize: number;
  timeoutMs: number;
  token: string | undefined;
  killLeaderEveryMs: number | undefined;
  pauseLeaderEveryMs: number | undefined;
  restartAfterMs: number;
  pauseForMs: number;
  json: string | undefined;
  html: string | undefined;
  history: string | undefined;
  check: boolean;
  maxErrorRate: number | undefined;
  seed: number;
  dataDir: string | undefined;
  quiet: boolean;
  /** With --spawn: the fault families the nemesis draws from (empty: no nemesis). */
  nemesis: Family[];
  nemesisIntervalMs: number;
  maxLeaderAfterHealMs: number;
  /** With --spawn: nodes serve reads under the leader's lease (raft.leaseReads). */
  leaseReads: boolean;
  /** With --spawn: Raft groups the cluster shards its keys over (1: one group). */
  groups: number;
}

/** "30s", "1.5m", "200ms", "10" (seconds) → milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a duration like 30s, 1.5m, 200ms`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  if (ms <= 0) throw new InvalidArgumentError('a duration must be positive');
  return ms;
}

const int =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
const num = (min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new InvalidArgumentError(`must be a number from ${min} to ${max}`);
  return n;
};

export function buildProgram(): Command {
  return new Command('quorate-loadgen')
    .description('Load, faults and a linearizability check against a quorate cluster.')
    .option(
      '--server-list <urls>',
      'comma-separated client URLs of any members, e.g. http://127.0.0.1:8081,...',
    )
    .option('--spawn <n>', 'start a local N-node cluster (temp data dirs) and stop it afterwards', int(1, 7))
    .option('--transport <kind>', 'with --spawn: tcp or ws', 'tcp')
    .option(
      '--data-dir <dir>',
      'with --spawn: where the nodes keep their data (default: a temp dir, removed after)',
    )
    .option('--num-clients <c>', 'concurrent clients, each one operation at a time', int(1, 100_000), 16)
    .option('--reqs-per-client <r>', 'operations per client (instead of --duration)', int(1))
    .option('--duration <d>', 'how long to run, e.g. 30s')
    .option(
      '--rate <ops>',
      'open loop: total operations per second (latency from each due time)',
      num(0.001, 10_000_000),
    )
    .option(
      '--wire <wire>',
      'binary (the client protocol: one multiplexed connection per member) or http',
      'binary',
    )
    .option('--mode <mode>', 'put | get | mixed | cas | lease | txn', 'put')
    .option('--read-ratio <r>', 'share of reads in mixed, cas and txn modes', num(0, 1), 0.5)
    .option('--keys <k>', 'number of distinct keys', int(1, 100_000_000), 10_000)
    .option('--zipf <s>', 'zipf exponent for key choice (0: uniform)', num(0, 10), 0)
    .option('--value-size <b>', 'bytes per value written', int(1, 64 * 1024 * 1024), 256)
    .option('--timeout <d>', 'deadline of one operation, retries included', '10s')
    .option('--token <t>', 'bearer token, when the cluster requires one')
    .option('--kill-leader-every <d>', 'with --spawn: SIGKILL the leader this often')
    .option('--pause-leader-every <d>', 'with --spawn: SIGSTOP the leader this often')
    .option('--restart-after <d>', 'restart a killed node after this long', '2s')
    .option('--pause-for <d>', 'keep a paused leader stopped this long', '1500ms')
    .option('--json <file>', 'write the report as JSON')
    .option('--html <file>', 'write a self-contained HTML report')
    .option('--history <file>', 'record every operation as JSON Lines (Jepsen-style)')
    .option('--check', 'after the run: check linearizability and lost writes; exit 1 if either fails', false)
    .option('--max-error-rate <r>', 'exit 1 if the error rate is above this (0..1)', num(0, 1))
    .option('--seed <n>', 'seed of the workload and of the nemesis', int(0), 1)
    .option(
      '--nemesis <families>',
      `with --spawn and --duration: inject faults drawn from these families, comma-separated, or "all" (${FAMILIES.join(', ')})`,
    )
    .option(
      '--lease-reads',
      'with --spawn: the nodes serve linearizable reads under the leader lease (raft.leaseReads); the clock nemesis then keeps rates within the drift bound',
      false,
    )
    .option(
      '--groups <n>',
      'with --spawn: shard the key space over this many Raft groups (cluster option groups; leaders spread over the members)',
      int(1, 4096),
      1,
    )
    .option('--nemesis-interval <d>', 'mean time between one fault healing and the next', '3s')
    .option(
      '--max-leader-after-heal <d>',
      'a heal not followed by one leader all members agree on within this fails the run',
      '2s',
    )
    .option('--quiet', 'no progress output', false);
}

export function resolveOptions(o: Record<string, unknown>): LoadgenOptions {
  const problems: string[] = [];
  const serverList =
    typeof o.serverList === 'string'
      ? o.serverList
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  const spawn = (o.spawn as number | undefined) ?? 0;
  if (serverList.length === 0 && spawn === 0) problems.push('give --server-list <urls> or --spawn <n>');
  if (serverList.length > 0 && spawn > 0) problems.push('give either --server-list or --spawn, not both');
  for (const u of serverList) {
    try {
      new URL(u);
    } catch {
      problems.push(`--server-list: "${u}" is not a URL like http://127.0.0.1:8081`);
    }
  }
  const transport = o.transport as string;
  if (transport !== 'tcp' && transport !== 'ws') problems.push('--transport must be tcp or ws');
  const wire = o.wire as string;
  if (wire !== 'binary' && wire !== 'http') problems.push('--wire must be binary or http');
  for (const u of serverList)
    if (/^quorates?:/.test(u))
      problems.push(
        `--server-list: "${u}": give the members' HTTP addresses (http://host:port); with --wire binary their client-protocol addresses are asked from each member`,
      );
  const mode = o.mode as string;
  if (!['put', 'get', 'mixed', 'cas', 'lease', 'txn'].includes(mode))
    problems.push('--mode must be put, get, mixed, cas, lease or txn');
  if (mode === 'txn' && (o.keys as number) < 2)
    problems.push('--mode txn needs --keys 2 or more (a transaction moves values between two keys)');
  const dur = (flag: string, v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    try {
      return parseDuration(String(v));
    } catch (err) {
      problems.push(`${flag}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const durationMs = dur('--duration', o.duration);
  const reqsPerClient = o.reqsPerClient as number | undefined;
  if (durationMs === undefined && reqsPerClient === undefined)
    problems.push('give --duration <d> or --reqs-per-client <r>');
  const killLeaderEveryMs = dur('--kill-leader-every', o.killLeaderEvery);
  const pauseLeaderEveryMs = dur('--pause-leader-every', o.pauseLeaderEvery);
  if ((killLeaderEveryMs || pauseLeaderEveryMs) && spawn === 0) {
    problems.push(
      '--kill-leader-every and --pause-leader-every need --spawn (the tool must own the processes)',
    );
  }
  let nemesis: Family[] = [];
  if (typeof o.nemesis === 'string') {
    const names = o.nemesis
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    nemesis = names.includes('all') ? [...FAMILIES] : (names as Family[]);
    for (const n of names)
      if (n !== 'all' && !(FAMILIES as readonly string[]).includes(n))
        problems.push(`--nemesis: unknown fault family "${n}" (known: ${FAMILIES.join(', ')}, all)`);
    if (nemesis.length === 0) problems.push('--nemesis: name at least one fault family');
    if (spawn === 0)
      problems.push('--nemesis needs --spawn (the tool must own the processes and their network)');
    if (durationMs === undefined) problems.push('--nemesis needs --duration (faults are drawn over time)');
    else if (durationMs < 15_000)
      problems.push('--nemesis needs --duration of 15s or more (a fault, its heal and the writes after it)');
  }
  if (o.leaseReads && spawn === 0)
    problems.push('--lease-reads needs --spawn (it configures the nodes this tool starts)');
  if ((o.groups as number) > 1 && spawn === 0)
    problems.push('--groups needs --spawn (it configures the nodes this tool starts)');
  if ((o.groups as number) > 1 && o.leaseReads)
    problems.push('--groups and --lease-reads do not go together (idle groups stop heartbeating)');
  if ((o.groups as number) > 1 && transport !== 'tcp')
    problems.push('--groups needs --transport tcp (groups share the TCP transport)');
  if (problems.length > 0) throw new LoadgenUsageError(problems);
  return {
    serverList,
    spawn,
    transport: transport as 'tcp' | 'ws',
    numClients: o.numClients as number,
    reqsPerClient,
    durationMs,
    rate: o.rate as number | undefined,
    wire: wire as 'binary' | 'http',
    mode: mode as Mode,
    readRatio: o.readRatio as number,
    keys: o.keys as number,
    zipf: o.zipf as number,
    valueSize: o.valueSize as number,
    timeoutMs: dur('--timeout', o.timeout) ?? 10_000,
    token: o.token as string | undefined,
    killLeaderEveryMs,
    pauseLeaderEveryMs,
    restartAfterMs: dur('--restart-after', o.restartAfter) ?? 2000,
    pauseForMs: dur('--pause-for', o.pauseFor) ?? 1500,
    json: o.json as string | undefined,
    html: o.html as string | undefined,
    history: o.history as string | undefined,
    check: Boolean(o.check),
    maxErrorRate: o.maxErrorRate as number | undefined,
    seed: o.seed as number,
    dataDir: o.dataDir as string | undefined,
    quiet: Boolean(o.quiet),
    nemesis,
    nemesisIntervalMs: dur('--nemesis-interval', o.nemesisInterval) ?? 3000,
    maxLeaderAfterHealMs: dur('--max-leader-after-heal', o.maxLeaderAfterHeal) ?? 2000,
    leaseReads: Boolean(o.leaseReads),
    groups: o.groups as number,
  };
}

export class LoadgenUsageError extends Error {
  readonly code = 'USAGE';
  constructor(readonly problems: string[]) {
    super(`invalid options:\n  - ${problems.join('\n  - ')}`);
    this.name = 'LoadgenUsageError';
  }
}
