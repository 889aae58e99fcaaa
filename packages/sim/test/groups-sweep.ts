/** The body of the multi-group sweep shards: run the seeds, report every failure, show coverage. */
import { expect } from 'vitest';
import { formatGroupFailure, type GroupSimResult, simulateGroups } from '../src/index.js';

export async function sweepGroups(first: number, count: number): Promise<void> {
  const t0 = performance.now();
  const results: GroupSimResult[] = [];
  for (let seed = first; seed < first + count; seed++)
    results.push(await simulateGroups({ seed, groups: 8 }));
  const report = results
    .filter((r) => r.violations.length > 0)
    .map(formatGroupFailure)
    .join('\n\n');
  expect(report).toBe('');
  const sum = (f: (r: GroupSimResult) => number) => results.reduce((a, r) => a + f(r), 0);
  // The seeds reach what they are here for: crashes, partitions, quiescence and waking, clients.
  expect(sum((r) => r.stats.crashes)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.partitions)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.quiesced)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.woke)).toBeGreaterThan(0);
  expect(sum((r) => r.stats.opsChecked)).toBeGreaterThan(1000);
  console.log(
    `groups sim: seeds ${first}..${first + count - 1}, ${sum((r) => r.violations.length)} violations, ${sum((r) => r.stats.crashes)} crashes, ` +
      `${sum((r) => r.stats.quiesced)} quiescences, ${sum((r) => r.stats.opsChecked)} operations linearizable (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
}
