import { expect, it } from 'vitest';
import { snapshotPhase } from '../src/run.js';

const members = [{ id: 'n3' }, { id: 'n1' }, { id: 'n2' }];

it("spreads the listed members' snapshots evenly over the interval, in the order of their ids", () => {
  expect(['n1', 'n2', 'n3'].map((id) => snapshotPhase(id, members, 100_000))).toEqual([0, 33_333, 66_666]);
  expect(snapshotPhase('a', [{ id: 'a' }], 100_000)).toBe(0);
});

it('places a member not listed (one that joined) from its id, within the interval and the same each time', () => {
  const p = snapshotPhase('n4', members, 100_000);
  expect(p).toBeGreaterThanOrEqual(0);
  expect(p).toBeLessThan(100_000);
  expect(snapshotPhase('n4', members, 100_000)).toBe(p);
  expect(snapshotPhase('n5', members, 100_000)).not.toBe(p);
});
