/** Shots that attack a listener before the handshake completes (no cluster secret). */
import { encodeHello, FrameKind, FrameReader, frame, NONCE_BYTES, PROTOCOL_VERSION } from '@quorate/codec';
import type { NodeId } from '@quorate/raft';
import { HANDSHAKE_MAX_FRAME_BYTES } from '@quorate/transport-engine';
import {
  acceptedHello,
  type BuildContext,
  CLUSTER,
  type Expected,
  type FuzzRng,
  GOOD,
  header,
  hostilePayload,
  LISTENER,
  pack,
  randomValue,
  type Shot,
  splitBytes,
  wrongValue,
} from './shared.js';

export const PRE_AUTH: readonly (readonly [string, number])[] = [
  ['raw-bytes', 6],
  ['random-payload', 3],
  ['random-msgpack', 4],
  ['hostile-msgpack', 4],
  ['hello-wrong-types', 4],
  ['wrong-version', 3],
  ['wrong-cluster', 3],
  ['wrong-recipient', 2],
  ['unknown-sender', 2],
  ['bad-auth', 4],
  ['impersonate-good', 2],
  ['skip-auth', 2],
  ['message-first', 2],
  ['oversized-header', 3],
  ['oversized-body', 2],
  ['truncated', 3],
  ['empty-frame', 1],
];

export function preAuthShot(
  index: number,
  r: FuzzRng,
  b: BuildContext,
  validFrame: (from?: NodeId) => Expected,
  trailing: (n: number, from?: NodeId) => Buffer[],
  forbidden: number[],
  slowKind?: 'silent' | 'stalled-hello',
): Shot {
  const kind = slowKind ?? r.weighted(PRE_AUTH);
  const hello = (over: Partial<{ version: number; clusterId: string; from: NodeId; to: NodeId }> = {}) =>
    encodeHello({
      version: PROTOCOL_VERSION,
      clusterId: CLUSTER,
      from: b.slot,
      to: LISTENER,
      nonce: r.bytes(NONCE_BYTES),
      ...over,
    });
  const maxPayload = HANDSHAKE_MAX_FRAME_BYTES;
  /** A framed payload the listener must refuse as a first frame. */
  const refusedFirst = (make: () => Buffer): Buffer => {
    for (let i = 0; i < 20; i++) {
      const p = make();
      if (p.byteLength <= maxPayload && !acceptedHello(p, b.peers)) return frame(p);
    }
    return frame(pack([FrameKind.Hello, 'not a version']));
  };
  let bad: Buffer[] = [];
  let after = r.int(0, 4);
  let end = false;
  let slow = false;
  let impostor: NodeId = b.slot;
  switch (kind) {
    case 'raw-bytes': {
      const n = r.int(1, 600);
      const raw = r.chance(0.5) ? r.bytes(n) : Buffer.concat([header(r.int(0, 700)), r.bytes(n)]);
      bad = [raw];
      after = 0;
      // A byte stream that stops inside a frame is waited on: half-close it. (A message that
      // does is refused, and so is a first frame that is not a HELLO to this listener.)
      const reader = new FrameReader(maxPayload);
      try {
        const got = reader.push(raw);
        end = got.length === 0 ? !b.framed && reader.pendingBytes > 0 : acceptedHello(got[0]!, b.peers);
      } catch {
        end = false;
      }
      break;
    }
    case 'random-payload':
      bad = [refusedFirst(() => r.bytes(r.int(1, maxPayload)))];
      break;
    case 'random-msgpack':
      bad = [refusedFirst(() => pack(randomValue(r)))];
      break;
    case 'hostile-msgpack':
      bad = [refusedFirst(() => hostilePayload(r, maxPayload))];
      break;
    case 'hello-wrong-types':
      bad = [
        refusedFirst(() => {
          const t: unknown[] = [
            FrameKind.Hello,
            PROTOCOL_VERSION,
            CLUSTER,
            b.slot,
            LISTENER,
            r.bytes(NONCE_BYTES),
          ];
          if (r.chance(0.2))
            t.splice(r.int(1, t.length), r.int(0, 1), ...(r.chance(0.5) ? [wrongValue(r)] : []));
          else t[r.int(1, 5)] = wrongValue(r);
          return pack(t);
        }),
      ];
      break;
    case 'wrong-version':
      bad = [
        frame(
          pack([FrameKind.Hello, r.pick([0, 2, 3, 255, 2 ** 31]), CLUSTER, b.slot, LISTENER, r.bytes(32)]),
        ),
      ];
      break;
    case 'wrong-cluster':
      bad = [hello({ clusterId: r.pick(['other', 'Fuzz', 'fuzz ', 'x'.repeat(256)]) })];
      break;
    case 'wrong-recipient':
      bad = [hello({ to: r.pick([GOOD, b.slot, 'nobody', `${LISTENER}-2`]) })];
      break;
    case 'unknown-sender':
      bad = [hello({ from: r.pick(['stranger', LISTENER, 'x'.repeat(256)]) })];
      break;
    case 'impersonate-good':
    case 'bad-auth': {
      if (kind === 'impersonate-good') impostor = GOOD;
      const proof = r.pick<unknown>([
        r.bytes(NONCE_BYTES), // the proof of a wrong secret looks just like this
        r.bytes(r.int(0, 31)),
        r.bytes(r.int(33, 64)),
        null,
      ]);
      const auth =
        r.chance(0.2) || proof === null
          ? r.pick([pack([FrameKind.Auth]), pack([FrameKind.Auth, r.bytes(32), 1]), pack(randomValue(r))])
          : pack([FrameKind.Auth, proof]);
      bad = [hello({ from: impostor }), frame(auth)];
      break;
    }
    case 'skip-auth':
    case 'message-first': {
      const f = validFrame();
      forbidden.push(f.term);
      bad = kind === 'skip-auth' ? [hello(), f.bytes] : [f.bytes];
      break;
    }
    case 'oversized-header':
      bad = [Buffer.concat([header(r.int(maxPayload + 1, 0xffffffff)), r.bytes(r.int(0, 200))])];
      break;
    case 'oversized-body':
      bad = [frame(r.bytes(r.int(maxPayload + 1, 9000)))];
      break;
    case 'truncated': {
      const whole = r.chance(0.5) ? hello() : frame(r.bytes(r.int(2, 3000)));
      bad = [whole.subarray(0, r.int(1, whole.byteLength - 1))];
      after = 0;
      end = !b.framed;
      break;
    }
    case 'empty-frame':
      bad = [header(0)];
      break;
    case 'silent':
      bad = [];
      after = 0;
      slow = true;
      break;
    default: {
      // stalled-hello: half a HELLO and then nothing
      const h = hello();
      bad = [h.subarray(0, r.int(1, h.byteLength - 1))];
      after = 0;
      slow = !b.framed;
      break;
    }
  }
  const tail = trailing(after, impostor);
  let writes: Buffer[][];
  if (bad.length === 0) writes = [];
  else if (b.framed) writes = tail.length > 0 && r.chance(0.5) ? [bad, tail] : [[...bad, ...tail]];
  else writes = splitBytes(r, Buffer.concat([...bad, ...tail]));
  return {
    index,
    label: `pre:${kind}`,
    auth: false,
    writes,
    frames: bad.length + tail.length,
    expected: [],
    prefixOnly: false,
    forbidden,
    end,
    slow,
  };
}
