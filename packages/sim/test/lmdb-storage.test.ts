/**
 * The simulator (real `RaftNode`s) over real LMDB files: every node's log and hard state
 * live in their own data directory, and a simulated crash closes the store and opens it
 * again from disk. Fewer seeds than the in-memory sweep (packages/sim/test/sim-sweep-*).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStorage } from '@quorate/storage-lmdb';
import { afterEach, expect, it } from 'vitest';
import { formatFailure, runSeeds, type SimStorage } from '../src/index.js';

/** Every directory made, removed after the test even if a run did not dispose of its own. */
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function lmdbSimStorage(): SimStorage {
  const root = mkdtempSync(join(tmpdir(), 'quorate-sim-'));
  roots.push(root);
  const open = (id: string) => LmdbStorage.open({ dir: join(root, id), clusterId: 'sim', nodeId: id });
  return {
    // Empty: the runtime bootstraps founding members itself.
    create: (id: string) => open(id),
    async reopen(id, previous) {
      await previous.close();
      return open(id);
    },
    async dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

it('seeds 1..10 of 600 steps, with crashes, hold every invariant on LMDB storage', async () => {
  // Faults only before the quiet phase (the last 200 steps); crashes more often than the
  // sweep's default, so that short runs restart nodes from their files.
  const s = await runSeeds(1, 10, {
    steps: 600,
    quietSteps: 200,
    faults: { crash: 0.01, crashLeader: 0.005 },
    storage: lmdbSimStorage(),
  });
  expect(s.failed.map((r) => formatFailure(r)).join('\n\n')).toBe('');
  const crashes = s.results.reduce((n, r) => n + r.stats.crashes, 0);
  expect(crashes).toBeGreaterThan(0);
  console.log(`sim on lmdb: ${s.seeds} seeds, ${crashes} crashes, ${(s.elapsedMs / 1000).toFixed(1)} s`);
}, 120_000);
