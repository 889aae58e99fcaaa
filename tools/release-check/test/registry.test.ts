/**
 * A release through a registry, end to end (`pnpm release:local`): Verdaccio on
 * 127.0.0.1, `changeset version` and `changeset publish` on a clone of HEAD, then every
 * package installed by name and version with npm and with pnpm outside the repository,
 * imported, the binaries' --help, and each README's first example. Nothing can be
 * published anywhere but loopback.
 */
import { describe, expect, it } from 'vitest';
import { assertLoopback, releaseLocal } from '../src/release-local.js';
import { publicPackages } from './packages.js';

describe('release:local', () => {
  it('refuses any registry that is not on loopback', async () => {
    for (const url of [
      'https://registry.npmjs.org/',
      'http://10.0.0.1:4873',
      'http://example.com',
      'not a url',
    ]) {
      expect(() => assertLoopback(url)).toThrow(/loopback|not a URL/);
    }
    for (const url of ['http://127.0.0.1:4873', 'http://localhost:4873/', 'http://[::1]:4873']) {
      expect(() => assertLoopback(url)).not.toThrow();
    }
    await expect(releaseLocal({ registry: 'https://registry.npmjs.org/', log: () => {} })).rejects.toThrow(
      /refusing https:\/\/registry\.npmjs\.org/,
    );
  });

  it('publishes every package to a local registry; npm and pnpm install them by version; examples run', async () => {
    const lines: string[] = [];
    const report = await releaseLocal({ log: (l) => lines.push(l) });
    const failed = report.checks.filter((c) => !c.startsWith('ok'));
    expect(failed, lines.join('\n')).toEqual([]);
    const names = publicPackages()
      .map((p) => p.name)
      .sort();
    expect(report.published.map((p) => p.name).sort()).toEqual(names);
    for (const pm of ['npm', 'pnpm']) {
      for (const n of names) expect(report.checks.join('\n')).toContain(`${pm}: ${n}@`);
      expect(report.checks).toContain(`ok   ${pm}: npx quorate --help`);
      expect(report.checks).toContain(`ok   ${pm}: npx quorate-loadgen --help`);
    }
    expect(report.checks.some((c) => c.startsWith('ok   example @quorate/client ran'))).toBe(true);
    expect(report.checks.some((c) => c.startsWith('ok   example @quorate/raft ran'))).toBe(true);
  }, 1_200_000);
});
