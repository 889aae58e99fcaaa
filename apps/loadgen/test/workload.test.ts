import { describe, expect, it } from 'vitest';
import { Stats } from '../src/stats.js';
import { keyName, rng, Workload, zipfSampler } from '../src/workload.js';

describe('workload', () => {
  it('key names match the etcd anchor load script', () => {
    expect(keyName(0)).toBe('key-0000000');
    expect(keyName(9999)).toBe('key-0009999');
  });

  it('is deterministic per seed and client', () => {
    const o = { mode: 'mixed' as const, readRatio: 0.5, keys: 100, zipf: 0, valueSize: 16, seed: 7 };
    const a = new Workload(o, 3);
    const b = new Workload(o, 3);
    const seqA = Array.from({ length: 50 }, () => [a.next(), a.key()]);
    const seqB = Array.from({ length: 50 }, () => [b.next(), b.key()]);
    expect(seqA).toEqual(seqB);
  });

  it('respects the read ratio', () => {
    const w = new Workload({ mode: 'mixed', readRatio: 0.9, keys: 10, zipf: 0, valueSize: 8, seed: 1 }, 0);
    let reads = 0;
    for (let i = 0; i < 10_000; i++) if (w.next() === 'get') reads++;
    expect(reads / 10_000).toBeGreaterThan(0.87);
    expect(reads / 10_000).toBeLessThan(0.93);
  });

  it('zipf favours low keys; uniform does not', () => {
    const count = (s: number) => {
      const pick = zipfSampler(1000, s, rng(1));
      let first10 = 0;
      for (let i = 0; i < 20_000; i++) if (pick() < 10) first10++;
      return first10 / 20_000;
    };
    expect(count(0)).toBeLessThan(0.02);
    expect(count(1.1)).toBeGreaterThan(0.3);
  });

  it('values are unique per client and padded to the size', () => {
    const w = new Workload({ mode: 'put', readRatio: 0, keys: 1, zipf: 0, valueSize: 32, seed: 1 }, 0);
    const a = w.value(4);
    const b = w.value(4);
    expect(a).not.toBe(b);
    expect(a).toHaveLength(32);
  });
});

describe('stats', () => {
  it('summarizes latencies and closes seconds', () => {
    const s = new Stats(0);
    for (let i = 1; i <= 1000; i++) s.record(i * 1000, i % 100 === 0 ? 'TIMEOUT' : null);
    const l = s.latencyMs();
    expect(l.p50).toBeCloseTo(500, -1);
    expect(l.max).toBeCloseTo(1000, -1);
    expect(s.errorCount).toBe(10);
    expect(s.errors.get('TIMEOUT')).toBe(10);
    expect(s.tick(999)).toBeNull();
    expect(s.tick(1000)).toMatchObject({ t: 0, ops: 1000, errors: 10 });
    s.destroy();
  });
});

describe('progress bar', () => {
  it('shows how far the run is, by time or by operations', async () => {
    const { progressBar } = await import('../src/main.js');
    expect(progressBar(0, 0, { durationMs: 10_000, reqsPerClient: undefined, numClients: 4 })).toBe(
      `[${'.'.repeat(20)}]   0%`,
    );
    expect(progressBar(0, 5_000, { durationMs: 10_000, reqsPerClient: undefined, numClients: 4 })).toBe(
      `[${'#'.repeat(10)}${'.'.repeat(10)}]  50%`,
    );
    expect(progressBar(100, 1, { durationMs: undefined, reqsPerClient: 50, numClients: 4 })).toBe(
      `[${'#'.repeat(10)}${'.'.repeat(10)}]  50%`,
    );
    expect(progressBar(999, 99_000, { durationMs: 10_000, reqsPerClient: undefined, numClients: 1 })).toMatch(
      /\] 100%$/,
    );
  });
});
