/**
 * Same seed, same run: the digest of the whole event trace (messages delivered, durable
 * writes, applies, client results, faults) repeats exactly, and differs between seeds.
 * The seeds cover snapshots, crashes and membership changes.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { type SimResult, simulate } from '../src/index.js';

const seeds = [3, 42, 101];

it('a seed replays to the same digest, and seeds differ', async () => {
  const first: SimResult[] = [];
  for (const seed of seeds) {
    const a = await simulate({ seed });
    const b = await simulate({ seed });
    expect(a.violations).toEqual([]);
    expect(b.digest).toBe(a.digest);
    expect(b.stats).toEqual(a.stats);
    first.push(a);
  }
  expect(new Set(first.map((r) => r.digest)).size).toBe(seeds.length);
  // The seeds reach what they are here for.
  const sum = (f: (r: SimResult) => number) => first.reduce((n, r) => n + f(r), 0);
  expect(sum((r) => r.stats.crashes)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.confChanges)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.snapshotsStored)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.snapshotsInstalled)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.opsChecked)).toBeGreaterThan(0);
});

it('`pnpm sim -- --seed S` prints the same digest line every time', () => {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
  const run = () =>
    execFileSync(process.execPath, ['--import', 'tsx', '--conditions=source', 'src/cli.ts', '--seed', '42'], {
      cwd: pkg,
      encoding: 'utf8',
    });
  const a = run().match(/^digest: ([0-9a-f]{16})$/m)?.[1];
  const b = run().match(/^digest: ([0-9a-f]{16})$/m)?.[1];
  expect(a).toMatch(/^[0-9a-f]{16}$/);
  expect(b).toBe(a);
}, 60_000);
