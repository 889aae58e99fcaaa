/**
 * CI's sweep: 1,000 seeds of 2,000 steps (20 s of virtual time each), in four shards so
 * that the test runner spreads them over the cores. `pnpm sim -- --seeds N` runs more.
 */
import { expect, it } from 'vitest';
import { formatFailure, runSeeds } from '../src/index.js';

it('seeds 751..1000 hold every invariant and recover after faults', async () => {
  const s = await runSeeds(751, 250, { steps: 2000 });
  const report = s.failed.map((r) => formatFailure(r)).join('\n\n');
  expect(report).toBe('');
  console.log(`sim: ${s.seeds} seeds, ${s.violations} violations (${(s.elapsedMs / 1000).toFixed(1)} s)`);
}, 600_000);
