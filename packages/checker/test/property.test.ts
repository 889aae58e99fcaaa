/**
 * Property tests against the naive checker (STYLE 15): real executions of a sequential
 * register are linearizable; corrupted or random histories get the naive checker's answer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkHistory, type HistoryEvent, simulateHistory } from '../src/index.js';
import { naiveLinearizable } from './naive.js';

const small = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  ops: fc.integer({ min: 1, max: 9 }),
  keys: fc.integer({ min: 1, max: 2 }),
  processes: fc.integer({ min: 1, max: 4 }),
  values: fc.integer({ min: 1, max: 3 }),
  infoRatio: fc.constantFrom(0, 0.2, 0.4),
  failRatio: fc.constantFrom(0, 0.1),
  maxLatency: fc.integer({ min: 2, max: 40 }),
});

const check = async (events: HistoryEvent[]) =>
  (await checkHistory(events, { budget: 1_000_000 })).linearizable;

/** Change one event so that the history is probably no longer an execution. */
function corrupt(events: HistoryEvent[], pick: number, how: number, values: number): HistoryEvent[] {
  const out = events.map((e) => ({ ...e }));
  const completions = out.filter((e) => e.type !== 'invoke');
  const e = completions[pick % completions.length];
  if (!e) return out;
  const other = how % (values + 1) === values ? null : `v${how % (values + 1)}`;
  switch ((how >> 4) % 4) {
    case 0: // a read returns something else
      if (e.f === 'get' && e.type === 'ok') e.value = other;
      break;
    case 1: // an outcome changes: ok <-> info
      if (e.type === 'ok') e.type = 'info';
      else if (e.type === 'info') e.type = 'ok';
      if (e.f === 'get' && e.type === 'ok') e.value = other;
      break;
    case 2: // a failed write is reported ok
      if (e.type === 'fail' && e.f !== 'get') e.type = 'ok';
      else if (e.f === 'get' && e.type === 'ok') e.value = other;
      break;
    case 3: {
      // the whole history is read with a different write value
      const w = out.find((x) => x.f === 'put' && x.type === 'invoke' && x.key === e.key);
      if (w) {
        const done = out.find(
          (x) => x.process === w.process && x.type !== 'invoke' && Number(x.time) >= Number(w.time),
        );
        w.value = `v${how % values}x`;
        if (done && done.f === 'put') done.value = w.value;
      }
      break;
    }
  }
  return out;
}

describe('property: the checker agrees with a brute-force checker', () => {
  it('real executions of a sequential register are linearizable', async () => {
    await fc.assert(
      fc.asyncProperty(small, async (o) => {
        const h = simulateHistory(o);
        expect(naiveLinearizable(h)).toBe(true);
        expect(await check(h)).toBe(true);
      }),
      { seed: 7, numRuns: 400 },
    );
  });

  it('corrupted executions: same answer as the naive checker', async () => {
    let nonLinearizable = 0;
    await fc.assert(
      fc.asyncProperty(small, fc.nat(), fc.nat(), async (o, pick, how) => {
        const h = corrupt(simulateHistory(o), pick, how, o.values);
        const naive = naiveLinearizable(h);
        if (!naive) nonLinearizable++;
        expect(await check(h)).toBe(naive);
      }),
      { seed: 11, numRuns: 1500 },
    );
    // The corruptions produce enough non-linearizable histories to mean something.
    expect(nonLinearizable).toBeGreaterThan(150);
  });

  it('random histories, not from any execution: same answer as the naive checker', async () => {
    const op = fc.record({
      f: fc.constantFrom('put', 'get', 'cas', 'delete'),
      a: fc.constantFrom(null, 'a', 'b', 'c'),
      b: fc.constantFrom(null, 'a', 'b'),
      start: fc.integer({ min: 0, max: 20 }),
      len: fc.integer({ min: 0, max: 15 }),
      type: fc.constantFrom('ok', 'ok', 'ok', 'info', 'fail'),
      deleted: fc.constantFrom(null, true, false),
    });
    let nonLinearizable = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 7 }), async (ops) => {
        const events: { e: HistoryEvent; t: number; c: number }[] = [];
        ops.forEach((o, p) => {
          const put = o.f === 'put' ? (o.a ?? 'a') : null;
          const value = o.f === 'cas' ? [o.a, o.b] : put;
          events.push({
            e: { process: p, type: 'invoke', f: o.f, key: 'k', value, time: o.start },
            t: o.start,
            c: 0,
          });
          const result =
            o.f === 'get' ? (o.type === 'ok' ? o.a : null) : o.f === 'delete' ? o.deleted : value;
          const t = o.start + o.len;
          events.push({ e: { process: p, type: o.type, f: o.f, key: 'k', value: result, time: t }, t, c: 1 });
        });
        events.sort((x, y) => x.t - y.t || x.c - y.c);
        const h = events.map((x) => x.e);
        const naive = naiveLinearizable(h);
        if (!naive) nonLinearizable++;
        expect(await check(h)).toBe(naive);
      }),
      { seed: 13, numRuns: 2000 },
    );
    expect(nonLinearizable).toBeGreaterThan(200);
  });
});

describe('property: transactions, against the brute-force checker', () => {
  const withTxns = fc.record({
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    ops: fc.integer({ min: 2, max: 8 }),
    keys: fc.integer({ min: 2, max: 3 }),
    processes: fc.integer({ min: 2, max: 4 }),
    infoRatio: fc.constantFrom(0, 0.2),
    failRatio: fc.constantFrom(0, 0.1),
    txnRatio: fc.constantFrom(0.3, 0.6),
    deleteRatio: fc.constantFrom(0, 0.2),
    maxLatency: fc.integer({ min: 4, max: 40 }),
  });

  it('real executions with atomic two-key transactions are linearizable', async () => {
    await fc.assert(
      fc.asyncProperty(withTxns, async (o) => {
        const h = simulateHistory(o);
        expect(naiveLinearizable(h)).toBe(true);
        expect(await check(h)).toBe(true);
      }),
      { seed: 17, numRuns: 400 },
    );
  });

  it('a planted non-atomic transaction: the same answer as the naive checker, and some are caught', async () => {
    let caught = 0;
    await fc.assert(
      fc.asyncProperty(withTxns, async (o) => {
        const h = simulateHistory({ ...o, tornTxns: true });
        const naive = naiveLinearizable(h);
        if (!naive) caught++;
        expect(await check(h)).toBe(naive);
      }),
      { seed: 19, numRuns: 600 },
    );
    expect(caught).toBeGreaterThan(20);
  });

  it('corrupted executions with transactions: the same answer as the naive checker', async () => {
    let nonLinearizable = 0;
    await fc.assert(
      fc.asyncProperty(withTxns, fc.nat(), fc.nat(), async (o, pick, how) => {
        const h = simulateHistory(o).map((e) => ({ ...e }));
        // Change one value that a completed transaction read, or flip the branch it took.
        const done = h.flatMap((e, i) => (e.f === 'txn' && e.type === 'ok' ? [i] : []));
        if (done.length > 0) {
          const ci = done[pick % done.length]!;
          const e = h[ci]!;
          const inv = h.slice(0, ci).findLast((x) => x.process === e.process && x.type === 'invoke')!;
          const spec = inv.value as { success: { op: string }[]; failure: { op: string }[] };
          const out = e.value as { succeeded: boolean; reads: (string | null)[] };
          if (how % 3 === 0 || out.reads.length === 0) {
            const gets = (out.succeeded ? spec.failure : spec.success).filter((x) => x.op === 'get').length;
            e.value = { succeeded: !out.succeeded, reads: new Array(gets).fill(null) };
          } else {
            const reads = [...out.reads];
            reads[how % reads.length] = how % 2 ? null : `0-${how % 5}`;
            e.value = { ...out, reads };
          }
        }
        const naive = naiveLinearizable(h);
        if (!naive) nonLinearizable++;
        expect(await check(h)).toBe(naive);
      }),
      { seed: 23, numRuns: 800 },
    );
    expect(nonLinearizable).toBeGreaterThan(100);
  });
});
