/**
 * One runtime: `RaftNode`'s ready loop is the only code in the tree that hosts the core
 * (takes readies, acknowledges persistence, reports applies). The simulator drives
 * `RaftNode` itself, so anything else doing this would be a second, unsimulated runtime.
 * The files allowed to are listed with their reason; a new one fails this test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');

/** Calls that host the core: taking readies, acknowledging them, reporting applies, merging batches. */
const HOSTING = /\b(?:core|raft)\s*(?:\(\))?\.(?:ready|hasReady|persisted|applied)\s*\(|\bmergeReadies\s*\(/;

const allowed: Record<string, string> = {
  'packages/raft/src/core/': 'the core itself',
  'packages/raft/src/runtime/': 'the runtime: the one ready loop',
  'packages/raft/src/testing/interaction.ts':
    'the single-step harness for trace tests (synchronous, one node at a time)',
  'packages/raft/examples/core.ts':
    'the README\'s "using the core directly", for users who bring their own runtime',
  'packages/raft/bench/throughput.ts': 'benchmarks the core alone, as the etcd core anchor does',
  'packages/raft/test/election.test.ts': 'core unit tests, stepping the core by hand',
  'packages/raft/test/replication.test.ts': 'core unit tests, stepping the core by hand',
};

function* sources(dir: string): Generator<string> {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.name === 'node_modules' || d.name === 'dist' || d.name.startsWith('.')) continue;
    const p = join(dir, d.name);
    if (d.isDirectory()) yield* sources(p);
    else if (/\.(ts|mts|js|mjs)$/.test(d.name)) yield p;
  }
}

it('no code outside the runtime hosts the core (no second ready loop)', () => {
  const offenders: string[] = [];
  let scanned = 0;
  for (const top of ['packages', 'apps', 'tools', 'examples', 'deploy']) {
    let files: string[];
    try {
      files = [...sources(join(root, top))];
    } catch {
      continue;
    }
    for (const f of files) {
      const rel = relative(root, f).split('\\').join('/');
      if (rel === 'packages/raft/test/one-runtime.test.ts') continue;
      scanned++;
      if (Object.keys(allowed).some((a) => rel === a || (a.endsWith('/') && rel.startsWith(a)))) continue;
      const lines = readFileSync(f, 'utf8').split('\n');
      lines.forEach((l, i) => {
        if (HOSTING.test(l)) offenders.push(`${rel}:${i + 1}: ${l.trim()}`);
      });
    }
  }
  expect(scanned).toBeGreaterThan(100);
  expect(offenders).toEqual([]);
});

it('the pattern finds a ready loop', () => {
  expect(HOSTING.test('    const rd = n.core.ready();')).toBe(true);
  expect(HOSTING.test('      this.core.persisted(rd);')).toBe(true);
  expect(HOSTING.test('    const batch = mergeReadies(n.disk);')).toBe(true);
  expect(HOSTING.test('    this.pending.applied(e, result);')).toBe(false);
});
