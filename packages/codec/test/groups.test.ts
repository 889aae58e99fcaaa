import type { HostMessage } from '@quorate/raft';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  defaultWireLimits,
  encodeGroupMessageFrame,
  encodeHostFrame,
  FRAME_HEADER_BYTES,
  GROUPS_PROTOCOL_VERSION,
  GroupFrameKind,
  groupEnvelopeFrom,
  isTransportError,
  MessageCode,
  TransportErrorCode,
  unpackPayload,
} from '../src/index.js';
import { MAX_BEATS } from '../src/wire/groups.js';

const packr = new Packr({ useRecords: false });
const ctx = { clusterId: 'c1', peer: 'n1', local: 'n2', limits: defaultWireLimits };
const decode = (frame: Buffer) => groupEnvelopeFrom(unpackPayload(frame.subarray(FRAME_HEADER_BYTES)), ctx);
const hostEnvelope = (control: unknown, from = 'n1', to = 'n2') => [
  GroupFrameKind.Host,
  GROUPS_PROTOCOL_VERSION,
  'c1',
  from,
  to,
  control,
];

const hb = (term: number, commit: number, readRound = 0) =>
  ({ type: 'heartbeat', from: 'n1', to: 'n2', term, commit, readRound }) as const;
const hbr = (term: number, readRound = 0) =>
  ({ type: 'heartbeatResponse', from: 'n1', to: 'n2', term, readRound }) as const;

/** The message a refused envelope throws with, after checking its code. */
function refused(envelope: unknown, code: string = TransportErrorCode.InvalidMessage): string {
  try {
    groupEnvelopeFrom(envelope, ctx);
  } catch (err) {
    expect((err as { code?: string }).code).toBe(code);
    expect(isTransportError(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(envelope)}`);
}

describe('beats host messages', () => {
  it('carry heartbeats and answers of many groups, in order, unchanged', () => {
    const m: HostMessage = {
      type: 'beats',
      items: [
        { group: 0, msg: hb(3, 7, 2) },
        { group: 0xffff_ffff, msg: hbr(9, 1) },
        { group: 5, msg: hb(2 ** 40, 2 ** 40) },
        { group: 5, msg: hbr(1) },
      ],
    };
    expect(decode(encodeHostFrame('c1', 'n1', 'n2', m))).toEqual({ kind: 'host', msg: m });
    const full: HostMessage = {
      type: 'beats',
      items: Array.from({ length: MAX_BEATS }, (_, i) => ({
        group: 0xffff_ffff - i,
        msg: hb(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
      })),
    };
    const frame = encodeHostFrame('c1', 'n1', 'n2', full);
    // The largest beats message fits in the smallest frame a transport accepts (64 KiB),
    // with room for long ids in the envelope.
    expect(frame.byteLength).toBeLessThan(40 * 1024);
    expect(decode(frame)).toEqual({ kind: 'host', msg: full });
  });

  it('are refused when not an array, empty, too many, or with a bad item', () => {
    const beats = (items: unknown, extra: unknown[] = []) => hostEnvelope([3, items, ...extra]);
    const good = [7, [MessageCode.heartbeat, 1, 0, 0]];
    expect(refused(beats('x'))).toMatch(/beats must be an array/);
    expect(refused(beats(new Map()))).toMatch(/beats must be an array/);
    expect(refused(beats({ 0: good, length: 1 }))).toMatch(/beats must be an array/);
    expect(refused(beats([]))).toMatch(/1 to 1024 items, this one 0/);
    expect(refused(beats(Array.from({ length: MAX_BEATS + 1 }, () => good)))).toMatch(
      /1 to 1024 items, this one 1025/,
    );
    expect(refused(beats([good], [1]))).toMatch(/has 1 fields, this one 2/);
    expect(refused(hostEnvelope([3]))).toMatch(/has 1 fields, this one 0/);
    // Items: a pair of a group and a heartbeat or heartbeat response tuple.
    expect(refused(beats([good, 7]))).toMatch(/beat 1 must be an array \[group, message\]/);
    expect(refused(beats([[7]]))).toMatch(/beat 0 must be an array/);
    expect(refused(beats([[7, good[1], 1]]))).toMatch(/beat 0 must be an array/);
    for (const g of [-1, 1.5, 2 ** 32, '7', null, 2 ** 53])
      expect(refused(beats([[g, good[1]]]))).toMatch(/group/);
    expect(refused(beats([good, [1, [MessageCode.timeoutNow, 1]]]))).toMatch(
      /beat 1 must be a heartbeat or heartbeatResponse \(got type 9\)/,
    );
    expect(refused(beats([[1, [MessageCode.append, 1, 0, 0, 0, []]]]))).toMatch(
      /must be a heartbeat or heartbeatResponse/,
    );
    expect(refused(beats([[1, [MessageCode.vote, 1, 0, 0]]]))).toMatch(/must be a heartbeat/);
    expect(refused(beats([[1, 'heartbeat']]))).toMatch(/must be a heartbeat/);
    expect(refused(beats([[1, [MessageCode.heartbeat, 1, 0]]]))).toMatch(/heartbeat message has 3 fields/);
    expect(refused(beats([[1, [MessageCode.heartbeatResponse, -1, 0]]]))).toMatch(/term/);
    expect(refused(beats([[1, [MessageCode.heartbeat, 1, 0, 1.5]]]))).toMatch(/readRound/);
  });

  it('take their sender and recipient from the envelope, which the connection checks', () => {
    const items = [[1, [MessageCode.heartbeat, 1, 0, 0]]];
    const d = groupEnvelopeFrom(hostEnvelope([3, items]), ctx);
    expect(d).toEqual({ kind: 'host', msg: { type: 'beats', items: [{ group: 1, msg: hb(1, 0) }] } });
    expect(refused(hostEnvelope([3, items], 'n3', 'n2'), TransportErrorCode.Misrouted)).toMatch(/n3/);
    expect(refused(hostEnvelope([3, items], 'n1', 'n3'), TransportErrorCode.Misrouted)).toMatch(/n3/);
  });

  it('are never encoded empty or above the cap', () => {
    const many: HostMessage = {
      type: 'beats',
      items: Array.from({ length: MAX_BEATS + 1 }, () => ({ group: 1, msg: hb(1, 0) })),
    };
    expect(() => encodeHostFrame('c1', 'n1', 'n2', many)).toThrow(/1 to 1024 items/);
    expect(() => encodeHostFrame('c1', 'n1', 'n2', { type: 'beats', items: [] })).toThrow(/1 to 1024/);
  });

  it('never throw anything but a FrameError on mutated frames', () => {
    const valid = encodeHostFrame('c1', 'n1', 'n2', {
      type: 'beats',
      items: [
        { group: 3, msg: hb(4, 2, 1) },
        { group: 70_000, msg: hbr(5) },
      ],
    });
    const payload = valid.subarray(FRAME_HEADER_BYTES);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(payload.byteLength - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        (edits) => {
          const p = Buffer.from(payload);
          for (const [i, b] of edits) p[i] = b;
          try {
            const d = groupEnvelopeFrom(unpackPayload(p), ctx);
            // Whatever is accepted is well formed.
            if (d.kind === 'host' && d.msg.type === 'beats') {
              for (const it of d.msg.items) {
                expect(['heartbeat', 'heartbeatResponse']).toContain(it.msg.type);
                expect(it.msg.from).toBe('n1');
                expect(it.msg.to).toBe('n2');
              }
            }
          } catch (err) {
            expect(isTransportError(err)).toBe(true);
          }
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('leave single group messages as they were', () => {
    const m = hb(2, 1);
    expect(decode(encodeGroupMessageFrame('c1', 9, m))).toEqual({ kind: 'message', group: 9, msg: m });
    expect(packr.unpack(encodeHostFrame('c1', 'n1', 'n2', { type: 'wake', group: 4 }).subarray(4))).toEqual(
      hostEnvelope([2, 4]),
    );
  });
});
