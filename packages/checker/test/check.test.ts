/**
 * Known histories, linearizable and not, including the ones a naive checker gets wrong.
 */
import { describe, expect, it } from 'vitest';
import { checkHistory } from '../src/index.js';
import { history } from './helpers.js';

const verdict = async (...specs: Parameters<typeof history>) =>
  (await checkHistory(history(...specs))).linearizable;

describe('known linearizable histories', () => {
  it('sequential put then get', async () => {
    expect(
      await verdict({ p: 0, f: 'put', v: 'a', at: [0, 10] }, { p: 1, f: 'get', v: 'a', at: [20, 30] }),
    ).toBe(true);
  });

  it('a read of an absent key before any write', async () => {
    expect(
      await verdict({ p: 1, f: 'get', v: null, at: [0, 5] }, { p: 0, f: 'put', v: 'a', at: [10, 20] }),
    ).toBe(true);
  });

  it('concurrent writes that only linearize in an order other than their start order', async () => {
    // put a starts first, put b second; the later read of "a" forces b before a.
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 50] },
        { p: 1, f: 'put', v: 'b', at: [10, 20] },
        { p: 2, f: 'get', v: 'a', at: [60, 70] },
      ),
    ).toBe(true);
  });

  it('a read concurrent with a write may see either value', async () => {
    for (const seen of ['a', 'b']) {
      expect(
        await verdict(
          { p: 0, f: 'put', v: 'a', at: [0, 10] },
          { p: 1, f: 'put', v: 'b', at: [20, 40] },
          { p: 2, f: 'get', v: seen, at: [25, 30] },
        ),
      ).toBe(true);
    }
  });

  it('an info write that must have happened, to explain a later read', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30], type: 'info' },
        { p: 2, f: 'get', v: 'b', at: [100, 110] },
      ),
    ).toBe(true);
  });

  it('an info write that takes effect long after its client gave up', async () => {
    expect(
      await verdict(
        { p: 1, f: 'put', v: 'b', at: [0, 5], type: 'info' },
        { p: 0, f: 'get', v: null, at: [10, 20] },
        { p: 2, f: 'get', v: 'b', at: [100, 110] },
      ),
    ).toBe(true);
  });

  it('an info write that must never have happened', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30], type: 'info' },
        { p: 2, f: 'get', v: 'a', at: [100, 110] },
        { p: 2, f: 'get', v: 'a', at: [200, 210] },
      ),
    ).toBe(true);
  });

  it('a cas whose success depends on an ambiguous write having happened', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30], type: 'info' },
        { p: 2, f: 'cas', v: ['b', 'c'], at: [40, 50] },
        { p: 3, f: 'get', v: 'c', at: [60, 70] },
      ),
    ).toBe(true);
  });

  it('failed operations never took effect and failed or info reads constrain nothing', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30], type: 'fail' },
        { p: 2, f: 'get', v: 'zzz', at: [35, 38], type: 'info' },
        { p: 2, f: 'get', v: null, at: [40, 45], type: 'fail' },
        { p: 3, f: 'get', v: 'a', at: [50, 60] },
      ),
    ).toBe(true);
  });

  it('an invocation never completed is an unknown outcome', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, null] },
        { p: 1, f: 'get', v: 'a', at: [50, 60] },
        { p: 1, f: 'get', v: 'a', at: [70, 80] },
      ),
    ).toBe(true);
  });

  it('delete makes the key absent, and reports whether it existed', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'delete', v: true, at: [20, 30] },
        { p: 2, f: 'get', v: null, at: [40, 50] },
        { p: 1, f: 'delete', v: false, at: [60, 70] },
        { p: 0, f: 'cas', v: [null, 'x'], at: [80, 90] },
        { p: 2, f: 'get', v: 'x', at: [100, 110] },
      ),
    ).toBe(true);
  });

  it('keys are independent registers', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10], key: 'x' },
        { p: 1, f: 'put', v: 'b', at: [20, 30], key: 'y' },
        { p: 2, f: 'get', v: null, at: [40, 50], key: 'z' },
        { p: 2, f: 'get', v: 'a', at: [60, 70], key: 'x' },
      ),
    ).toBe(true);
  });
});

describe('known non-linearizable histories', () => {
  it('a stale read after an acknowledged write', async () => {
    const r = await checkHistory(
      history(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30] },
        { p: 2, f: 'get', v: 'a', at: [40, 50] },
      ),
    );
    expect(r.linearizable).toBe(false);
    expect(r.failures).toHaveLength(1);
    const f = r.failures[0]!;
    expect(f.key).toBe('k');
    expect(f.op.text).toBe('get -> "a"');
    expect(f.reason).toBe(
      'get read "a", but in every order consistent with real time the value at that point was "b"',
    );
    expect(f.window.map((o) => o.text)).toEqual(['put "a"', 'put "b"', 'get -> "a"']);
  });

  it('a read of a value never written', async () => {
    const r = await checkHistory(
      history({ p: 0, f: 'put', v: 'a', at: [0, 10] }, { p: 2, f: 'get', v: 'q', at: [40, 50] }),
    );
    expect(r.linearizable).toBe(false);
    expect(r.failures[0]!.reason).toBe('get read "q", a value never written to this key');
  });

  it('a read of a value written only later', async () => {
    const r = await checkHistory(
      history({ p: 2, f: 'get', v: 'a', at: [0, 10] }, { p: 0, f: 'put', v: 'a', at: [20, 30] }),
    );
    expect(r.linearizable).toBe(false);
    expect(r.failures[0]!.reason).toBe(
      'get read "a", but every write of that value was invoked after it completed',
    );
  });

  it('a read that goes back in time (new value, then old value)', async () => {
    // A start-time-order checker accepts this if it lets the reads reorder; real time forbids it.
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 100] },
        { p: 2, f: 'get', v: 'b', at: [30, 40] },
        { p: 3, f: 'get', v: 'a', at: [50, 60] },
      ),
    ).toBe(false);
  });

  it('an info write cannot explain a read that completed before the write was invoked', async () => {
    expect(
      await verdict(
        { p: 2, f: 'get', v: 'b', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30], type: 'info' },
      ),
    ).toBe(false);
  });

  it('an info write can happen at most once', async () => {
    expect(
      await verdict(
        { p: 1, f: 'put', v: 'b', at: [0, 5], type: 'info' },
        { p: 0, f: 'put', v: 'a', at: [10, 20] },
        { p: 2, f: 'get', v: 'b', at: [30, 40] },
        { p: 0, f: 'put', v: 'c', at: [50, 60] },
        { p: 2, f: 'get', v: 'b', at: [70, 80] },
      ),
    ).toBe(false);
  });

  it('a cas that succeeded although no write made its expected value current', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'put', v: 'b', at: [20, 30], type: 'fail' },
        { p: 2, f: 'cas', v: ['b', 'c'], at: [40, 50] },
      ),
    ).toBe(false);
  });

  it('two cas from the same value cannot both succeed', async () => {
    expect(
      await verdict(
        { p: 0, f: 'put', v: 'a', at: [0, 10] },
        { p: 1, f: 'cas', v: ['a', 'b'], at: [20, 40] },
        { p: 2, f: 'cas', v: ['a', 'c'], at: [20, 40] },
      ),
    ).toBe(false);
  });

  it('a delete that reports deleting an absent key', async () => {
    expect(await verdict({ p: 1, f: 'delete', v: true, at: [0, 10] })).toBe(false);
  });

  it('fails only the bad key, and says which', async () => {
    const r = await checkHistory(
      history(
        { p: 0, f: 'put', v: 'a', at: [0, 10], key: 'good' },
        { p: 1, f: 'get', v: 'a', at: [20, 30], key: 'good' },
        { p: 0, f: 'put', v: 'a', at: [40, 50], key: 'bad' },
        { p: 1, f: 'get', v: null, at: [60, 70], key: 'bad' },
      ),
    );
    expect(r.linearizable).toBe(false);
    expect(r.keys).toBe(2);
    expect(r.failures.map((f) => f.key)).toEqual(['bad']);
  });
});

describe('budget', () => {
  it('answers unknown when a key needs more steps than allowed', async () => {
    const h = history(
      { p: 0, f: 'put', v: 'a', at: [0, 10] },
      { p: 1, f: 'put', v: 'b', at: [0, 10] },
      { p: 2, f: 'put', v: 'c', at: [0, 10] },
      { p: 3, f: 'get', v: 'a', at: [20, 30] },
    );
    expect((await checkHistory(h, { budget: 2 })).linearizable).toBe('unknown');
    const r = await checkHistory(h, { budget: 2 });
    expect(r.unknownKeys).toEqual(['k']);
    expect((await checkHistory(h)).linearizable).toBe(true);
  });
});
