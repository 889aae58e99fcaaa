/**
 * CI's multi-group sweep, shard 2 of 4: seeds 251..500, 3 nodes that are
 * `MultiRaftHost`s of 8 groups each, quiescence on, under crashes of whole nodes,
 * partitions, loss, duplicates and delays; every group's invariants and the clients'
 * history (keys per group) checked. `pnpm sim -- --groups 8 --seeds N` runs more.
 */
import { it } from 'vitest';
import { sweepGroups } from './groups-sweep.js';

it('seeds 251..500 with 3 nodes x 8 groups and quiescence hold every invariant and recover', async () => {
  await sweepGroups(251, 250);
}, 900_000);
