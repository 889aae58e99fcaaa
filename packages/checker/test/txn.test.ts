/**
 * Transactions: keys tied together are searched as one object, a torn transaction is
 * caught and reported, and the history format says what is wrong with a bad one.
 */
import { describe, expect, it } from 'vitest';
import { checkHistory, findLostWrites, type HistoryEvent, parseHistory } from '../src/index.js';

const ev = (
  process: number,
  type: HistoryEvent['type'],
  f: string,
  value: unknown,
  time: number,
  key = 'k',
): HistoryEvent => ({ process, type, f, key, value, time });

const transfer = {
  compare: [{ key: 'a', value: 'a0' }],
  success: [
    { op: 'put', key: 'a', value: 'a1' },
    { op: 'put', key: 'b', value: 'b1' },
  ],
  failure: [
    { op: 'get', key: 'a' },
    { op: 'get', key: 'b' },
  ],
};
const readBoth = {
  success: [
    { op: 'get', key: 'a' },
    { op: 'get', key: 'b' },
  ],
};

/** a = a0, b = b0; then a transfer; then a read of both keys, concurrent with nothing. */
function setup(read: [string | null, string | null], transferOutcome = { succeeded: true, reads: [] }) {
  return [
    ev(0, 'invoke', 'put', 'a0', 0, 'a'),
    ev(0, 'ok', 'put', 'a0', 1, 'a'),
    ev(0, 'invoke', 'put', 'b0', 2, 'b'),
    ev(0, 'ok', 'put', 'b0', 3, 'b'),
    ev(1, 'invoke', 'txn', transfer, 10),
    ev(1, 'ok', 'txn', transferOutcome, 20),
    ev(2, 'invoke', 'txn', readBoth, 30),
    ev(2, 'ok', 'txn', { succeeded: true, reads: read }, 40),
  ];
}

describe('transactions', () => {
  it('an atomic read after an atomic transfer sees all of it', async () => {
    const r = await checkHistory(setup(['a1', 'b1']));
    expect(r.linearizable).toBe(true);
    // Both keys and the transactions were searched as one group.
    expect(r.keys).toBe(2);
    expect(r.groups).toBe(1);
  });

  it('a read that sees half a transfer is not linearizable, and the report names the group and the keys', async () => {
    const r = await checkHistory(setup(['a1', 'b0']));
    expect(r.linearizable).toBe(false);
    const f = r.failures[0]!;
    expect(f.key).toBe('a, b');
    expect(f.op.text).toBe('txn true held: [get a -> "a1"; get b -> "b0"]');
    expect(f.reason).toContain(`process 2's txn true held: [get a -> "a1"; get b -> "b0"]`);
  });

  it('a transfer whose compare failed must have found another value', async () => {
    // It reports failure and reads a0: the compare held, so the branch is impossible.
    const r = await checkHistory(setup(['a0', 'b0'], { succeeded: false, reads: ['a0', 'b0'] } as never));
    expect(r.linearizable).toBe(false);
  });

  it('a transfer with an unknown outcome may have happened, or not', async () => {
    for (const read of [
      ['a1', 'b1'],
      ['a0', 'b0'],
    ] as [string, string][]) {
      const h = setup(read);
      h[5] = ev(1, 'info', 'txn', null, 20);
      expect((await checkHistory(h)).linearizable).toBe(true);
    }
    const torn = setup(['a1', 'b0']);
    torn[5] = ev(1, 'info', 'txn', null, 20);
    expect((await checkHistory(torn)).linearizable).toBe(false);
  });

  it('exists compares and deletes inside transactions', async () => {
    const h = [
      ev(
        0,
        'invoke',
        'txn',
        {
          compare: [{ key: 'x', exists: false }],
          success: [
            { op: 'put', key: 'x', value: '1' },
            { op: 'delete', key: 'y' },
          ],
        },
        0,
      ),
      ev(0, 'ok', 'txn', { succeeded: true, reads: [] }, 5),
      ev(
        1,
        'invoke',
        'txn',
        {
          compare: [{ key: 'x', exists: true }],
          success: [
            { op: 'get', key: 'x' },
            { op: 'get', key: 'y' },
          ],
        },
        10,
      ),
      ev(1, 'ok', 'txn', { succeeded: true, reads: ['1', null] }, 15),
    ];
    expect((await checkHistory(h)).linearizable).toBe(true);
    h[3] = ev(1, 'ok', 'txn', { succeeded: false, reads: [] }, 15);
    expect((await checkHistory(h)).linearizable).toBe(false);
  });

  it('a malformed transaction is refused with what is wrong; version compares are not modeled', async () => {
    await expect(
      parseHistory([ev(0, 'invoke', 'txn', { compare: [{ key: 'a', version: 3 }] }, 0)]),
    ).rejects.toThrow(/version compares are not modeled/);
    await expect(
      parseHistory([ev(0, 'invoke', 'txn', { success: [{ op: 'put', key: 'a' }] }, 0)]),
    ).rejects.toThrow(/a step \{"op":"put","key":"a"\}/);
    await expect(
      parseHistory([
        ev(0, 'invoke', 'txn', readBoth, 0),
        ev(0, 'ok', 'txn', { succeeded: true, reads: ['x'] }, 1),
      ]),
    ).rejects.toThrow(/the success branch has 2 get\(s\)/);
  });

  it('an unknown read-only transaction constrains nothing and is dropped', async () => {
    const p = await parseHistory([ev(0, 'invoke', 'txn', readBoth, 0), ev(0, 'info', 'txn', null, 1)]);
    expect(p.ops).toHaveLength(0);
    expect(p.counts.droppedReads).toBe(1);
  });

  it('lost writes: a transaction acknowledged, and a replica without its write', async () => {
    const { ops } = await parseHistory(setup(['a1', 'b1']));
    const finals = new Map([
      [
        'n1',
        new Map([
          ['a', 'a1'],
          ['b', 'b1'],
        ]),
      ],
      [
        'n2',
        new Map([
          ['a', 'a1'],
          ['b', 'b0'],
        ]),
      ],
    ]);
    const lost = findLostWrites(ops, finals);
    expect(lost).toEqual([{ key: 'b', replica: 'n2', wrote: 'b1', process: 1, found: 'b0' }]);
  });
});
