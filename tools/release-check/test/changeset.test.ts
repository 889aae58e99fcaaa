/**
 * `changeset version` turns a pending changeset into versions and changelogs. Run on a
 * copy of the workspace's manifests so the real ones stay untouched.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { publicPackages, root } from './packages.js';

const work = mkdtempSync(join(tmpdir(), 'quorate-changeset-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('changeset version bumps versions and writes changelogs', () => {
  for (const f of ['package.json', 'pnpm-workspace.yaml']) cpSync(join(root, f), join(work, f));
  cpSync(join(root, '.changeset', 'config.json'), join(work, '.changeset', 'config.json'), {
    recursive: true,
  });
  const pkgs = publicPackages();
  for (const p of pkgs) {
    const dest = join(work, relative(root, p.dir));
    mkdirSync(dest, { recursive: true });
    cpSync(join(p.dir, 'package.json'), join(dest, 'package.json'));
  }
  const first = pkgs[0]!;
  writeFileSync(
    join(work, '.changeset', 'check-release.md'),
    `---\n'${first.name}': minor\n---\n\nA change users would notice.\n`,
  );
  const bin = join(root, 'node_modules', '@changesets', 'cli', 'bin.js');
  execFileSync('node', [bin, 'version'], { cwd: work, stdio: 'pipe' });
  const dir = join(work, relative(root, first.dir));
  const bumped = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  expect(bumped.version).not.toBe(first.version);
  expect(existsSync(join(dir, 'CHANGELOG.md'))).toBe(true);
  expect(readFileSync(join(dir, 'CHANGELOG.md'), 'utf8')).toContain('A change users would notice.');
});

it('a minor release of the core does not make its dependents 1.0.0', () => {
  // At 0.x a caret range excludes the next minor, and changesets gives a peer dependent a
  // major release when its peer's new version leaves the range: metrics and storage-lmdb
  // would jump to 1.0.0 on any minor of @quorate/raft. The peer ranges admit every 0.x and
  // the config bumps peer dependents only when the new version leaves their range.
  const dir = mkdtempSync(join(work, 'peer-'));
  for (const f of ['package.json', 'pnpm-workspace.yaml']) cpSync(join(root, f), join(dir, f));
  cpSync(join(root, '.changeset', 'config.json'), join(dir, '.changeset', 'config.json'));
  const pkgs = publicPackages();
  for (const p of pkgs) {
    const dest = join(dir, relative(root, p.dir));
    mkdirSync(dest, { recursive: true });
    cpSync(join(p.dir, 'package.json'), join(dest, 'package.json'));
  }
  writeFileSync(
    join(dir, '.changeset', 'core-minor.md'),
    `---\n'@quorate/raft': minor\n---\n\nA new feature.\n`,
  );
  const bin = join(root, 'node_modules', '@changesets', 'cli', 'bin.js');
  execFileSync('node', [bin, 'version'], { cwd: dir, stdio: 'pipe' });
  const major = (v: string) => Number(v.split('.')[0]);
  for (const p of pkgs) {
    const after = JSON.parse(readFileSync(join(dir, relative(root, p.dir), 'package.json'), 'utf8'));
    expect(major(after.version), `${p.name} ${p.version} -> ${after.version}`).toBe(major(p.version));
  }
});
