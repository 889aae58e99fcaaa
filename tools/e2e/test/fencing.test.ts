/** The elector test's check itself: it must catch a planted breach and pass a fenced overlap. */
import { expect, it } from 'vitest';
import { fencingBreaches, type LogLine, type StoreDecision, unitsIn } from './fencing.js';

const start = (holder: string, unit: number, token: number, at: number): LogLine => ({
  at,
  holder,
  what: 'unit-start',
  unit,
  token,
});
const end = (holder: string, unit: number, token: number, at: number): LogLine => ({
  at,
  holder,
  what: 'unit-end',
  unit,
  token,
});
const decided = (
  holder: string,
  unit: number,
  token: number,
  at: number,
  accepted: boolean,
): StoreDecision => ({
  holder,
  unit,
  token,
  at,
  accepted,
});

it('passes units of different holders one after the other', () => {
  const lines = [start('a', 1, 5, 100), end('a', 1, 5, 120), start('b', 1, 6, 130), end('b', 1, 6, 150)];
  const ds = [decided('a', 1, 5, 110, true), decided('b', 1, 6, 140, true)];
  expect(fencingBreaches(unitsIn(lines, ds))).toEqual([]);
});

it('passes an overlap where the frozen holder’s write was refused by its token', () => {
  // a checks isLeader, starts, is frozen; b takes over; a wakes and its write is refused.
  const lines = [start('a', 1, 5, 100), start('b', 1, 6, 2000), end('b', 1, 6, 2010), end('a', 1, 5, 2400)];
  const ds = [decided('b', 1, 6, 2005, true), decided('a', 1, 5, 2390, false)];
  expect(fencingBreaches(unitsIn(lines, ds))).toEqual([]);
});

it('passes an overlap where the write was accepted before the successor started', () => {
  // a's write was taken at 110, then a was frozen before it logged the end.
  const lines = [start('a', 1, 5, 100), start('b', 1, 6, 2000), end('a', 1, 5, 2400)];
  const ds = [decided('a', 1, 5, 110, true), decided('b', 1, 6, 2005, true)];
  expect(fencingBreaches(unitsIn(lines, ds))).toEqual([]);
});

it('fails a planted overlap whose write the store accepted after the other holder started', () => {
  const lines = [start('c', 7, 5, 100), start('a', 3, 6, 200), end('c', 7, 5, 400), end('a', 3, 6, 450)];
  const ds = [decided('c', 7, 5, 300, true), decided('a', 3, 6, 420, true)];
  const breaches = fencingBreaches(unitsIn(lines, ds));
  expect(breaches).toHaveLength(1);
  expect(breaches[0]).toContain("a started unit 3 (token 6) at 200 while c's unit 7");
});

it('fails a planted breach by a unit that never ended (its holder killed after the write)', () => {
  const lines = [start('c', 7, 5, 100), start('a', 3, 6, 200), end('a', 3, 6, 450)];
  const ds = [decided('c', 7, 5, 300, true), decided('a', 3, 6, 420, true)];
  expect(fencingBreaches(unitsIn(lines, ds))).toHaveLength(1);
});

it('judges only the window it is given', () => {
  const lines = [
    start('c', 7, 5, 100),
    start('a', 3, 6, 200),
    end('c', 7, 5, 400),
    end('a', 3, 6, 450),
    start('b', 1, 7, 1000),
    end('b', 1, 7, 1100),
  ];
  const ds = [decided('c', 7, 5, 300, true), decided('a', 3, 6, 420, true), decided('b', 1, 7, 1050, true)];
  expect(fencingBreaches(unitsIn(lines, ds, 900))).toEqual([]);
  expect(fencingBreaches(unitsIn(lines, ds, 0, 900))).toHaveLength(1);
});
