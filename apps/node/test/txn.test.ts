import { describe, expect, it } from 'vitest';
import { type Command, decodeCommand, encodeCommand } from '../src/state/commands.js';
import { QuorateMachine } from '../src/state/machine.js';

const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : null);

function run(m: QuorateMachine, cmds: Command[], from = 1) {
  return cmds.map((c, i) => m.apply({ index: from + i, term: 1, type: 0, data: encodeCommand(c) }).result);
}

describe('transactions in the state machine', () => {
  it('apply one branch, atomically, by version, value and existence', () => {
    const m = new QuorateMachine();
    const [, , t1, t2] = run(m, [
      { op: 'put', key: 'a', value: enc('1') },
      { op: 'put', key: 'b', value: enc('x') },
      {
        op: 'txn',
        compare: [
          { key: 'a', version: 1 },
          { key: 'b', value: enc('x') },
          { key: 'c', exists: false },
        ],
        success: [
          { op: 'put', key: 'a', value: enc('2') },
          { op: 'delete', key: 'b' },
          { op: 'put', key: 'c', value: enc('new') },
          { op: 'get', key: 'a' },
        ],
        failure: [{ op: 'get', key: 'a' }],
      },
      {
        op: 'txn',
        compare: [{ key: 'a', version: 1 }],
        success: [{ op: 'put', key: 'a', value: enc('never') }],
        failure: [
          { op: 'get', key: 'a' },
          { op: 'get', key: 'b' },
        ],
      },
    ]);
    expect(t1).toMatchObject({ ok: true, op: 'txn', succeeded: true, index: 3 });
    const r1 = (t1 as { results: { op: string; value?: Uint8Array; version?: number; deleted?: boolean }[] })
      .results;
    expect(r1.map((r) => r.op)).toEqual(['put', 'delete', 'put', 'get']);
    expect(r1[1]!.deleted).toBe(true);
    expect(text(r1[3]!.value)).toBe('2');
    expect(t2).toMatchObject({ ok: true, succeeded: false });
    const r2 = (t2 as { results: { value: Uint8Array | null; version: number }[] }).results;
    expect([text(r2[0]!.value), r2[0]!.version, r2[1]!.value, r2[1]!.version]).toEqual(['2', 2, null, 0]);
    expect(text(m.get('a')?.value)).toBe('2');
    expect(m.get('b')).toBeUndefined();
    expect(text(m.get('c')?.value)).toBe('new');
  });

  it('a retried transaction is applied once (its result is replayed)', () => {
    const m = new QuorateMachine();
    const t: Command = {
      op: 'txn',
      compare: [],
      success: [{ op: 'put', key: 'n', value: enc('1') }],
      failure: [],
      ref: { client: 'c1', seq: 1 },
    };
    const a = m.apply({ index: 1, term: 1, type: 0, data: encodeCommand(t) });
    const b = m.apply({ index: 2, term: 1, type: 0, data: encodeCommand(t) });
    expect(b.duplicate).toBe(true);
    expect(b.result).toEqual(a.result);
    expect(m.get('n')!.version).toBe(1);
  });

  it('round-trips through the log encoding, and a malformed one is refused', () => {
    const t: Command = {
      op: 'txn',
      compare: [
        { key: 'a', version: 0, exists: false },
        { key: 'b', value: enc('v') },
      ],
      success: [{ op: 'put', key: 'a', value: enc('1') }],
      failure: [
        { op: 'delete', key: 'b' },
        { op: 'get', key: 'c' },
      ],
      ref: { client: 'x', seq: 9 },
    };
    const back = decodeCommand(encodeCommand(t));
    expect(back.op).toBe('txn');
    expect(Buffer.from(encodeCommand(back)).equals(Buffer.from(encodeCommand(t)))).toBe(true);
    const bad = new Uint8Array(encodeCommand(t));
    expect(() => decodeCommand(bad.subarray(0, bad.length - 3))).toThrow();
  });
});
