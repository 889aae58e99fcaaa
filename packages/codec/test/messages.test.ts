import { type Message, messageTypes } from '@quorate/raft';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  defaultWireLimits,
  encodeMessageFrame,
  FRAME_HEADER_BYTES,
  FrameKind,
  frame,
  isTransportError,
  MessageCode,
  messageFromTuple,
  PROTOCOL_VERSION,
  TransportErrorCode,
} from '../src/index.js';
import { arbMessage } from './arbitraries.js';

const packr = new Packr({ useRecords: false });
const ctxFor = (m: Message) => ({ clusterId: 'c1', peer: m.from, local: m.to, limits: defaultWireLimits });
const payloadOf = (f: Buffer) => f.subarray(FRAME_HEADER_BYTES);
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array
    ? { bytes: [...v] }
    : Array.isArray(v)
      ? v.map(plain)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
        : v;

function refused(t: unknown, code: string = TransportErrorCode.InvalidMessage): string {
  try {
    messageFromTuple(t, 'n1', 'n2');
  } catch (err) {
    expect(isTransportError(err, code as never)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(t)}`);
}

describe('message tuples', () => {
  it('every message type survives encode → frame → decode unchanged', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        const f = encodeMessageFrame('c1', m);
        expect(f.readUInt32BE(0)).toBe(f.byteLength - FRAME_HEADER_BYTES);
        const back = decodeMessage(payloadOf(f), ctxFor(m));
        expect(plain(back)).toEqual(plain(m));
        if (m.type === 'append') {
          for (const [i, e] of (back as typeof m).entries.entries()) {
            expect(e.data).toBeInstanceOf(Uint8Array);
            expect(Buffer.compare(Buffer.from(e.data), Buffer.from(m.entries[i]!.data))).toBe(0);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('has a code for every core message type', () => {
    expect(Object.keys(MessageCode).sort()).toEqual([...messageTypes].sort());
    expect(new Set(Object.values(MessageCode)).size).toBe(messageTypes.length);
  });

  it('decoded entry data does not share memory with the frame', () => {
    const m: Message = {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      commit: 0,
      entries: [{ index: 1, term: 1, type: 0, data: new Uint8Array([1, 2, 3]) }],
    };
    const f = encodeMessageFrame('c1', m);
    const back = decodeMessage(payloadOf(f), ctxFor(m)) as typeof m;
    f.fill(0);
    expect([...back.entries[0]!.data]).toEqual([1, 2, 3]);
  });

  it('refuses wrong types, missing fields, bad integers and unknown types', () => {
    expect(refused([MessageCode.heartbeat, 1, 0])).toMatch(/heartbeat message has 3 fields/);
    expect(refused([MessageCode.heartbeat, 1, 0, 0, 0])).toMatch(/has 3 fields, this one 4/);
    expect(refused([MessageCode.heartbeat, -1, 0, 0])).toMatch(/term must be a non-negative integer/);
    expect(refused([MessageCode.heartbeat, 1.5, 0, 0])).toMatch(/term/);
    expect(refused([MessageCode.heartbeat, 2 ** 53, 0, 0])).toMatch(/term/);
    expect(refused([MessageCode.heartbeat, '1', 0, 0])).toMatch(/term/);
    expect(refused([MessageCode.heartbeat, 1n, 0, 0])).toMatch(/64-bit/);
    expect(refused([MessageCode.heartbeat, 1, null, 0])).toMatch(/commit/);
    expect(refused([MessageCode.voteResponse, 1, 0])).toMatch(/reject must be a boolean/);
    expect(refused([99, 1])).toMatch(/unknown message type 99/);
    expect(refused(['append', 1])).toMatch(/unknown message type/);
    expect(refused({ type: 'heartbeat' })).toMatch(/must be an array/);
    expect(refused(new Map())).toMatch(/must be an array/);
    expect(refused([MessageCode.readIndex, 1, Number.NaN])).toMatch(/requestId/);
    expect(refused([MessageCode.readIndex, 1, Number.POSITIVE_INFINITY])).toMatch(/requestId/);
  });

  it('refuses appends whose entries break what every leader guarantees', () => {
    const d = new Uint8Array(1);
    const a = (prev: number, prevTerm: number, term: number, entries: unknown) => [
      MessageCode.append,
      term,
      prev,
      prevTerm,
      0,
      entries,
    ];
    expect(() =>
      messageFromTuple(
        a(5, 1, 2, [
          [6, 1, 0, d],
          [7, 2, 1, d],
        ]),
        'n1',
        'n2',
      ),
    ).not.toThrow();
    expect(refused(a(5, 1, 2, [[7, 1, 0, d]]))).toMatch(/index is 7, expected 6/);
    expect(
      refused(
        a(5, 1, 2, [
          [6, 2, 0, d],
          [7, 1, 0, d],
        ]),
      ),
    ).toMatch(/term 1 is outside/);
    expect(refused(a(5, 1, 2, [[6, 3, 0, d]]))).toMatch(/outside \[1, 2\]/);
    expect(refused(a(5, 3, 2, []))).toMatch(/prevTerm 3 is above/);
    expect(refused(a(5, 1, 2, [[6, 1, 2, d]]))).toMatch(/type must be 0 or 1/);
    expect(refused(a(5, 1, 2, [[6, 1, 0, 'text']]))).toMatch(/data must be bytes/);
    expect(refused(a(5, 1, 2, [[6, 1, 0]]))).toMatch(/entry 0 must be/);
    expect(refused(a(5, 1, 2, 'nope'))).toMatch(/entries must be an array/);
    const many = Array.from({ length: defaultWireLimits.maxEntries + 1 }, (_, i) => [6 + i, 1, 0, d]);
    expect(refused(a(5, 1, 2, many))).toMatch(/more than 16384/);
  });

  it('refuses snapshot memberships with bad or too many ids', () => {
    const s = (voters: unknown) => [MessageCode.snapshot, 1, 5, 1, voters, [], []];
    expect(() => messageFromTuple(s(['n1', 'n2']), 'n1', 'n2')).not.toThrow();
    expect(refused(s(['n1', '']))).toMatch(/invalid node id/);
    expect(refused(s(['x'.repeat(257)]))).toMatch(/invalid node id/);
    expect(refused(s([1]))).toMatch(/invalid node id/);
    expect(refused(s(Array.from({ length: 1025 }, (_, i) => `n${i}`)))).toMatch(/more than 1024/);
  });

  it('refuses envelopes of another version, cluster, sender or recipient', () => {
    const m: Message = { type: 'timeoutNow', from: 'n1', to: 'n2', term: 3 };
    const env = (v: unknown, c: unknown, from: unknown, to: unknown) =>
      packr.pack([FrameKind.Message, v, c, from, to, [MessageCode.timeoutNow, 3]]);
    const ctx = ctxFor(m);
    expect(decodeMessage(env(PROTOCOL_VERSION, 'c1', 'n1', 'n2'), ctx)).toEqual(m);
    const code = (p: Buffer) => {
      try {
        decodeMessage(p, ctx);
      } catch (err) {
        return (err as { code: string }).code;
      }
      return 'accepted';
    };
    expect(code(env(2, 'c1', 'n1', 'n2'))).toBe(TransportErrorCode.VersionMismatch);
    expect(code(env(PROTOCOL_VERSION, 'c2', 'n1', 'n2'))).toBe(TransportErrorCode.ClusterMismatch);
    expect(code(env(PROTOCOL_VERSION, 'c1', 'n3', 'n2'))).toBe(TransportErrorCode.Misrouted);
    expect(code(env(PROTOCOL_VERSION, 'c1', 'n1', 'n3'))).toBe(TransportErrorCode.Misrouted);
    expect(code(packr.pack([FrameKind.Hello, 1]))).toBe(TransportErrorCode.InvalidMessage);
    expect(code(Buffer.from([0x92]))).toBe(TransportErrorCode.MalformedFrame);
    expect(code(Buffer.alloc(0))).toBe(TransportErrorCode.MalformedFrame);
    const whole = encodeMessageFrame('c1', m);
    expect(code(payloadOf(whole).subarray(0, -1))).toBe(TransportErrorCode.MalformedFrame);
    expect(code(Buffer.concat([payloadOf(whole), Buffer.from([0])]))).toBe(TransportErrorCode.MalformedFrame);
    expect(frame(payloadOf(whole))).toEqual(whole);
  });

  it('never throws anything but a FrameError on random or mutated bytes', () => {
    const valid = encodeMessageFrame('c1', {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 2,
      prevIndex: 1,
      prevTerm: 1,
      commit: 1,
      entries: [{ index: 2, term: 2, type: 0, data: new Uint8Array(40) }],
    });
    const ctx = { clusterId: 'c1', peer: 'n1', local: 'n2', limits: defaultWireLimits };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 200 }),
          fc.tuple(fc.nat(valid.byteLength - 5), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
            const p = Buffer.from(payloadOf(valid));
            p[i] = b;
            return p;
          }),
        ),
        (bytes) => {
          try {
            decodeMessage(bytes, ctx);
          } catch (err) {
            expect(isTransportError(err)).toBe(true);
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
