/**
 * The multi-group mode: nodes that are `MultiRaftHost`s of 8 groups each, quiescence on,
 * under crashes of whole nodes, partitions, loss, duplicates and delays; every group's
 * invariants and the clients' history (keys per group) checked. The seed sweep is in
 * `groups-sweep-*.test.ts` (1,000 seeds in four shards).
 */
import { expect, it } from 'vitest';
import { simulateGroups } from '../src/index.js';

it('a seed replays to the same digest in the multi-group mode', async () => {
  const a = await simulateGroups({ seed: 11, groups: 8 });
  const b = await simulateGroups({ seed: 11, groups: 8 });
  const c = await simulateGroups({ seed: 12, groups: 8 });
  expect(b.digest).toBe(a.digest);
  expect(b.stats).toEqual(a.stats);
  expect(c.digest).not.toBe(a.digest);
}, 120_000);

it('a follower of a quiesced group elects a new leader within two election timeouts of its leader node crashing', async () => {
  const all: number[] = [];
  for (let seed = 1; seed <= 12; seed++) {
    const r = await simulateGroups({ seed, groups: 8, scenario: 'crash-quiesced-leader', steps: 600 });
    expect(r.violations.map((v) => v.detail)).toEqual([]);
    expect(r.stats.allQuiescedBeforeCrash).toBe(true);
    expect(r.stats.failoverMs.length).toBeGreaterThan(0);
    all.push(...r.stats.failoverMs);
  }
  all.sort((a, b) => a - b);
  console.log(
    `quiesced leader crash -> new leader (virtual ms, electionTimeout 150): n=${all.length} min=${all[0]!.toFixed(0)} p50=${all[all.length >> 1]!.toFixed(0)} max=${all[all.length - 1]!.toFixed(0)}`,
  );
  expect(all[all.length - 1]!).toBeLessThanOrEqual(2 * 150);
}, 300_000);
