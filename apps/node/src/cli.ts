/**
 * `quorate`: the reference node.
 *
 *   quorate start [settings]                run a node (settings: see @quorate/config; --print-config)
 *   quorate start --join <url> [settings]   a new, empty node: ask the cluster of <url> to add it
 *   quorate status --server <url>           the cluster as one member sees it
 *   quorate members list|add|promote|remove --server <url> ...
 *   quorate kv get|put|del|list|watch, lease acquire|renew|release|get, leader move,
 *   quorate partitions create|list|show|move,
 *   quorate endpoint health|status  --endpoints <url,...> [--json]   (see cli-client.ts)
 *   quorate snapshot save <file> --endpoints <url,...>        back the replicated state up
 *   quorate snapshot restore <file> --data-dir <dir> --node-id <id> --members <...>
 */

import { readFileSync } from 'node:fs';
import { configFields, expandMembers, loadConfigOrExit } from '@quorate/config';
import { Command } from 'commander';
import { BackupError, restoreBackup, saveBackup } from './backup.js';
import { CliExit, registerClientCommands, tlsOptions } from './cli-client.js';
import { call, type HttpTls } from './http-client.js';
import { joinCluster } from './join.js';
import { closeLog, createLogger } from './logging.js';
import { NodeStartError } from './plugs.js';
import { runNode } from './run.js';
import { stopOnSignals } from './shutdown.js';

const program = new Command('quorate')
  .description('quorate: a replicated key-value and lease service on Raft')
  .showHelpAfterError();

program
  .command('start')
  .description(
    'run a node; settings come from --config <file>, QUORATE_* variables and flags (see @quorate/config), flags winning',
  )
  .allowUnknownOption(true)
  .helpOption(false)
  .argument('[settings...]')
  .action(async (_args: string[], _o: unknown, cmd: Command) => {
    const argv = cmd.args.filter((a) => a !== '--');
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(startHelp());
      return;
    }
    // The launcher's nodes: stop when the launcher, which holds the other end of stdin, is gone.
    const withStdin = argv.indexOf('--stop-with-stdin');
    if (withStdin >= 0) argv.splice(withStdin, 1);
    const joinAt = argv.indexOf('--join');
    let join: string | null = null;
    if (joinAt >= 0) {
      join = argv[joinAt + 1] ?? null;
      argv.splice(joinAt, 2);
      if (!join || !/^https?:\/\//.test(join)) {
        process.stderr.write(
          'quorate: --join needs the client URL of a member, e.g. --join http://127.0.0.1:8081\n',
        );
        process.exit(2);
      }
    }
    const { config } = await loadConfigOrExit({ argv, env: process.env });
    const log = createLogger(config);
    let running: Awaited<ReturnType<typeof runNode>>;
    try {
      running = await runNode(config, { join: join !== null, log });
    } catch (err) {
      const e = err as Error & { code?: string; path?: string };
      log.fatal({ code: e.code, path: e.path }, e.message);
      await closeLog(log);
      process.stderr.write(`quorate: ${e.message}\n`);
      process.exit(err instanceof NodeStartError || e.code ? 2 : 1);
    }
    stopOnSignals(running, { stopWithStdin: withStdin >= 0 });
    if (join) await joinCluster(join, config, running);
  });

function startHelp(): string {
  const lines = configFields().map((f) => `  ${f.flag.padEnd(38)} ${f.env.padEnd(40)} ${f.description}`);
  return `Usage: quorate start [--config <file.yaml>] [--join <member url>] [--print-config]
                     [--stop-with-stdin] [settings]

--stop-with-stdin stops the node (as SIGTERM does) when its standard input ends: a parent
that gives it a pipe takes it along however the parent dies. On SIGTERM or SIGINT a node
exits within 5 s: status 0 after a clean stop, 1 when it had to force its way out; a
second signal exits at once.

Every setting can come from the YAML file, an environment variable or a flag; a flag
wins over the environment, which wins over the file. A single node needs none.

${lines.join('\n')}
`;
}

class AdminError extends Error {}

/** TLS material for https:// members, from --cacert/--cert/--key (set before each command runs). */
let adminTls: HttpTls | undefined;

async function admin(server: string, method: string, path: string, token?: string, body?: unknown) {
  let r: { status: number; text: string };
  try {
    r = await call(`${server.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      timeoutMs: 10_000,
      ...(adminTls ? { tls: adminTls } : {}),
    });
  } catch (err) {
    throw new AdminError(`${server} did not answer (${(err as Error).message}); is the node running?`);
  }
  const text = r.text;
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  if (r.status >= 400) {
    const e = (parsed as { error?: { code?: string; message?: string } }).error;
    throw new AdminError(
      `${method} ${path} on ${server}: ${r.status} ${e?.code ?? ''} ${e?.message ?? text}`,
    );
  }
  return parsed;
}

async function leaderUrl(server: string, token?: string): Promise<string> {
  const h = (await admin(server, 'GET', '/health', token)) as {
    leaderAddress: string | null;
    isLeader: boolean;
  };
  if (h.isLeader) return server;
  if (!h.leaderAddress) throw new AdminError('no leader is known right now; retry in a moment');
  return h.leaderAddress;
}

interface ServerOpts {
  server?: string;
  endpoints?: string;
  token?: string;
}
/** The member to talk to: --server, or the first of --endpoints. */
function srv(o: ServerOpts): string {
  const s = o.server ?? o.endpoints?.split(',').find(Boolean);
  if (!s) throw new CliExit(2, 'give --server <url> (or --endpoints <url,...>): the client URL of a member');
  return s;
}
const withServer = (c: Command) =>
  tlsOptions(
    c
      .option('--server <url>', 'client URL of any member, e.g. http://127.0.0.1:8081')
      .option('--endpoints <urls>', 'client URLs of members (the first is used); alias of --server')
      .option(
        '--token <token>',
        'bearer token, when the cluster requires one',
        process.env.QUORATE_HTTP_TOKEN,
      ),
  );

withServer(program.command('status').description('print the cluster as one member sees it')).action(
  async (o: ServerOpts) => {
    console.log(JSON.stringify(await admin(srv(o), 'GET', '/cluster/status', o.token), null, 2));
  },
);

const members = program.command('members').description('list or change the membership, one member at a time');
withServer(members.command('list').description('every member: id, role, addresses')).action(
  async (o: ServerOpts) => {
    const r = (await admin(srv(o), 'GET', '/admin/members', o.token)) as {
      members: {
        id: string;
        role: string;
        peerAddress: string;
        clientAddress: string;
        protocolAddress?: string | null;
      }[];
    };
    for (const m of r.members)
      console.log(`${m.id}\t${m.role}\t${m.peerAddress}\t${m.clientAddress}\t${m.protocolAddress ?? '-'}`);
  },
);
withServer(members.command('add').description('add a learner; promote it once it has caught up'))
  .requiredOption('--id <id>', 'the new member id')
  .requiredOption('--peer-address <host:port>', 'where its Raft transport listens')
  .requiredOption('--client-address <url>', 'its HTTP API')
  .option('--protocol-address <url>', 'its client protocol, e.g. quorate://10.0.0.4:9081')
  .action(
    async (
      o: ServerOpts & { id: string; peerAddress: string; clientAddress: string; protocolAddress?: string },
    ) => {
      const body = {
        id: o.id,
        peerAddress: o.peerAddress,
        clientAddress: o.clientAddress,
        ...(o.protocolAddress ? { protocolAddress: o.protocolAddress } : {}),
      };
      await admin(await leaderUrl(srv(o), o.token), 'POST', '/admin/members', o.token, body);
      console.log(`${o.id} added as a learner`);
    },
  );
withServer(members.command('promote').description('make a caught-up learner a voter'))
  .requiredOption('--id <id>', 'the learner id')
  .option('--force', 'promote it even if it is more than 1,000 entries behind')
  .action(async (o: ServerOpts & { id: string; force?: boolean }) => {
    const path = `/admin/members/${encodeURIComponent(o.id)}/promote${o.force ? '?force=true' : ''}`;
    await admin(await leaderUrl(srv(o), o.token), 'POST', path, o.token);
    console.log(`${o.id} is a voter`);
  });
withServer(members.command('remove').description('remove a member (a leader hands over first)'))
  .requiredOption('--id <id>', 'the member id')
  .action(async (o: ServerOpts & { id: string }) => {
    const path = `/admin/members/${encodeURIComponent(o.id)}`;
    await admin(await leaderUrl(srv(o), o.token), 'DELETE', path, o.token);
    console.log(`${o.id} removed`);
  });

registerClientCommands(program);

// Admin commands and backups read the TLS options before they run.
program.hook('preAction', (_cmd, action) => {
  const o = action.opts() as { cacert?: string; cert?: string; key?: string };
  if (!o.cacert && !o.cert && !o.key) return;
  adminTls = {
    ...(o.cacert ? { ca: readFileSync(o.cacert) } : {}),
    ...(o.cert ? { cert: readFileSync(o.cert) } : {}),
    ...(o.key ? { key: readFileSync(o.key) } : {}),
  };
});

const snapshot = program
  .command('snapshot')
  .description('back the replicated state up, or seed a new cluster from a backup');
tlsOptions(snapshot.command('save'))
  .description(
    'write a consistent, checksummed backup of the replicated state, from the first member that answers',
  )
  .argument('<file>', 'where to write the backup')
  .option('--endpoints <urls>', 'client URLs of members, comma-separated (--server: an alias)')
  .option('--server <url>', 'one member (alias of --endpoints)')
  .option('--token <token>', 'bearer token, when the cluster requires one', process.env.QUORATE_HTTP_TOKEN)
  .option('--json', 'print the result as JSON')
  .action(
    async (file: string, o: { endpoints?: string; server?: string; token?: string; json?: boolean }) => {
      const endpoints = (o.endpoints ?? o.server ?? '').split(',').filter(Boolean);
      let last: Error | null = null;
      for (const e of endpoints) {
        try {
          const r = await saveBackup(e, file, o.token, adminTls);
          const out = {
            file,
            endpoint: e,
            index: r.header.index,
            bytes: r.bytes,
            stateHash: r.header.stateHash,
            clusterId: r.header.clusterId,
          };
          console.log(
            o.json
              ? JSON.stringify(out)
              : `saved the state at index ${out.index} from ${e} to ${file} (${out.bytes} bytes, state hash ${out.stateHash})`,
          );
          return;
        } catch (err) {
          last = err as Error;
        }
      }
      throw new AdminError(`no member could write a backup: ${last?.message ?? 'no endpoints given'}`);
    },
  );
snapshot
  .command('restore')
  .description(
    "seed one member's empty data directory of a new cluster from a backup (run it once per member)",
  )
  .argument('<file>', 'the backup')
  .requiredOption('--data-dir <dir>', "this member's data directory (must be empty or absent)")
  .requiredOption('--node-id <id>', "this member's id")
  .requiredOption(
    '--members <members>',
    "the new cluster's members, as quorate start takes them (local:3, n1=host:port=url,...)",
  )
  .option(
    '--cluster-id <id>',
    'the new cluster id (default: a new random one, so the old and new clusters cannot mix)',
  )
  .option('--json', 'print the result as JSON')
  .action(
    async (
      file: string,
      o: { dataDir: string; nodeId: string; members: string; clusterId?: string; json?: boolean },
    ) => {
      const expanded = expandMembers(o.members);
      if (!Array.isArray(expanded))
        throw new AdminError(`--members ${o.members}: not a member list (local:3, or n1=host:port=url,...)`);
      const ids = (expanded as { id?: unknown }[]).map((m) => String(m.id));
      const r = await restoreBackup({
        file,
        dataDir: o.dataDir,
        nodeId: o.nodeId,
        members: ids,
        clusterId: o.clusterId,
      });
      const out = {
        dataDir: o.dataDir,
        nodeId: o.nodeId,
        index: r.header.index,
        clusterId: r.clusterId,
        stateHash: r.header.stateHash,
      };
      console.log(
        o.json
          ? JSON.stringify(out)
          : `restored the state at index ${out.index} into ${o.dataDir} for ${o.nodeId}; start every member with --cluster-id ${r.clusterId}`,
      );
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CliExit) {
    process.stderr.write(`quorate: ${err.message}\n`);
    process.exit(err.status);
  }
  if (err instanceof BackupError) {
    process.stderr.write(`quorate: ${err.code}: ${err.message}\n`);
    process.exit(2);
  }
  if (!(err instanceof AdminError)) throw err;
  process.stderr.write(`quorate: ${err.message}\n`);
  process.exit(1);
}
