import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Command, decodeCommand, encodeCommand } from '../src/state/commands.js';
import { QuorateMachine } from '../src/state/machine.js';
import { SortedKeys } from '../src/state/sorted-keys.js';

const enc = (s: string) => new TextEncoder().encode(s);

function run(m: QuorateMachine, cmds: Command[], from = 1) {
  return cmds.map((c, i) => m.apply({ index: from + i, term: 1, type: 0, data: encodeCommand(c) }));
}

describe('the replicated state machine', () => {
  it('puts, versions, compare-and-set by version and by value, deletes', () => {
    const m = new QuorateMachine();
    const r = run(m, [
      { op: 'put', key: 'a', value: enc('1') },
      { op: 'put', key: 'a', value: enc('2') },
      { op: 'put', key: 'a', value: enc('3'), ifVersion: 1 },
      { op: 'put', key: 'a', value: enc('3'), ifVersion: 2 },
      { op: 'put', key: 'a', value: enc('4'), ifValue: enc('nope') },
      { op: 'put', key: 'a', value: enc('4'), ifValue: enc('3') },
      { op: 'put', key: 'b', value: enc('x'), ifVersion: 0 },
      { op: 'put', key: 'b', value: enc('y'), ifVersion: 0 },
      { op: 'delete', key: 'b', ifVersion: 5 },
      { op: 'delete', key: 'b' },
      { op: 'delete', key: 'b' },
    ]).map((x) => x.result);
    expect(r[0]).toMatchObject({ ok: true, version: 1, created: true, index: 1 });
    expect(r[1]).toMatchObject({ ok: true, version: 2, created: false });
    expect(r[2]).toEqual({ ok: false, code: 'CAS_FAILED', current: { version: 2, modIndex: 2 } });
    expect(r[3]).toMatchObject({ ok: true, version: 3 });
    expect(r[4]).toMatchObject({ ok: false, code: 'CAS_FAILED' });
    expect(r[5]).toMatchObject({ ok: true, version: 4 });
    expect(r[6]).toMatchObject({ ok: true, version: 1, created: true });
    expect(r[7]).toMatchObject({ ok: false, code: 'CAS_FAILED' });
    expect(r[8]).toMatchObject({ ok: false, code: 'CAS_FAILED' });
    expect(r[9]).toMatchObject({ ok: true, deleted: true });
    expect(r[10]).toMatchObject({ ok: true, deleted: false });
    expect(new TextDecoder().decode(m.get('a')!.value)).toBe('4');
    expect(m.get('b')).toBeUndefined();
  });

  it('a retried write returns the original result instead of applying twice', () => {
    const m = new QuorateMachine();
    const ref = { client: 'c1', seq: 1 };
    const [first, again] = run(m, [
      { op: 'put', key: 'k', value: enc('v'), ref },
      { op: 'put', key: 'k', value: enc('v'), ref },
    ]);
    expect(first!.duplicate).toBe(false);
    expect(again!.duplicate).toBe(true);
    expect(again!.result).toEqual(first!.result);
    expect(m.get('k')!.version).toBe(1);
  });

  it('a sequence that fell out of the client window is refused as stale', () => {
    const m = new QuorateMachine({ sessionWindow: 4 });
    const cmds: Command[] = [];
    for (let s = 1; s <= 10; s++)
      cmds.push({ op: 'put', key: 'k', value: enc(`${s}`), ref: { client: 'c', seq: s } });
    cmds.push({ op: 'put', key: 'k', value: enc('old'), ref: { client: 'c', seq: 2 } });
    const r = run(m, cmds);
    expect(r.at(-1)!.result).toEqual({ ok: false, code: 'STALE_SEQUENCE', highest: 10 });
    expect(new TextDecoder().decode(m.get('k')!.value)).toBe('10');
  });

  it('leases: one holder at a time, tokens from the log index, renew, release, expire', () => {
    const m = new QuorateMachine();
    const r = run(m, [
      { op: 'acquire', name: 'job', holder: 'a', ttlMs: 1000 },
      { op: 'acquire', name: 'job', holder: 'b', ttlMs: 1000 },
      { op: 'renew', name: 'job', holder: 'a', token: 1 },
      { op: 'renew', name: 'job', holder: 'b', token: 1 },
      { op: 'expire', name: 'job', token: 99, renewedIndex: 3 },
      { op: 'expire', name: 'job', token: 1, renewedIndex: 3 },
      { op: 'renew', name: 'job', holder: 'a', token: 1 },
      { op: 'acquire', name: 'job', holder: 'b', ttlMs: 500 },
      { op: 'release', name: 'job', holder: 'a', token: 1 },
      { op: 'release', name: 'job', holder: 'b', token: 8 },
    ]).map((x) => x.result);
    expect(r[0]).toMatchObject({ ok: true, lease: { holder: 'a', token: 1 } });
    expect(r[1]).toMatchObject({ ok: false, code: 'LEASE_HELD', lease: { holder: 'a' } });
    expect(r[2]).toMatchObject({ ok: true, lease: { token: 1, renewedIndex: 3 } });
    expect(r[3]).toMatchObject({ ok: false, code: 'LEASE_LOST' });
    expect(r[4]).toEqual({ ok: true, op: 'expire', expired: false });
    expect(r[5]).toEqual({ ok: true, op: 'expire', expired: true });
    expect(r[6]).toMatchObject({ ok: false, code: 'LEASE_LOST', lease: null });
    expect(r[7]).toMatchObject({ ok: true, lease: { holder: 'b', token: 8 } });
    expect(r[8]).toEqual({ ok: true, op: 'release', released: false });
    expect(r[9]).toEqual({ ok: true, op: 'release', released: true });
  });

  it('an expiry decided before a renewal that committed first leaves the lease to its holder', () => {
    // The leader saw the grant of index 1 lapse and proposed its expiry; the holder's
    // renewal (index 2) was committed first and answered as a success. The holder now
    // counts on a TTL from that renewal: the stale expiry must not take the lease away.
    const m = new QuorateMachine();
    const r = run(m, [
      { op: 'acquire', name: 'job', holder: 'a', ttlMs: 1000 },
      { op: 'renew', name: 'job', holder: 'a', token: 1 },
      { op: 'expire', name: 'job', token: 1, renewedIndex: 1 },
      { op: 'acquire', name: 'job', holder: 'b', ttlMs: 1000 },
      { op: 'expire', name: 'job', token: 1, renewedIndex: 2 },
      { op: 'acquire', name: 'job', holder: 'b', ttlMs: 1000 },
    ]).map((x) => x.result);
    expect(r[1]).toMatchObject({ ok: true, op: 'renew', lease: { token: 1, renewedIndex: 2 } });
    expect(r[2]).toEqual({ ok: true, op: 'expire', expired: false });
    expect(r[3]).toMatchObject({ ok: false, code: 'LEASE_HELD', lease: { holder: 'a' } });
    expect(r[4]).toEqual({ ok: true, op: 'expire', expired: true });
    expect(r[5]).toMatchObject({ ok: true, lease: { holder: 'b', token: 6 } });
  });

  it('fencing tokens only grow, across leases', () => {
    const m = new QuorateMachine();
    const r = run(m, [
      { op: 'acquire', name: 'x', holder: 'a', ttlMs: 1000 },
      { op: 'acquire', name: 'y', holder: 'b', ttlMs: 1000 },
      { op: 'release', name: 'x', holder: 'a', token: 1 },
      { op: 'acquire', name: 'x', holder: 'c', ttlMs: 1000 },
    ]).map((x) => x.result);
    const tokens = [r[0], r[1], r[3]].map((x) => (x as { lease: { token: number } }).lease.token);
    expect(tokens).toEqual([1, 2, 4]);
  });

  it('lists keys by prefix, in order, with a limit', () => {
    const m = new QuorateMachine();
    run(
      m,
      ['b/2', 'a/1', 'b/1', 'b/3', 'c'].map((k) => ({ op: 'put' as const, key: k, value: enc(k) })),
    );
    expect(m.list('b/', 2).items.map((i) => i.key)).toEqual(['b/1', 'b/2']);
    expect(m.list('b/', 2).more).toBe(true);
    expect(m.list('b/', 10).more).toBe(false);
    expect(m.list('', 10).items.map((i) => i.key)).toEqual(['a/1', 'b/1', 'b/2', 'b/3', 'c']);
    expect(m.list('b/', 10, 'b/1').items.map((i) => i.key)).toEqual(['b/2', 'b/3']);
    expect(m.list('', 2, 'b/3').items.map((i) => i.key)).toEqual(['c']);
  });

  it('replicas that apply the same entries have the same hash', () => {
    const cmds: Command[] = [
      { op: 'put', key: 'a', value: enc('1'), ref: { client: 'c', seq: 1 } },
      { op: 'acquire', name: 'l', holder: 'h', ttlMs: 100 },
      { op: 'delete', key: 'a' },
    ];
    const a = new QuorateMachine();
    const b = new QuorateMachine();
    run(a, cmds);
    run(b, cmds);
    expect(a.hash()).toBe(b.hash());
    run(b, [{ op: 'put', key: 'z', value: enc('') }], 4);
    expect(a.hash()).not.toBe(b.hash());
  });

  it('a malformed entry is an error, never a guess', () => {
    const m = new QuorateMachine();
    expect(() => m.apply({ index: 1, term: 1, type: 0, data: enc('not msgpack {') })).toThrow();
    expect(() =>
      decodeCommand(encodeCommand({ op: 'expire', name: 'x', token: 1, renewedIndex: 1 }).slice(0, 3)),
    ).toThrow();
  });

  it('commands survive encode and decode', () => {
    const cmds: Command[] = [
      { op: 'put', key: 'k', value: enc('v'), ifVersion: 3, ref: { client: 'c', seq: 9 } },
      { op: 'put', key: 'k', value: new Uint8Array([0, 255]), ifValue: enc('old') },
      { op: 'delete', key: 'k' },
      { op: 'acquire', name: 'n', holder: 'h', ttlMs: 5 },
      { op: 'renew', name: 'n', holder: 'h', token: 4 },
      { op: 'release', name: 'n', holder: 'h', token: 4 },
      { op: 'expire', name: 'n', token: 4, renewedIndex: 6 },
    ];
    // msgpackr hands back Buffers (a Uint8Array subclass): compare the bytes.
    const plain = (x: unknown): unknown =>
      x instanceof Uint8Array
        ? [...x]
        : x && typeof x === 'object'
          ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]))
          : x;
    for (const c of cmds) expect(plain(decodeCommand(encodeCommand(c)))).toEqual(plain(c));
  });
});

describe('SortedKeys against a sorted array', () => {
  it('agrees on every operation sequence', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.boolean(), fc.string({ unit: fc.constantFrom('a', 'b', 'c', '/'), maxLength: 4 })),
          {
            maxLength: 3000,
          },
        ),
        fc.string({ unit: fc.constantFrom('a', 'b', '/'), maxLength: 2 }),
        (ops, prefix) => {
          const s = new SortedKeys();
          const naive = new Set<string>();
          for (const [add, k] of ops) {
            if (add) {
              s.add(k);
              naive.add(k);
            } else {
              s.delete(k);
              naive.delete(k);
            }
          }
          const all = [...naive].sort();
          expect([...s]).toEqual(all);
          expect(s.size).toBe(all.length);
          const want = all.filter((k) => k.startsWith(prefix));
          expect(s.prefix(prefix, 5).keys).toEqual(want.slice(0, 5));
          expect(s.prefix(prefix, 5).more).toBe(want.length > 5);
          if (want.length > 1) {
            const cursor = want[0]!;
            expect(s.prefix(prefix, 1000, cursor).keys).toEqual(want.slice(1));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
