/**
 * Shots that attack a listener after a genuine handshake (with the cluster secret):
 * schema-breaking messages and snapshot-stream frames behind a burst of valid ones.
 */
import {
  type EnvelopeContext,
  encodeAuth,
  encodeChallenge,
  encodeHello,
  encodeRefuse,
  encodeWelcome,
  FRAME_HEADER_BYTES,
  FrameKind,
  frame,
  messageToTuple,
  PROTOCOL_VERSION,
  SnapshotFrameKind,
} from '@quorate/codec';
import type { Message, NodeId } from '@quorate/raft';
import {
  acceptedAfterAuth,
  type BuildContext,
  CLUSTER,
  type Expected,
  FORGED_ROUND,
  type FuzzRng,
  GOOD,
  group,
  header,
  hostilePayload,
  IDLE_POOL,
  LISTENER,
  MAX_CHUNK,
  MAX_FRAME,
  pack,
  randomValue,
  SERIALS,
  type Shot,
  serialBase,
  splitBytes,
  validMessage,
  WRITE_GROUP_BYTES,
  wrongValue,
} from './shared.js';

export const POST_AUTH: readonly (readonly [string, number])[] = [
  ['random-payload', 3],
  ['random-msgpack', 4],
  ['hostile-msgpack', 4],
  ['envelope-shape', 3],
  ['wrong-version', 2],
  ['wrong-cluster', 2],
  ['spoofed-sender', 2],
  ['spoofed-good', 1],
  ['misrouted', 2],
  ['schema', 8],
  ['snapshot-schema', 3],
  ['handshake-frame', 1],
  ['empty-frame', 1],
  ['truncated', 3],
  ['truncated-msgpack', 2],
  ['oversized-header', 2],
  ['oversized-body', 1],
  ['deep-nesting', 1],
];

export function postAuthShot(
  index: number,
  r: FuzzRng,
  b: BuildContext,
  ctx: EnvelopeContext,
  validFrame: (from?: NodeId) => Expected,
  trailing: (n: number, from?: NodeId) => Buffer[],
  forbidden: number[],
): Shot {
  const kind = r.weighted(POST_AUTH);
  // The burst: messages, and snapshot-stream frames that refer to no transfer (validated,
  // then ignored: they cost the listener the same checks, and this harness no IPC).
  const burst: Buffer[] = [];
  const expected: Expected[] = [];
  const n = r.chance(0.08) ? r.int(200, 600) : r.int(16, 96);
  for (let i = 0; i < n; i++) {
    if (r.chance(0.35)) {
      const f = validFrame();
      expected.push(f);
      burst.push(f.bytes);
    } else burst.push(b.idle[r.int(0, IDLE_POOL - 1)]!);
  }
  /** An envelope around a valid message, with field `at` replaced. */
  const envelope = (at: number, value: unknown): Buffer => {
    const m = validMessage(r, b.slot, LISTENER, serialBase(index) + SERIALS - 1);
    const t: unknown[] = [FrameKind.Message, PROTOCOL_VERSION, CLUSTER, b.slot, LISTENER, messageToTuple(m)];
    t[at] = value;
    return pack(t);
  };
  /** A framed payload the listener must reject on an authenticated connection. */
  const rejected = (make: () => Buffer): Buffer => {
    for (let i = 0; i < 20; i++) {
      const p = make();
      if (!acceptedAfterAuth(p, ctx)) return frame(p);
    }
    return frame(envelope(5, [6, -1, 0, 0]));
  };
  let bad: Buffer;
  let after = r.int(0, 4);
  let prefixOnly = false;
  let alone = false;
  let end = false;
  switch (kind) {
    case 'random-payload':
      bad = rejected(() => r.bytes(r.int(1, 3000)));
      break;
    case 'random-msgpack':
      bad = rejected(() => pack(randomValue(r)));
      break;
    case 'hostile-msgpack':
      bad = rejected(() => hostilePayload(r, MAX_FRAME));
      break;
    case 'envelope-shape':
      bad = rejected(() => {
        const m = validMessage(r, b.slot, LISTENER, 1);
        const t: unknown[] = [
          FrameKind.Message,
          PROTOCOL_VERSION,
          CLUSTER,
          b.slot,
          LISTENER,
          messageToTuple(m),
        ];
        switch (r.int(0, 3)) {
          case 0:
            return pack(r.chance(0.5) ? randomValue(r) : new Map(t.map((v, i) => [i, v])));
          case 1:
            if (r.chance(0.5)) t.push(randomValue(r));
            else t.splice(r.int(0, 5), 1);
            return pack(t);
          case 2:
            t[0] = r.pick<unknown>([0, 1, 2, 3, 4, 5, 15, 17, 31, 38, 255, -16, '16', null, 16.5]);
            return pack(t);
          default:
            return pack([t]);
        }
      });
      break;
    case 'wrong-version':
      bad = rejected(() =>
        envelope(1, r.pick<unknown>([0, 2, 255, -1, '1', 1.0000001, null, true, 2n ** 64n - 1n])),
      );
      break;
    case 'wrong-cluster':
      bad = rejected(() =>
        envelope(2, r.pick<unknown>(['other', '', 'FUZZ', 42, null, Buffer.from(CLUSTER)])),
      );
      break;
    case 'spoofed-sender':
      bad = rejected(() =>
        envelope(3, r.pick<unknown>(['fuzz-999', 'fuzz-0', 'fuzz-1', LISTENER, '', 7, null])),
      );
      break;
    case 'spoofed-good': {
      // Claims to come from the good peer, with a heartbeat its checker would notice.
      const round = FORGED_ROUND + serialBase(index) + SERIALS - 2;
      forbidden.push(round);
      bad = frame(pack([FrameKind.Message, PROTOCOL_VERSION, CLUSTER, GOOD, LISTENER, [6, 1, 0, round]]));
      break;
    }
    case 'misrouted':
      bad = rejected(() => envelope(4, r.pick<unknown>([GOOD, b.slot, 'other', '', null])));
      break;
    case 'schema':
      bad = rejected(() => pack(brokenEnvelope(r, b.slot)));
      break;
    case 'snapshot-schema':
      bad = rejected(() => pack(brokenSnapshotFrame(r, b.slot)));
      break;
    case 'handshake-frame':
      bad = r.pick([
        () => encodeHello({ version: 1, clusterId: CLUSTER, from: b.slot, to: LISTENER, nonce: r.bytes(32) }),
        () => encodeAuth(r.bytes(32)),
        () => encodeWelcome(),
        () => encodeRefuse({ code: 'X', reason: 'fuzz' }),
        () =>
          encodeChallenge({
            version: 1,
            clusterId: CLUSTER,
            from: b.slot,
            nonce: r.bytes(32),
            proof: r.bytes(32),
          }),
      ])();
      break;
    case 'empty-frame':
      bad = header(0);
      break;
    case 'truncated': {
      let whole = frame(r.bytes(r.int(2, 3000)));
      if (r.chance(0.5)) {
        const f = validFrame();
        forbidden.push(f.term);
        whole = f.bytes;
      }
      bad = whole.subarray(0, r.int(1, whole.byteLength - 1));
      after = 0;
      alone = true;
      end = !b.framed;
      break;
    }
    case 'truncated-msgpack':
      bad = rejected(() => {
        const whole = validFrame().bytes.subarray(FRAME_HEADER_BYTES);
        return whole.subarray(0, r.int(1, whole.byteLength - 1));
      });
      break;
    case 'oversized-header':
      bad = Buffer.concat([header(r.int(MAX_FRAME + 1, 0xffffffff)), r.bytes(r.int(0, 300))]);
      prefixOnly = true;
      break;
    case 'oversized-body':
      bad = frame(r.bytes(MAX_FRAME + r.int(1, 20_000)));
      prefixOnly = true;
      alone = true;
      break;
    default: {
      // deep-nesting
      const depth = r.int(1000, MAX_FRAME - 64);
      const nest = Buffer.alloc(depth + 1, r.pick([0x91, 0x81, 0xdc]));
      if (nest[0] === 0xdc) for (let i = 0; i + 3 <= depth; i += 3) nest.set([0xdc, 0x00, 0x01], i);
      nest[depth] = 0xc0;
      bad = rejected(() => nest);
      break;
    }
  }
  const tail = trailing(after);
  let writes: Buffer[][];
  if (b.framed) {
    writes = alone
      ? [...group(burst, WRITE_GROUP_BYTES), [bad], ...group(tail, WRITE_GROUP_BYTES)]
      : group([...burst, bad, ...tail], WRITE_GROUP_BYTES);
  } else writes = splitBytes(r, Buffer.concat([...burst, bad, ...tail]));
  return {
    index,
    label: `post:${kind}`,
    auth: true,
    writes,
    frames: burst.length + 1 + tail.length,
    expected,
    prefixOnly,
    forbidden,
    end,
    slow: false,
  };
}

/** A message envelope whose message breaks its schema. */
export function brokenEnvelope(r: FuzzRng, slot: NodeId): unknown[] {
  const m = validMessage(r, slot, LISTENER, r.int(1, 1000));
  const t = messageToTuple(m) as unknown[];
  const env: unknown[] = [FrameKind.Message, PROTOCOL_VERSION, CLUSTER, slot, LISTENER, t];
  switch (r.int(0, 7)) {
    case 0:
      t[r.int(0, t.length - 1)] = wrongValue(r);
      break;
    case 1:
      if (r.chance(0.5)) t.push(r.int(0, 5));
      else t.pop();
      break;
    case 2:
      t[0] = r.pick<unknown>([12, 13, 31, 32, 255, -1, '0', null, 1.5]);
      break;
    case 3: {
      // entries: not dense, terms out of range, unknown types, data not bytes, wrong shapes
      const term = r.int(2, 100);
      const prev = r.int(0, 1000);
      const entries: unknown[] = Array.from({ length: r.int(1, 5) }, (_, i) => [
        prev + 1 + i,
        term,
        0,
        new Uint8Array(2),
      ]);
      const e = entries[r.int(0, entries.length - 1)] as unknown[];
      switch (r.int(0, 5)) {
        case 0:
          e[0] = (e[0] as number) + r.pick([1, -1, 2, 1000]);
          break;
        case 1:
          e[1] = r.pick([term + 1, -1, 0.5]);
          break;
        case 2:
          e[2] = r.pick<unknown>([2, -1, '0', null]);
          break;
        case 3:
          e[3] = r.pick<unknown>(['data', null, 1, [1, 2]]);
          break;
        case 4:
          e.push(0);
          break;
        default:
          entries[0] = r.pick<unknown>([null, 'entry', 5, new Map()]);
      }
      env[5] = [0, term, prev, r.int(0, term), 0, r.chance(0.1) ? 'not entries' : entries];
      break;
    }
    case 4: {
      // membership lists of a snapshot message
      const lists: unknown[] = [['a'], [], []];
      lists[r.int(0, 2)] = r.pick<unknown>([
        [''],
        [1],
        ['x'.repeat(257)],
        new Array(1025).fill('a'),
        'a',
        null,
        [null],
      ]);
      env[5] = [8, 5, 10, 2, ...lists];
      break;
    }
    case 5:
      t[1] = r.pick<unknown>([-1, 0.5, 2 ** 53, 2n ** 63n, '1', null, Number.NaN]);
      break;
    case 6:
      env[5] = r.pick<unknown>(['heartbeat', 6, null, new Map([[0, 6]]), [], [6]]);
      break;
    default:
      // append whose prevTerm is above its term
      env[5] = [0, 3, 10, 4, 0, []];
  }
  return env;
}

/** A snapshot-stream frame that breaks its schema. */
export function brokenSnapshotFrame(r: FuzzRng, slot: NodeId): unknown[] {
  const kind = r.int(SnapshotFrameKind.Begin, SnapshotFrameKind.Resumed);
  const sid = r.chance(0.8) ? r.int(0, 1e6) : wrongValue(r);
  switch (kind) {
    case SnapshotFrameKind.Begin: {
      const m = validMessage(r, slot, LISTENER, 3);
      return [
        kind,
        sid,
        r.chance(0.5)
          ? messageToTuple({ ...m, type: 'heartbeat', commit: 0, readRound: 0 } as Message)
          : wrongValue(r),
      ];
    }
    case SnapshotFrameKind.Chunk:
      return r.pick<() => unknown[]>([
        () => [kind, sid, 0, new Uint8Array(MAX_CHUNK + 1), 0],
        () => [kind, sid, -1, new Uint8Array(4), 0],
        () => [kind, sid, 0, 'data', 0],
        () => [kind, sid, 0, new Uint8Array(4)],
        () => [kind, sid, 0, new Uint8Array(4), -5],
      ])();
    case SnapshotFrameKind.End:
      return [kind, sid, 1, 100, r.pick<unknown>([new Uint8Array(31), 'sha', null, new Uint8Array(33)])];
    case SnapshotFrameKind.Ack:
      return r.chance(0.5) ? [kind, sid, -1] : [kind, sid];
    case SnapshotFrameKind.Done:
      return [kind, sid, r.pick<unknown>([1, 'yes', null]), 'reason'];
    case SnapshotFrameKind.Resume:
      return [kind, sid, 0];
    case SnapshotFrameKind.Resumed:
      return r.pick<() => unknown[]>([
        () => [kind, sid, 1, 0, 0],
        () => [kind, sid, true, -1, 0],
        () => [kind, sid, true, 0],
      ])();
    default: // ABORT
      return [kind, sid, r.pick<unknown>([1, null, 'x'.repeat(401)])];
  }
}
