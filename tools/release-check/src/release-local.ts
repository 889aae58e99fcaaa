/**
 * `pnpm release:local`: a whole release through a registry, on this machine only.
 *
 * 1. Starts Verdaccio on 127.0.0.1 (or takes `--registry URL`, which must be on loopback:
 *    this script never publishes anywhere else).
 * 2. Clones the repository's committed HEAD into a temporary directory, runs `changeset
 *    version` there (versions and CHANGELOGs come out of the pending changesets), builds,
 *    and runs `changeset publish` against the local registry.
 * 3. In fresh directories outside the repository, installs every published package by
 *    name and version from that registry, once with npm and once with pnpm; imports each
 *    one, runs `npx quorate --help` and `npx quorate-loadgen --help`, and (unless
 *    `--no-examples`) the first TypeScript example of each package's README.
 *
 * The working tree is never touched. Prints one line per step and a summary; exit status 1
 * when anything failed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../../..');

export interface ReleaseOptions {
  /** A registry to publish to instead of a fresh Verdaccio; must be on loopback. */
  registry?: string;
  /** Run each README's first TypeScript example (default true). */
  examples?: boolean;
  /** Keep the temporary directories (default false). */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface Published {
  name: string;
  version: string;
}

export interface ReleaseReport {
  registry: string;
  published: Published[];
  /** One line per check: `ok ...` or `FAIL ...`. */
  checks: string[];
  ok: boolean;
}

/** Loopback only: 127.0.0.0/8, ::1 or localhost. Anything else is refused. */
export function assertLoopback(url: string): void {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    throw new Error(`release:local: ${JSON.stringify(url)} is not a URL`);
  }
  if (!(host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host))) {
    throw new Error(
      `release:local publishes only to a registry on loopback (127.0.0.1, ::1, localhost); refusing ${url}`,
    );
  }
}

/**
 * `fetch`, tried again on a network error: this script blocks for long stretches in child
 * commands, and a kept-alive connection the registry closed meanwhile fails once.
 */
async function request(url: string, init?: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (attempt >= 3)
        throw new Error(`${init?.method ?? 'GET'} ${url}: ${(err as Error).message}`, { cause: err });
    }
  }
}

async function retry(times: number, log: (l: string) => void, fn: () => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      fn();
      return;
    } catch (err) {
      if (attempt >= times) throw err;
      log(
        `retrying after: ${(err as Error).message.split('\n').find((l) => /error|ERR/.test(l)) ?? (err as Error).message.slice(0, 200)}`,
      );
      await new Promise((r) => setTimeout(r, 2000 * attempt));
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

function sh(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 600_000,
): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_loglevel: 'error', ...env },
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`,
    );
  }
}

/** The certificate authorities for Verdaccio's HTTPS upstream: Node's extra ones, npm's, or the system bundle. */
function caEnv(dir: string): Record<string, string> {
  const fromNpm = (() => {
    try {
      const v = sh('npm', ['config', 'get', 'cafile'], dir).trim();
      return v && v !== 'null' && v !== 'undefined' ? v : '';
    } catch {
      return '';
    }
  })();
  const ca =
    process.env.NODE_EXTRA_CA_CERTS ||
    fromNpm ||
    (existsSync('/etc/ssl/certs/ca-certificates.crt') ? '/etc/ssl/certs/ca-certificates.crt' : '');
  return ca ? { NODE_EXTRA_CA_CERTS: ca } : {};
}

/** Verdaccio with its own storage, publishing allowed to a user created here, the rest proxied. */
async function startVerdaccio(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const upstream = sh('npm', ['config', 'get', 'registry'], dir).trim() || 'https://registry.npmjs.org/';
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      `storage: ${join(dir, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(dir, 'htpasswd')}`,
      '    max_users: 10',
      'uplinks:',
      '  upstream:',
      `    url: ${upstream}`,
      // On a busy machine an upstream request can fail now and then: never mark the
      // upstream offline for minutes over it (Verdaccio's default after two failures).
      '    timeout: 120s',
      '    max_fails: 1000',
      '    fail_timeout: 1s',
      'packages:',
      "  '@quorate/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    proxy: upstream',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  const bin = join(root, 'tools', 'release-check', 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  const url = `http://127.0.0.1:${port}`;
  // Its output goes to a file: this script blocks in child commands for minutes, and a
  // full pipe would stall the registry.
  const logFile = join(dir, 'verdaccio.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(
    process.execPath,
    [bin, '--config', join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`],
    {
      stdio: ['ignore', fd, fd],
      // The upstream is HTTPS: trust what npm trusts (a task runner may have dropped the
      // variable that names the machine's extra certificates).
      env: { ...process.env, ...caEnv(dir) },
    },
  );
  closeSync(fd);
  const output = () => readFileSync(logFile, 'utf8');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`verdaccio exited (${proc.exitCode}):\n${output()}`);
    try {
      const r = await fetch(`${url}/-/ping`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`verdaccio did not answer on ${url} within 60 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, proc };
}

/** A user on the registry, and the token that publishes as it. */
async function createUser(registry: string): Promise<string> {
  const name = `release-${process.pid}`;
  const r = await request(`${registry}/-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: `pw-${process.pid}-${Date.now()}`, type: 'user', roles: [] }),
  });
  const body = (await r.json()) as { token?: string; error?: string };
  if (!r.ok || !body.token)
    throw new Error(`cannot create a user on ${registry}: ${r.status} ${JSON.stringify(body)}`);
  return body.token;
}

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  bin?: Record<string, string>;
}

function publicManifests(repo: string): { dir: string; m: Manifest }[] {
  const out: { dir: string; m: Manifest }[] = [];
  for (const group of ['packages', 'apps']) {
    for (const d of readdirSync(join(repo, group))) {
      const f = join(repo, group, d, 'package.json');
      if (!existsSync(f)) continue;
      const m = JSON.parse(readFileSync(f, 'utf8')) as Manifest;
      if (!m.private) out.push({ dir: join(repo, group, d), m });
    }
  }
  return out;
}

/** The first ```ts block of a README, or null. */
export function firstTsExample(readme: string): string | null {
  const m = readme.match(/^```ts\n([\s\S]*?)^```/m);
  return m ? m[1]! : null;
}

/**
 * What a README's first example needs around it to run here, on loopback. Each entry says
 * how it is run; `null` when it cannot run on one machine as written.
 */
function exampleSetup(
  name: string,
  app: string,
): { code: (c: string) => string; before?: () => void; skip?: string } | null {
  switch (name) {
    case '@quorate/checker':
      return {
        code: (c) => c,
        before: () =>
          writeFileSync(
            join(app, 'history.jsonl'),
            [
              { process: 0, type: 'invoke', f: 'put', key: 'k', value: 'v', time: 1 },
              { process: 0, type: 'ok', f: 'put', key: 'k', value: 'v', time: 2 },
              { process: 1, type: 'invoke', f: 'get', key: 'k', value: null, time: 3 },
              { process: 1, type: 'ok', f: 'get', key: 'k', value: 'v', time: 4 },
            ]
              .map((e) => JSON.stringify(e))
              .join('\n'),
          ),
      };
    case '@quorate/storage-lmdb': {
      const dir = join(app, 'lmdb-n1');
      return { code: (c) => c.replace("'/var/lib/quorate/n1'", JSON.stringify(dir)) };
    }
    case '@quorate/config':
      return { code: (c) => c, skip: undefined };
    case '@quorate/transport-tcp':
    case '@quorate/transport-ws':
      return {
        code: (c) => c,
        skip: 'a deployment sketch for three hosts (and certificates): not runnable on one machine',
      };
    default:
      return { code: (c) => c };
  }
}

export async function releaseLocal(opts: ReleaseOptions = {}): Promise<ReleaseReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const work = mkdtempSync(join(tmpdir(), 'quorate-release-'));
  const checks: string[] = [];
  const check = (ok: boolean, line: string) => {
    checks.push(`${ok ? 'ok  ' : 'FAIL'} ${line}`);
    log(`${ok ? 'ok  ' : 'FAIL'} ${line}`);
  };
  let verdaccio: ChildProcess | null = null;
  let cluster: ChildProcess[] = [];
  try {
    let registry = opts.registry;
    if (registry) assertLoopback(registry);
    else {
      const v = await startVerdaccio(join(work, 'verdaccio'));
      verdaccio = v.proc;
      registry = v.url;
    }
    assertLoopback(registry);
    log(`registry: ${registry}`);
    const token = await createUser(registry);
    const host = new URL(registry).host;
    const npmrc = `registry=${registry}/\n//${host}/:_authToken=${token}\n`;

    // The release, from a clone of what is committed.
    const repo = join(work, 'repo');
    sh('git', ['clone', '--quiet', root, repo], work);
    writeFileSync(join(repo, '.npmrc'), npmrc);
    const env = { npm_config_registry: `${registry}/`, CI: '1' };
    sh('pnpm', ['install', '--frozen-lockfile', '--prefer-offline'], repo, env);
    const pending = readdirSync(join(repo, '.changeset')).filter(
      (f) => f.endsWith('.md') && f !== 'README.md',
    );
    log(`changesets pending: ${pending.length}`);
    sh('pnpm', ['exec', 'changeset', 'version'], repo, env);
    sh('pnpm', ['install', '--no-frozen-lockfile', '--prefer-offline'], repo, env);
    sh('pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], repo, env, 900_000);
    const pkgs = publicManifests(repo);
    for (const p of pkgs) {
      check(
        existsSync(join(p.dir, 'CHANGELOG.md')),
        `${p.m.name}@${p.m.version} has a CHANGELOG from the changesets`,
      );
    }
    sh('pnpm', ['exec', 'changeset', 'publish'], repo, env, 900_000);
    const published: Published[] = [];
    for (const p of pkgs) {
      const r = await request(`${registry}/${p.m.name.replace('/', '%2f')}`);
      const doc = r.ok ? ((await r.json()) as { versions?: Record<string, unknown> }) : {};
      const ok = Boolean(doc.versions?.[p.m.version]);
      check(ok, `published ${p.m.name}@${p.m.version}`);
      if (ok) published.push({ name: p.m.name, version: p.m.version });
    }

    // Installs by name and version, outside the repository, with npm and with pnpm.
    const specs = published.map((p) => `${p.name}@${p.version}`);
    for (const pm of ['npm', 'pnpm'] as const) {
      const app = join(work, `app-${pm}`);
      mkdirSync(app);
      // The pnpm project names the repository's pnpm, so corepack runs the one it has.
      const packageManager = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager;
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({
          name: `consumer-${pm}`,
          private: true,
          type: 'module',
          ...(pm === 'pnpm' ? { packageManager } : {}),
        }),
      );
      writeFileSync(join(app, '.npmrc'), `registry=${registry}/\n`);
      const extra = opts.examples === false ? [] : ['tsx@4.23.15'];
      // Third-party dependencies come from the public registry through Verdaccio: a
      // network hiccup there is not a release failure, so an install is tried three times.
      await retry(3, log, () => {
        if (pm === 'npm')
          sh('npm', ['install', '--no-audit', '--no-fund', ...specs, ...extra], app, env, 900_000);
        else
          sh(
            'pnpm',
            ['add', ...specs, ...extra],
            app,
            { ...env, npm_config_store_dir: join(work, 'pnpm-store') },
            900_000,
          );
      });
      for (const p of published) {
        try {
          const v = JSON.parse(
            readFileSync(join(app, 'node_modules', ...p.name.split('/'), 'package.json'), 'utf8'),
          ) as Manifest;
          sh('node', ['--input-type=module', '-e', `await import(${JSON.stringify(p.name)})`], app);
          check(
            v.version === p.version,
            `${pm}: ${p.name}@${v.version} installed from the registry and imports`,
          );
        } catch (err) {
          check(false, `${pm}: ${p.name}: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      for (const bin of ['quorate', 'quorate-loadgen']) {
        try {
          const out = sh('npx', ['--no-install', bin, '--help'], app);
          check(/Usage|Options/.test(out), `${pm}: npx ${bin} --help`);
        } catch (err) {
          check(false, `${pm}: npx ${bin} --help: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      if (opts.examples === false || pm !== 'npm') continue;
      // Each README's first example, as a user would paste it.
      for (const p of pkgs) {
        const readme = readFileSync(join(p.dir, 'README.md'), 'utf8');
        const code = firstTsExample(readme);
        if (!code) {
          check(
            true,
            `example ${p.m.name}: the README has no TypeScript example (its first block is a command)`,
          );
          continue;
        }
        const setup = exampleSetup(p.m.name, app)!;
        if (setup.skip) {
          check(true, `example ${p.m.name}: not run: ${setup.skip}`);
          continue;
        }
        if (p.m.name === '@quorate/client') cluster = startCluster(app, log);
        if (p.m.name === '@quorate/client') await waitForCluster();
        setup.before?.();
        const file = join(app, `${p.m.name.split('/')[1]}-example.ts`);
        writeFileSync(file, setup.code(code));
        try {
          const out = sh(join(app, 'node_modules', '.bin', 'tsx'), [file], app, {}, 120_000);
          const first = out.trim().split('\n')[0] ?? '';
          check(true, `example ${p.m.name} ran${first ? `: ${first.slice(0, 100)}` : ''}`);
        } catch (err) {
          check(false, `example ${p.m.name}: ${(err as Error).message.slice(0, 2000)}`);
        } finally {
          if (cluster.length > 0) await stopCluster(cluster);
          cluster = [];
        }
      }
    }
    return { registry, published, checks, ok: checks.every((c) => c.startsWith('ok')) };
  } finally {
    if (cluster.length > 0) await stopCluster(cluster);
    verdaccio?.kill('SIGTERM');
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  }
}

/** Three nodes from the installed `@quorate/node`, where the client README expects them (8081-8083). */
function startCluster(app: string, log: (l: string) => void): ChildProcess[] {
  const bin = join(app, 'node_modules', '@quorate', 'node', 'bin', 'quorate.js');
  log('starting a three-node cluster from the installed @quorate/node for the client example');
  return ['n1', 'n2', 'n3'].map((id) =>
    spawn(
      process.execPath,
      [
        bin,
        'start',
        '--members',
        'local:3',
        '--node-id',
        id,
        '--storage.data-dir',
        join(app, 'data', id),
        '--stop-with-stdin',
      ],
      { cwd: app, stdio: ['pipe', 'ignore', 'ignore'] },
    ),
  );
}

async function waitForCluster(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch('http://127.0.0.1:8081/health');
      const body = (await r.json()) as { leaderId?: string | null };
      if (body.leaderId) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the local cluster elected no leader within 60 s');
}

async function stopCluster(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((done) => {
          if (p.exitCode !== null || p.signalCode !== null) return done();
          const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
          p.once('exit', () => {
            clearTimeout(t);
            done();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const at = args.indexOf('--registry');
  const report = await releaseLocal({
    registry: at >= 0 ? args[at + 1] : undefined,
    examples: !args.includes('--no-examples'),
    keep: args.includes('--keep'),
  }).catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
  const failed = report.checks.filter((c) => c.startsWith('FAIL')).length;
  console.log(
    `release:local: ${report.published.length} packages published to ${report.registry}; ${report.checks.length - failed} checks passed, ${failed} failed`,
  );
  process.exit(report.ok ? 0 : 1);
}
