/** The per-follower window of appends in flight, on its own. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Inflights } from '../src/core/inflights.js';

describe('Inflights', () => {
  it('fills by count', () => {
    const w = new Inflights(3, 0);
    w.add(5, 10);
    w.add(7, 10);
    expect(w.full()).toBe(false);
    w.add(9, 10);
    expect([w.count, w.bytes, w.full()]).toEqual([3, 30, true]);
  });

  it('fills by bytes, and 0 bytes means no byte limit', () => {
    const byBytes = new Inflights(100, 25);
    byBytes.add(1, 20);
    expect(byBytes.full()).toBe(false);
    byBytes.add(2, 5);
    expect(byBytes.full()).toBe(true);
    const noLimit = new Inflights(100, 0);
    noLimit.add(1, 1_000_000_000);
    expect(noLimit.full()).toBe(false);
  });

  it('an acknowledgement frees every message up to its index, and no more', () => {
    const w = new Inflights(10, 0);
    for (const i of [3, 6, 9, 12]) w.add(i, i);
    w.freeLE(7);
    expect([w.count, w.bytes]).toEqual([2, 21]);
    w.freeLE(7); // stale: nothing more
    expect([w.count, w.bytes]).toEqual([2, 21]);
    w.freeLE(100);
    expect([w.count, w.bytes]).toEqual([0, 0]);
  });

  it('freeFirstOne frees the oldest only; reset empties it', () => {
    const w = new Inflights(10, 0);
    w.freeFirstOne(); // empty: nothing to do
    w.add(4, 1);
    w.add(8, 2);
    w.freeFirstOne();
    expect([w.count, w.bytes]).toEqual([1, 2]);
    w.reset();
    expect([w.count, w.bytes, w.full()]).toEqual([0, 0, false]);
  });

  it('agrees with a plain list through any sequence of adds and frees', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('add' as const), bytes: fc.integer({ min: 0, max: 50 }) }),
            fc.record({ op: fc.constant('free' as const), back: fc.integer({ min: 0, max: 20 }) }),
            fc.record({ op: fc.constant('first' as const) }),
          ),
          { maxLength: 400 },
        ),
        (ops) => {
          const w = new Inflights(1_000, 0);
          const model: { index: number; bytes: number }[] = [];
          let next = 1;
          for (const o of ops) {
            if (o.op === 'add') {
              w.add(next, o.bytes);
              model.push({ index: next, bytes: o.bytes });
              next += 1 + (o.bytes % 3);
            } else if (o.op === 'free') {
              const upTo = next - o.back;
              w.freeLE(upTo);
              while (model.length > 0 && model[0]!.index <= upTo) model.shift();
            } else {
              w.freeFirstOne();
              model.shift();
            }
            expect(w.count).toBe(model.length);
            expect(w.bytes).toBe(model.reduce((a, m) => a + m.bytes, 0));
          }
        },
      ),
      { seed: 17, numRuns: 200 },
    );
  });
});
