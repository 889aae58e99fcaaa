/**
 * The benchmarks still run: a tiny run of each measures nothing worth reading (figures
 * come from `pnpm bench`), but it fails when a change to the core breaks the harness.
 */
import { describe, expect, it } from 'vitest';
import { runRuntime } from '../bench/runtime.js';
import { runThroughput } from '../bench/throughput.js';

describe('benchmark harnesses', () => {
  it('core throughput: three cores in one loop elect a leader and apply entries', () => {
    const r = runThroughput(16, 20, 100);
    expect(r.term).toBeGreaterThan(0);
    expect(Math.min(...r.applied)).toBeGreaterThan(0);
  });

  it('runtime throughput: three RaftNodes apply proposals', async () => {
    const r = await runRuntime(4, 200, 50);
    expect(r.opsPerSec).toBeGreaterThan(0);
  });
});
