#!/usr/bin/env node
// Installs the Debian packages the tests need (listed in .ci/apt-packages) when they are
// missing, so that `pnpm test` works on a fresh machine. Needs root (or passwordless sudo);
// otherwise it prints the command to run and fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const list = join(root, '.ci', 'apt-packages');
if (!existsSync(list)) process.exit(0);
// Each line: "<package> <command that proves it is installed>"
const wanted = readFileSync(list, 'utf8')
  .split('\n')
  .map((l) => l.replace(/#.*/, '').trim())
  .filter(Boolean)
  .map((l) => {
    const [pkg, probe] = l.split(/\s+/);
    return { pkg, probe };
  });
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const missing = wanted.filter((w) => !has(w.probe));
if (missing.length === 0) process.exit(0);
const pkgs = missing.map((m) => m.pkg);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = !isRoot && has('sudo') ? ['sudo', '-n'] : [];
if (!isRoot && sudo.length === 0) {
  console.error(
    `system-deps: the tests need Debian packages: ${pkgs.join(' ')}\n  run: sudo apt-get install -y ${pkgs.join(' ')}`,
  );
  process.exit(1);
}
console.log(`system-deps: installing ${pkgs.join(' ')}`);
const run = (args) =>
  execFileSync(sudo[0] ?? args[0], sudo.length ? [...sudo.slice(1), ...args] : args.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
run(['apt-get', 'update', '-qq']);
run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs]);
