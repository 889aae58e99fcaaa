/**
 * The client half of the `quorate` CLI: keys, leases, partition sets, leadership and endpoints, over
 * `@quorate/client`. Every command takes `--endpoints` (client URLs, comma-separated;
 * `--server` is an alias), `--token`, and `--json` for scripts (one JSON document, or one
 * per line for `kv watch`).
 *
 * Exit status: 0 done; 1 the cluster could not answer (unavailable, timeout, unknown
 * outcome); 2 bad usage; 3 not found; 4 refused (a failed compare-and-set, a lease held
 * by someone else).
 */

import { readFileSync } from 'node:fs';
import {
  ClientError,
  type PartitionState,
  QuorateClient,
  RejectedError,
  type WatchChange,
} from '@quorate/client';
import type { Command } from 'commander';

export const EXIT = { ok: 0, unavailable: 1, usage: 2, notFound: 3, refused: 4 } as const;

interface Common {
  endpoints?: string;
  server?: string;
  token?: string;
  json?: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
}

export class CliExit extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function connect(o: Common): QuorateClient {
  const list = (o.endpoints ?? o.server ?? '').split(',').filter(Boolean);
  if (list.length === 0) throw new CliExit(EXIT.usage, 'give --endpoints <url,...> (client URLs of members)');
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f);
    } catch (err) {
      throw new CliExit(EXIT.usage, `--${what} ${f}: ${(err as Error).message}`);
    }
  };
  const tls =
    o.cacert || o.cert || o.key
      ? {
          ...(o.cacert ? { ca: read(o.cacert, 'cacert') } : {}),
          ...(o.cert ? { cert: read(o.cert, 'cert') } : {}),
          ...(o.key ? { key: read(o.key, 'key') } : {}),
        }
      : undefined;
  try {
    return new QuorateClient({
      endpoints: list,
      ...(o.token ? { token: o.token } : {}),
      ...(tls ? { tls } : {}),
    });
  } catch (err) {
    throw new CliExit(EXIT.usage, (err as Error).message);
  }
}

/** `--cacert`, `--cert`, `--key`: for members serving HTTPS, as `@quorate/client` takes them. */
export const tlsOptions = (c: Command) =>
  c
    .option('--cacert <file>', 'PEM of the CA to trust for https:// members')
    .option('--cert <file>', "PEM of this client's certificate, when members require one")
    .option('--key <file>', 'PEM of its private key');

const common = (c: Command) =>
  tlsOptions(
    c
      .option('--endpoints <urls>', 'client URLs of members, comma-separated')
      .option('--server <url>', 'alias of --endpoints')
      .option(
        '--token <token>',
        'bearer token, when the cluster requires one',
        process.env.QUORATE_HTTP_TOKEN,
      )
      .option('--json', 'machine-readable output'),
  );

/** Run a command with a client; errors become exit statuses and one line on stderr. */
function run<A extends unknown[]>(fn: (client: QuorateClient, ...args: A) => Promise<void>) {
  return async (...args: A) => {
    const o = args[args.length - 2] as Common;
    const client = connect(o);
    try {
      await fn(client, ...args);
    } catch (err) {
      if (err instanceof CliExit) throw err;
      // (The message starts with the server's code already.)
      if (err instanceof RejectedError) throw new CliExit(EXIT.refused, err.message);
      if (err instanceof ClientError && err.code === 'INVALID_ARGUMENT')
        throw new CliExit(EXIT.usage, err.message);
      if (err instanceof ClientError) throw new CliExit(EXIT.unavailable, `${err.code}: ${err.message}`);
      throw err;
    } finally {
      await client.close();
    }
  };
}

const print = (o: Common, json: unknown, text: string) => console.log(o.json ? JSON.stringify(json) : text);

function changeJson(index: number, c: WatchChange): Record<string, unknown> {
  if (c.type === 'put') return { index, type: 'put', key: c.key, value: c.text(), version: c.version };
  if (c.type === 'delete') return { index, type: 'delete', key: c.key };
  if (c.type === 'partition') return { index, ...c };
  return { index, type: 'lease', name: c.name, holder: c.holder, token: c.token };
}

function changeText(index: number, c: WatchChange): string {
  if (c.type === 'put') return `${index}\tput\t${c.key}\t${c.text()}`;
  if (c.type === 'delete') return `${index}\tdelete\t${c.key}`;
  if (c.type === 'partition')
    return `${index}\tpartition\t${c.set}/${c.partition}\t${c.leader ?? '-'}\tleader epoch ${c.leaderEpoch}\tepoch ${c.epoch}`;
  return `${index}\tlease\t${c.name}\t${c.holder ?? '-'}`;
}

/** A non-negative integer option or argument, else a usage error. */
function count(v: string, what: string, min = 0): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min)
    throw new CliExit(EXIT.usage, `${what} must be an integer >= ${min} (got ${v})`);
  return n;
}

const partitionLine = (p: PartitionState) =>
  `${p.partition}\t${p.leader ?? '-'}\tleader epoch ${p.leaderEpoch}\tepoch ${p.epoch}\treplicas ${p.replicas.join(',')}\teligible ${p.eligible.join(',')}`;

export function registerClientCommands(program: Command): void {
  const kv = program.command('kv').description('read and write keys');
  common(kv.command('get').description('print a key (linearizable; --stale: from any member as it stands)'))
    .argument('<key>')
    .option('--stale', 'serve from whichever member answers, without a read barrier')
    .action(
      run(async (c, key: string, o: Common & { stale?: boolean }) => {
        const v = await c.get(key, { stale: o.stale ?? false });
        if (!v) throw new CliExit(EXIT.notFound, `${key}: not found`);
        print(o, { key, value: v.text(), version: v.version, modIndex: v.modIndex }, v.text());
      }),
    );
  common(kv.command('put').description('write a key (exactly once, however often retried)'))
    .argument('<key>')
    .argument('<value>')
    .option('--if-version <n>', 'only if the key is at this version (0: absent)')
    .option('--if-value <v>', 'only if the key holds this value')
    .action(
      run(async (c, key: string, value: string, o: Common & { ifVersion?: string; ifValue?: string }) => {
        const opts = {
          ...(o.ifVersion !== undefined ? { ifVersion: Number(o.ifVersion) } : {}),
          ...(o.ifValue !== undefined ? { expect: o.ifValue } : {}),
        };
        const r = await c.put(key, value, opts);
        print(
          o,
          { key, version: r.version, index: r.index },
          `${key}: version ${r.version} at index ${r.index}`,
        );
      }),
    );
  common(kv.command('del').description('delete a key'))
    .argument('<key>')
    .option('--if-version <n>', 'only if the key is at this version')
    .action(
      run(async (c, key: string, o: Common & { ifVersion?: string }) => {
        const r = await c.delete(key, o.ifVersion !== undefined ? { ifVersion: Number(o.ifVersion) } : {});
        print(
          o,
          { key, deleted: r.deleted, index: r.index },
          r.deleted ? `${key}: deleted` : `${key}: was absent`,
        );
      }),
    );
  common(kv.command('list').description('keys under a prefix, in order'))
    .argument('[prefix]', 'key prefix', '')
    .option('--limit <n>', 'at most this many', '1000')
    .action(
      run(async (c, prefix: string, o: Common & { limit: string }) => {
        const r = await c.list(prefix, { limit: Number(o.limit) });
        const items = r.items.map((i) => ({ key: i.key, version: i.version, modIndex: i.modIndex }));
        print(
          o,
          { items, more: r.more },
          items.map((i) => `${i.key}\tv${i.version}\t@${i.modIndex}`).join('\n'),
        );
      }),
    );
  common(
    kv
      .command('txn')
      .description('a transaction: {"compare":[...],"success":[...],"failure":[...]} (see docs/http-api.md)'),
  )
    .argument('<json>', 'the transaction as JSON, or - to read it from standard input')
    .action(
      run(async (c, raw: string, o: Common) => {
        const text = raw === '-' ? readFileSync(0, 'utf8') : raw;
        let t: unknown;
        try {
          t = JSON.parse(text);
        } catch (err) {
          throw new CliExit(EXIT.usage, `the transaction is not JSON: ${(err as Error).message}`);
        }
        const r = await c.txn(t as Parameters<QuorateClient['txn']>[0]);
        const lines = r.results.map((x) =>
          x.op === 'get'
            ? `get\t${x.key}\t${x.value ?? '(absent)'}`
            : x.op === 'put'
              ? `put\t${x.key}\tv${x.version}`
              : `delete\t${x.key}\t${x.deleted}`,
        );
        print(o, r, [`${r.succeeded ? 'succeeded' : 'failed'} at index ${r.index}`, ...lines].join('\n'));
        if (!r.succeeded) process.exitCode = EXIT.refused;
      }),
    );
  common(kv.command('watch').description('print changes as they are committed, until interrupted'))
    .argument('[prefix]', 'key prefix', '')
    .option('--from-index <n>', 'start at this log index (default: the next change)')
    .option('--lease <name>', 'lease holder changes for lease names under this prefix instead of keys')
    .option('--count <n>', 'stop after this many changes')
    .action(
      run(async (c, prefix: string, o: Common & { fromIndex?: string; lease?: string; count?: string }) => {
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        process.once('SIGTERM', () => stop.abort());
        let left = o.count !== undefined ? Number(o.count) : Number.POSITIVE_INFINITY;
        const opts = {
          ...(o.lease !== undefined ? { lease: o.lease } : { prefix }),
          ...(o.fromIndex !== undefined ? { fromIndex: Number(o.fromIndex) } : {}),
          signal: stop.signal,
        };
        for await (const b of c.watch(opts)) {
          for (const ch of b.changes) {
            print(o, changeJson(b.index, ch), changeText(b.index, ch));
            if (--left <= 0) return;
          }
        }
      }),
    );

  const lease = program.command('lease').description('named leases with fencing tokens');
  common(lease.command('acquire').description('take a lease (or renew your own)'))
    .argument('<name>')
    .requiredOption('--holder <id>', 'who holds it')
    .requiredOption('--ttl-ms <n>', 'time to live')
    .action(
      run(async (c, name: string, o: Common & { holder: string; ttlMs: string }) => {
        const l = await c.acquireLease(name, o.holder, Number(o.ttlMs));
        print(o, l, `${name}: held by ${l.holder}, token ${l.token}, ttl ${l.ttlMs} ms`);
      }),
    );
  common(lease.command('renew').description('renew a lease you hold'))
    .argument('<name>')
    .requiredOption('--holder <id>')
    .requiredOption('--lease-token <n>', 'the fencing token acquire returned')
    .action(
      run(async (c, name: string, o: Common & { holder: string; leaseToken: string }) => {
        const l = await c.renewLease(name, o.holder, Number(o.leaseToken));
        print(o, l, `${name}: renewed, token ${l.token}`);
      }),
    );
  common(lease.command('release').description('give a lease up'))
    .argument('<name>')
    .requiredOption('--holder <id>')
    .requiredOption('--lease-token <n>', 'the fencing token acquire returned')
    .action(
      run(async (c, name: string, o: Common & { holder: string; leaseToken: string }) => {
        const released = await c.releaseLease(name, o.holder, Number(o.leaseToken));
        print(o, { name, released }, released ? `${name}: released` : `${name}: was not held by ${o.holder}`);
      }),
    );
  common(lease.command('get').description('who holds a lease'))
    .argument('<name>')
    .action(
      run(async (c, name: string, o: Common) => {
        const l = await c.getLease(name);
        if (!l) throw new CliExit(EXIT.notFound, `${name}: nobody holds it`);
        print(o, l, `${name}: held by ${l.holder}, token ${l.token}, ${l.remainingMs ?? '?'} ms left`);
      }),
    );

  const partitions = program
    .command('partitions')
    .description('partition sets: who leads each partition, at which epoch (docs/partitions.md)');
  common(partitions.command('create').description('create a partition set, replicas assigned round robin'))
    .argument('<name>')
    .requiredOption('--members <ids>', 'the members, comma-separated')
    .requiredOption('--partitions <n>', 'how many partitions')
    .option('--replication-factor <n>', 'replicas per partition', '1')
    .action(
      run(
        async (
          c,
          name: string,
          o: Common & { members: string; partitions: string; replicationFactor: string },
        ) => {
          const members = o.members.split(',').filter(Boolean);
          const n = count(o.partitions, '--partitions', 1);
          const rf = count(o.replicationFactor, '--replication-factor', 1);
          const s = await c.createPartitionSet({ name, members, partitions: n, replicationFactor: rf });
          print(
            o,
            s,
            `${name}: created, ${n} partitions over ${members.join(',')}, replication factor ${rf}`,
          );
        },
      ),
    );
  common(partitions.command('list').description('every partition set')).action(
    run(async (c, o: Common) => {
      const sets = await c.listPartitionSets();
      print(
        o,
        { sets },
        sets
          .map(
            (s) => `${s.name}\t${s.partitions} partitions\t${s.members} members\t${s.leaderless} leaderless`,
          )
          .join('\n'),
      );
    }),
  );
  common(
    partitions.command('show').description("a set's members and each partition's leader, epoch and replicas"),
  )
    .argument('<name>')
    .action(
      run(async (c, name: string, o: Common) => {
        const s = await c.getPartitionSet(name);
        if (!s) throw new CliExit(EXIT.notFound, `${name}: no such partition set`);
        const members = s.members.map(
          (m) => `${m.id}${m.session === null ? ' (not live)' : ` (session ${m.session})`}`,
        );
        print(
          o,
          s,
          [`${s.name}: members ${members.join(', ')}`, ...s.partitions.map(partitionLine)].join('\n'),
        );
      }),
    );
  common(partitions.command('move').description('hand a partition to another eligible, live replica'))
    .argument('<name>')
    .argument('<partition>')
    .requiredOption('--to <member>', 'the member to lead it')
    .option('--epoch <n>', 'only if the partition is still at this epoch')
    .action(
      run(async (c, name: string, partition: string, o: Common & { to: string; epoch?: string }) => {
        const epoch = o.epoch !== undefined ? count(o.epoch, '--epoch') : undefined;
        const p = await c.movePartition(name, count(partition, '<partition>'), o.to, epoch);
        print(
          o,
          p,
          `${name}/${p.partition}: led by ${p.leader ?? '-'} at leader epoch ${p.leaderEpoch} (epoch ${p.epoch})`,
        );
      }),
    );

  const leader = program.command('leader').description('leadership');
  common(leader.command('move').description('hand leadership to a member (default: the most caught-up)'))
    .option('--to <id>', 'the member to lead')
    .action(
      run(async (c, o: Common & { to?: string }) => {
        const now = await c.transferLeadership(o.to);
        print(o, { leaderId: now }, `leader: ${now ?? 'unknown'}`);
      }),
    );

  const endpoint = program.command('endpoint').description('each member, one by one');
  for (const [name, what] of [
    ['health', 'whether each member answers, and whom it follows'],
    ['status', 'role, term, commit and applied index of each member'],
  ] as const) {
    common(endpoint.command(name).description(what)).action(
      run(async (c, o: Common) => {
        const list = (o.endpoints ?? o.server ?? '').split(',').filter(Boolean);
        const rows = await Promise.all(
          list.map(async (e) => {
            try {
              const h = await c.health(e, { timeoutMs: 3000 });
              return { endpoint: e, ok: true, ...h };
            } catch (err) {
              return { endpoint: e, ok: false, error: (err as Error).message };
            }
          }),
        );
        const line = (r: Record<string, unknown>) =>
          r.ok
            ? name === 'health'
              ? `${r.endpoint}\thealthy\t${r.nodeId}\tleader ${r.leaderId ?? 'none'}`
              : `${r.endpoint}\t${r.nodeId}\t${r.state}\tterm ${r.term}\tcommit ${r.commitIndex}\tapplied ${r.appliedIndex}`
            : `${r.endpoint}\tunreachable\t${r.error}`;
        print(o, rows, rows.map(line).join('\n'));
        if (rows.some((r) => !r.ok)) throw new CliExit(EXIT.unavailable, 'some members did not answer');
      }),
    );
  }
}
