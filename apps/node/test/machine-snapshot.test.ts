import { describe, expect, it } from 'vitest';
import { type Command, encodeCommand } from '../src/state/commands.js';
import { QuorateMachine } from '../src/state/machine.js';

const enc = (s: string) => new TextEncoder().encode(s);
function run(m: QuorateMachine, cmds: Command[], from = 1) {
  for (const [i, c] of cmds.entries()) m.apply({ index: from + i, term: 1, type: 0, data: encodeCommand(c) });
}
async function* stream(chunks: Iterable<Uint8Array>) {
  for (const c of chunks) yield c;
}

describe('state machine snapshots', () => {
  it('restore gives back exactly the same state (same hash), keys, leases and sessions', async () => {
    const a = new QuorateMachine();
    const cmds: Command[] = [];
    for (let i = 0; i < 20_000; i++) {
      cmds.push({
        op: 'put',
        key: `k/${(i * 7919) % 20_000}`,
        value: enc(`v${i}`),
        ref: { client: `c${i % 5}`, seq: Math.floor(i / 5) + 1 },
      });
    }
    cmds.push({ op: 'acquire', name: 'job', holder: 'h', ttlMs: 1000 });
    cmds.push({ op: 'delete', key: 'k/3' });
    run(a, cmds);
    const chunks = [...a.snapshot()];
    expect(chunks.length).toBeGreaterThan(2);
    const b = new QuorateMachine();
    await b.restore(null, stream(chunks));
    expect(b.hash()).toBe(a.hash());
    expect(b.list('k/1', 5).items.map((i) => i.key)).toEqual(a.list('k/1', 5).items.map((i) => i.key));
    // Both go on identically, including exactly-once replays from before the snapshot.
    const more: Command[] = [
      { op: 'put', key: 'k/1', value: enc('again'), ref: { client: 'c0', seq: 4000 } },
      { op: 'put', key: 'z', value: enc('new') },
    ];
    run(a, more, cmds.length + 1);
    run(b, more, cmds.length + 1);
    expect(b.hash()).toBe(a.hash());
  });

  it('carries the addresses of members added by membership changes', async () => {
    const a = new QuorateMachine();
    a.recordMember('n4', { peerAddress: '127.0.0.1:7004', clientAddress: 'http://127.0.0.1:8084' });
    a.recordMember('n5', { peerAddress: '127.0.0.1:7005', clientAddress: 'http://127.0.0.1:8085' });
    a.recordMember('n5', null);
    run(a, [{ op: 'put', key: 'k', value: enc('v') }]);
    const b = new QuorateMachine();
    b.recordMember('stale', { peerAddress: 'x:1', clientAddress: 'http://x:2' });
    await b.restore(null, stream([...a.snapshot()]));
    expect([...b.memberAddresses]).toEqual([
      ['n4', { peerAddress: '127.0.0.1:7004', clientAddress: 'http://127.0.0.1:8084' }],
    ]);
  });

  it('the view is taken at once: writes after snapshot() do not leak into it', async () => {
    const a = new QuorateMachine();
    run(a, [{ op: 'put', key: 'x', value: enc('1') }]);
    const chunks = a.snapshot();
    run(
      a,
      [
        { op: 'put', key: 'x', value: enc('2') },
        { op: 'put', key: 'y', value: enc('3') },
      ],
      2,
    );
    const b = new QuorateMachine();
    await b.restore(null, stream([...chunks]));
    expect(new TextDecoder().decode(b.get('x')!.value)).toBe('1');
    expect(b.get('y')).toBeUndefined();
  });

  it('copy on write: deletes, re-adds and rewrites while the snapshot is read do not leak into it', async () => {
    const a = new QuorateMachine();
    const cmds: Command[] = [];
    for (let i = 0; i < 20_000; i++) cmds.push({ op: 'put', key: `k/${i}`, value: enc(`v${i}`) });
    run(a, cmds);
    const before = a.hash();
    const it = a.snapshot()[Symbol.iterator]();
    const chunks: Uint8Array[] = [it.next().value!]; // the header, then writes land mid-read
    run(
      a,
      [
        { op: 'delete', key: 'k/5' },
        { op: 'put', key: 'k/7', value: enc('changed') },
        { op: 'put', key: 'k/7', value: enc('changed again') },
        { op: 'delete', key: 'k/19999' },
        { op: 'put', key: 'k/19999', value: enc('back') },
        { op: 'put', key: 'new', value: enc('after the view') },
      ],
      cmds.length + 1,
    );
    for (let r = it.next(); !r.done; r = it.next()) chunks.push(r.value);
    const b = new QuorateMachine();
    await b.restore(null, stream(chunks));
    expect(b.hash()).toBe(before);
    expect(new TextDecoder().decode(b.get('k/7')!.value)).toBe('v7');
    expect(b.get('new')).toBeUndefined();
  });

  it('records stay small (one is built per turn of the event loop); a large value gets one of its own', async () => {
    const a = new QuorateMachine();
    const cmds: Command[] = [];
    for (let i = 0; i < 2000; i++) cmds.push({ op: 'put', key: `k/${i}`, value: new Uint8Array(256) });
    // Tiny records: the key count bounds them, not the bytes.
    for (let i = 0; i < 3000; i++) cmds.push({ op: 'put', key: `t/${i}`, value: new Uint8Array(0) });
    cmds.push({ op: 'put', key: 'big', value: new Uint8Array(300 * 1024) });
    run(a, cmds);
    const [, ...records] = [...a.snapshot()];
    for (const r of records) {
      // 64 KiB, give or take one key; the large value alone in its record.
      const big = r.byteLength > 300 * 1024;
      expect(r.byteLength).toBeLessThan(big ? 301 * 1024 : 66 * 1024);
    }
    expect(records.length).toBeGreaterThan((2000 * 256) / (64 * 1024));
    const b = new QuorateMachine();
    await b.restore(null, stream([...a.snapshot()]));
    expect(b.hash()).toBe(a.hash());
  });

  it('copy on write holds between every record: writes landing all along the read do not leak into it', async () => {
    const a = new QuorateMachine();
    const cmds: Command[] = [];
    for (let i = 0; i < 5000; i++)
      cmds.push({ op: 'put', key: `k/${i}`, value: new Uint8Array(200).fill(i) });
    run(a, cmds);
    const before = a.hash();
    let index = cmds.length + 1;
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const chunks: Uint8Array[] = [];
    const it = a.snapshot()[Symbol.iterator]();
    for (let r = it.next(); !r.done; r = it.next()) {
      chunks.push(r.value);
      // Between two records, as the runtime's turns let writes in: rewrites, deletes
      // and re-creations anywhere, ahead of and behind the reader.
      const writes: Command[] = [];
      for (let j = 0; j < 20; j++) {
        const key = `k/${rnd(5200)}`;
        writes.push(rnd(3) === 0 ? { op: 'delete', key } : { op: 'put', key, value: enc(`w${index + j}`) });
      }
      run(a, writes, index);
      index += writes.length;
    }
    expect(chunks.length).toBeGreaterThan(10);
    const b = new QuorateMachine();
    await b.restore(null, stream(chunks));
    expect(b.hash()).toBe(before);
  });

  it('a view survives a restore of the machine it was taken from', async () => {
    const a = new QuorateMachine();
    run(a, [
      { op: 'put', key: 'x', value: enc('1') },
      { op: 'put', key: 'y', value: enc('2') },
    ]);
    const before = a.hash();
    const view = a.snapshot();
    const other = new QuorateMachine();
    run(other, [{ op: 'put', key: 'z', value: enc('3') }]);
    await a.restore(null, stream([...other.snapshot()]));
    run(a, [{ op: 'put', key: 'x', value: enc('after restore') }], 2);
    const b = new QuorateMachine();
    await b.restore(null, stream([...view]));
    expect(b.hash()).toBe(before);
  });

  it('an unread view expires once four newer ones are taken, and says so if read', () => {
    const a = new QuorateMachine();
    run(a, [{ op: 'put', key: 'x', value: enc('1') }]);
    const first = a.snapshot()[Symbol.iterator]();
    first.next(); // started, never finished
    for (let i = 0; i < 4; i++) a.snapshot()[Symbol.iterator]().next();
    expect(() => first.next()).toThrow(/expired/);
  });

  it('restores the same state however a store or transport re-cut the bytes', async () => {
    const a = new QuorateMachine();
    const cmds: Command[] = [];
    for (let i = 0; i < 5000; i++) cmds.push({ op: 'put', key: `k${i}`, value: enc(`value ${i}`) });
    run(a, cmds);
    const whole = Buffer.concat([...a.snapshot()]);
    for (const size of [1, 7, 4096, 1 << 20]) {
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < whole.byteLength; at += size) pieces.push(whole.subarray(at, at + size));
      const b = new QuorateMachine();
      await b.restore(null, stream(pieces));
      expect(b.hash(), `pieces of ${size} bytes`).toBe(a.hash());
    }
    // Cut inside a record: refused, not half-restored.
    await expect(
      new QuorateMachine().restore(null, stream([whole.subarray(0, whole.byteLength - 3)])),
    ).rejects.toThrow(/ends inside a record/);
  });

  it('a truncated snapshot is refused', async () => {
    const a = new QuorateMachine();
    const cmds: Command[] = [];
    for (let i = 0; i < 20_000; i++) cmds.push({ op: 'put', key: `k${i}`, value: enc('v') });
    run(a, cmds);
    const chunks = [...a.snapshot()];
    await expect(new QuorateMachine().restore(null, stream(chunks.slice(0, -1)))).rejects.toThrow(
      /truncated/,
    );
  });
});
