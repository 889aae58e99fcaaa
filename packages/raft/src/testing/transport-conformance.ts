/**
 * One conformance suite for every `Transport`: the in-memory one here, TCP, WebSocket,
 * and any an embedder writes. It is framework-agnostic: `transportConformanceCases`
 * returns named cases with their own assertions, and a test file hands each to its runner:
 *
 * ```ts
 * for (const c of transportConformanceCases(harness)) it.skipIf(c.skip)(c.name, c.run, c.timeoutMs);
 * ```
 *
 * A harness builds clusters of members for the suite. What a transport cannot do (an
 * in-process network has no wire to attack, no TLS, no processes to pause) it leaves out,
 * and the matching cases are skipped with the reason.
 */
import type { Transport } from '../contracts/transport.js';
import type { Message, NodeId } from '../types.js';
import { formatMessage } from './format.js';

/** One member of a cluster under test, as the suite drives and observes it. */
export interface HarnessMember {
  readonly id: NodeId;
  /** Hand a message to this member's transport. */
  send(msg: Message): void;
  /** Messages its transport delivered, in arrival order (live). */
  readonly received: readonly Message[];
  /** Peers its transport reported unreachable, in report order (live). */
  readonly unreachable: readonly NodeId[];
}

/**
 * Attacks on a listener, carried out by the harness because they need the wire format.
 * `marker` is the `readRound` of a heartbeat the intruder sends if it ever gets the chance;
 * the suite checks that it is never delivered.
 */
export type IntrusionKind =
  /** Random bytes instead of a handshake. */
  | 'garbage-before-handshake'
  /** A correct handshake, then a frame header announcing more than the maximum. */
  | 'oversized-frame'
  /** A correct handshake, then half a frame and a close. */
  | 'truncated-frame'
  /** A correct handshake, then a well-framed envelope whose message breaks the schema. */
  | 'schema-breaking-frame'
  /** A correct handshake as one member, then an envelope claiming another sender. */
  | 'spoofed-sender'
  /** A handshake naming another cluster. */
  | 'wrong-cluster'
  /** A handshake proving a different secret. */
  | 'wrong-secret'
  /** A handshake claiming a node id that is not a member. */
  | 'unknown-member'
  /** A handshake of another protocol version. */
  | 'wrong-version'
  /** A recorded, once valid, handshake played again. */
  | 'replayed-handshake'
  /** TLS without a client certificate, against a listener that requires one. */
  | 'no-client-certificate'
  /** A client certificate from a certificate authority the cluster does not trust. */
  | 'foreign-certificate'
  /** Plain bytes to a TLS listener. */
  | 'plaintext-to-tls';

/** The intrusions that need no TLS: every listener must survive each of them. */
export const PLAIN_INTRUSIONS: readonly IntrusionKind[] = Object.freeze([
  'garbage-before-handshake',
  'oversized-frame',
  'truncated-frame',
  'schema-breaking-frame',
  'spoofed-sender',
  'wrong-cluster',
  'wrong-secret',
  'unknown-member',
  'wrong-version',
  'replayed-handshake',
]);

export interface IntrusionOutcome {
  /** Whether the listener refused: closed the connection without accepting the intruder's messages. */
  readonly refused: boolean;
  /** What happened, for failure reports. */
  readonly detail: string;
}

export type HarnessTls = 'mutual' | 'server-only';

export interface HarnessClusterOptions {
  /** Members to run in their own process, where the harness can (restarts then kill a process). */
  readonly processes?: readonly NodeId[];
  /** Run the cluster over TLS: with client certificates (`mutual`) or without (`server-only`). */
  readonly tls?: HarnessTls;
}

export interface HarnessCluster {
  /** The member's current incarnation (a new one after `start`). */
  member(id: NodeId): HarnessMember;
  /** Take the member away: close its transport, or kill its process. */
  stop(id: NodeId): Promise<void>;
  /** Bring a stopped member back at the same address, as a new incarnation. */
  start(id: NodeId): Promise<void>;
  /** Freeze the member without closing anything (SIGSTOP), and let it go on. */
  pause?(id: NodeId): Promise<void>;
  resume?(id: NodeId): Promise<void>;
  /** Attack member `target`'s listener. */
  intrude?(target: NodeId, kind: IntrusionKind, marker: number): Promise<IntrusionOutcome>;
  /** Frames rejected plus handshakes failed at member `id`, as the transport counts them. */
  rejections?(id: NodeId): Promise<number>;
  /** Stop everything the cluster started. */
  close(): Promise<void>;
}

export interface TransportHarness {
  readonly name: string;
  /** Start members `ids`, each configured with all the others. */
  cluster(ids: readonly NodeId[], options?: HarnessClusterOptions): Promise<HarnessCluster>;
  /** The intrusions `intrude` supports on a plain cluster. */
  readonly intrusions?: readonly IntrusionKind[];
  /** The intrusions `intrude` supports on a `tls: 'mutual'` cluster. */
  readonly tlsIntrusions?: readonly IntrusionKind[];
  /** TLS modes `cluster` supports. */
  readonly tls?: readonly HarnessTls[];
  /** Whether `stop`/`start` of a member listed in `processes` restarts a real process. */
  readonly processes?: boolean;
  /** Whether clusters support `pause` and `resume`. */
  readonly pause?: boolean;
  /** Scales the suite's deadlines (a slow machine, a slow transport). Default 1. */
  readonly timeScale?: number;
}

export interface TransportConformanceCase {
  readonly name: string;
  /** Why the case does not apply to this transport, when it does not. */
  readonly skip?: string;
  readonly timeoutMs: number;
  run(): Promise<void>;
}

// ------------------------------------------------------------------ assertions

export class ConformanceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceError';
  }
}

export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new ConformanceError(message);
}

/** Deep equality for plain data and byte arrays. */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.byteLength !== b.byteLength) return false;
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((x, i) => sameData(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (!sameData(ka, kb)) return false;
    return ka.every((k) => sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

/** Poll `cond` every few milliseconds until it holds; fail naming `what` at the deadline. */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (cond()) return;
    if (performance.now() > deadline)
      throw new ConformanceError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

// ------------------------------------------------------------------ in-process members

export interface RecordedMember extends HarnessMember {
  readonly transport: Transport;
  close(): Promise<void>;
}

/** Start `transport` with a handler that records what it delivers: a member for a harness. */
export async function recordTransport(id: NodeId, transport: Transport): Promise<RecordedMember> {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  let open = true;
  await transport.start({
    onMessage: (m) => {
      if (open) received.push(m);
    },
    onUnreachable: (p) => {
      if (open) unreachable.push(p);
    },
  });
  return {
    id,
    transport,
    received,
    unreachable,
    send: (m) => transport.send(m),
    close: async () => {
      open = false;
      await transport.close();
    },
  };
}

// ------------------------------------------------------------------ messages

/** One message of every type from `from` to `to`, with small, empty and 16 KiB payloads. */
export function sampleMessages(from: NodeId, to: NodeId): Message[] {
  const big = new Uint8Array(16 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const b = { from, to };
  return [
    {
      ...b,
      type: 'append',
      term: 3,
      prevIndex: 10,
      prevTerm: 2,
      commit: 9,
      entries: [
        { index: 11, term: 2, type: 0, data: new Uint8Array([1, 2, 3]) },
        { index: 12, term: 3, type: 0, data: new Uint8Array(0) },
        { index: 13, term: 3, type: 1, data: new TextEncoder().encode('{"changes":[]}') },
        { index: 14, term: 3, type: 0, data: big },
      ],
    },
    { ...b, type: 'append', term: 3, prevIndex: 14, prevTerm: 3, commit: 14, entries: [] },
    { ...b, type: 'appendResponse', term: 3, reject: true, index: 14, hintIndex: 12, hintTerm: 2 },
    { ...b, type: 'vote', term: 4, lastIndex: 14, lastTerm: 3, transfer: false },
    { ...b, type: 'preVote', term: 5, lastIndex: 14, lastTerm: 3, transfer: true },
    { ...b, type: 'voteResponse', term: 4, reject: false },
    { ...b, type: 'preVoteResponse', term: 5, reject: true },
    { ...b, type: 'heartbeat', term: 4, commit: 14, readRound: 7 },
    { ...b, type: 'heartbeatResponse', term: 4, readRound: 7 },
    {
      ...b,
      type: 'snapshot',
      term: 4,
      snapshot: {
        index: 100,
        term: 4,
        conf: { voters: [from, to, 'n9'], learners: ['l1'], votersOutgoing: [] },
      },
    },
    { ...b, type: 'timeoutNow', term: 4 },
    { ...b, type: 'readIndex', term: 4, requestId: 2 ** 40 },
    { ...b, type: 'readIndexResponse', term: 4, requestId: 2 ** 40, index: 14, reject: false },
  ];
}

const heartbeat = (from: NodeId, to: NodeId, seq: number): Message => ({
  type: 'heartbeat',
  from,
  to,
  term: 1,
  commit: seq,
  readRound: 0,
});

const seqOf = (m: Message) => (m.type === 'heartbeat' ? m.commit : m.type === 'append' ? m.commit : -1);
const fromPeer = (m: HarnessMember, peer: NodeId) => m.received.filter((x) => x.from === peer);

/** Checks that `got` is exactly 0..n-1 in order (by sequence number). */
function checkSequence(got: readonly Message[], n: number, what: string): void {
  check(got.length === n, `${what}: expected ${n} messages, got ${got.length}`);
  for (let i = 0; i < n; i++) {
    const s = seqOf(got[i]!);
    check(
      s === i,
      `${what}: message ${i} carries sequence ${s} (${formatMessage(got[i]!)}); order or content broken`,
    );
  }
}

/**
 * Send `n` sequenced messages from `a` to `b` in bursts, never more than `window` ahead of
 * what `b` has received (as Raft's flow control would), every `bigEvery`-th an append
 * with a 16 KiB entry.
 */
async function pump(
  a: HarnessMember,
  b: HarnessMember,
  n: number,
  window: number,
  deadlineMs: number,
  bigEvery = 0,
) {
  const big = new Uint8Array(16 * 1024).fill(7);
  const deadline = performance.now() + deadlineMs;
  const base = fromPeer(b, a.id).length;
  let sent = 0;
  while (sent < n) {
    const got = fromPeer(b, a.id).length - base;
    if (sent - got < window) {
      const burst = Math.min(n - sent, 200, window - (sent - got));
      for (let i = 0; i < burst; i++, sent++) {
        if (bigEvery > 0 && sent % bigEvery === bigEvery - 1) {
          a.send({
            type: 'append',
            from: a.id,
            to: b.id,
            term: 1,
            prevIndex: sent,
            prevTerm: 1,
            commit: sent,
            entries: [{ index: sent + 1, term: 1, type: 0, data: big }],
          });
        } else {
          a.send(heartbeat(a.id, b.id, sent));
        }
      }
    }
    if (performance.now() > deadline)
      throw new ConformanceError(`${a.id} -> ${b.id}: only ${sent} of ${n} sent in time`);
    await nextTurn();
  }
}

/** Keep sending heartbeats from `a` to `b` until `b` has one it did not have before. */
async function sendUntilDelivered(a: HarnessMember, b: () => HarnessMember, what: string, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  const before = fromPeer(b(), a.id).length;
  let seq = 1_000_000;
  while (fromPeer(b(), a.id).length <= before) {
    if (performance.now() > deadline)
      throw new ConformanceError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    a.send(heartbeat(a.id, b().id, seq++));
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ------------------------------------------------------------------ the cases

export function transportConformanceCases(h: TransportHarness): TransportConformanceCase[] {
  const scale = h.timeScale ?? 1;
  const ms = (n: number) => Math.round(n * scale);
  const cases: TransportConformanceCase[] = [];
  const add = (name: string, timeoutMs: number, run: () => Promise<void>, skip?: string) =>
    cases.push({ name: `${h.name}: ${name}`, timeoutMs: ms(timeoutMs), run, ...(skip ? { skip } : {}) });

  /** Run `body` on a fresh cluster and always close it. */
  const withCluster = async (
    ids: readonly NodeId[],
    options: HarnessClusterOptions,
    body: (c: HarnessCluster) => Promise<void>,
  ) => {
    const c = await h.cluster(ids, options);
    try {
      await body(c);
    } finally {
      await c.close();
    }
  };

  add('delivers every message type intact, and nothing else', 30_000, () =>
    withCluster(['a', 'b'], {}, async (c) => {
      const a = c.member('a');
      const b = c.member('b');
      const msgs = sampleMessages('a', 'b');
      for (const m of msgs) a.send(m);
      await waitUntil(
        () => b.received.length >= msgs.length,
        `b to receive ${msgs.length} messages`,
        ms(10_000),
      );
      await new Promise((r) => setTimeout(r, 50));
      check(
        b.received.length === msgs.length,
        `b received ${b.received.length} messages, ${msgs.length} were sent`,
      );
      msgs.forEach((m, i) => {
        check(
          sameData(b.received[i], m),
          `message ${i} arrived altered: sent ${formatMessage(m)}, got ${formatMessage(b.received[i]!)}`,
        );
      });
      check(a.received.length === 0, `a received ${a.received.length} messages nobody sent it`);
    }),
  );

  add('keeps per-peer order under load, both ways and from several senders', 60_000, () =>
    withCluster(['a', 'b', 'c'], {}, async (cl) => {
      const [a, b, c] = [cl.member('a'), cl.member('b'), cl.member('c')];
      const n = 3000;
      await Promise.all([
        pump(a, b, n, 1000, ms(30_000), 50),
        pump(b, a, n, 1000, ms(30_000)),
        pump(c, b, n, 1000, ms(30_000)),
      ]);
      await waitUntil(
        () => fromPeer(b, 'a').length >= n && fromPeer(a, 'b').length >= n && fromPeer(b, 'c').length >= n,
        'every message to arrive',
        ms(20_000),
      );
      checkSequence(fromPeer(b, 'a'), n, 'a -> b');
      checkSequence(fromPeer(a, 'b'), n, 'b -> a');
      checkSequence(fromPeer(b, 'c'), n, 'c -> b');
      check(c.received.length === 0, 'c received messages nobody sent it');
    }),
  );

  add('reports a stopped peer unreachable and keeps serving the others', 30_000, () =>
    withCluster(['a', 'b', 'c'], {}, async (cl) => {
      const a = cl.member('a');
      await sendUntilDelivered(a, () => cl.member('b'), 'a first message to b', ms(10_000));
      await cl.stop('b');
      const c = cl.member('c');
      const n = 500;
      for (let i = 0; i < n; i++) {
        a.send(heartbeat('a', 'b', i));
        a.send(heartbeat('a', 'c', i));
        if (i % 50 === 49) await nextTurn();
      }
      await waitUntil(() => fromPeer(c, 'a').length >= n, `c to receive all ${n} messages`, ms(10_000));
      checkSequence(fromPeer(c, 'a'), n, 'a -> c while b is down');
      await waitUntil(() => a.unreachable.includes('b'), 'a to report b unreachable', ms(10_000));
      check(!a.unreachable.includes('c'), 'a reported c unreachable although c was up');
    }),
  );

  add(
    'a stalled peer neither holds up the others nor queues without bound',
    60_000,
    () =>
      withCluster(['a', 'b', 'c'], { processes: ['b'] }, async (cl) => {
        const a = cl.member('a');
        const c = cl.member('c');
        await sendUntilDelivered(a, () => cl.member('b'), 'a first message to b', ms(10_000));
        await cl.pause!('b');
        try {
          const big = new Uint8Array(16 * 1024).fill(1);
          const limit = 256 * 1024 * 1024;
          let bytes = 0;
          let seq = 0;
          const unreachableBefore = a.unreachable.length;
          // Flood the frozen peer until the transport gives up on it, serving c all along.
          while (!a.unreachable.slice(unreachableBefore).includes('b')) {
            check(
              bytes < limit,
              `a queued ${bytes >> 20} MiB for a frozen peer without reporting it unreachable`,
            );
            for (let i = 0; i < 64; i++) {
              a.send({
                type: 'append',
                from: 'a',
                to: 'b',
                term: 1,
                prevIndex: 0,
                prevTerm: 0,
                commit: 0,
                entries: [{ index: 1, term: 1, type: 0, data: big }],
              });
              bytes += big.byteLength;
            }
            a.send(heartbeat('a', 'c', seq++));
            await nextTurn();
          }
          const target = seq + 200;
          for (; seq < target; seq++) a.send(heartbeat('a', 'c', seq));
          await waitUntil(
            () => fromPeer(c, 'a').length >= target,
            'c to receive everything while b is frozen',
            ms(15_000),
          );
          checkSequence(fromPeer(c, 'a'), target, 'a -> c while b is frozen');
        } finally {
          await cl.resume!('b');
        }
        await sendUntilDelivered(a, () => cl.member('b'), 'b to receive again once it runs', ms(30_000));
      }),
    h.pause ? undefined : 'members cannot be paused in this harness',
  );

  add('reconnects after the peer restarts, and invents nothing', 60_000, () =>
    withCluster(['a', 'b'], { processes: ['b'] }, async (cl) => {
      const a = cl.member('a');
      await sendUntilDelivered(a, () => cl.member('b'), 'a first message to b', ms(10_000));
      await cl.stop('b');
      const unreachableBefore = a.unreachable.length;
      let seq = 0;
      const sent = new Set<number>();
      const tick = async (until: () => boolean, what: string, timeoutMs: number) => {
        const deadline = performance.now() + timeoutMs;
        while (!until()) {
          if (performance.now() > deadline)
            throw new ConformanceError(`timed out after ${timeoutMs} ms waiting for ${what}`);
          sent.add(seq);
          a.send(heartbeat('a', 'b', seq++));
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      await tick(() => a.unreachable.length > unreachableBefore, 'a to report b unreachable', ms(10_000));
      await cl.start('b');
      await tick(
        () => fromPeer(cl.member('b'), 'a').length >= 20,
        'the restarted b to receive 20 messages',
        ms(30_000),
      );
      const got = fromPeer(cl.member('b'), 'a').map(seqOf);
      for (const s of got)
        check(sent.has(s), `the restarted b received sequence ${s}, which a never sent to it`);
      for (let i = 1; i < got.length; i++) {
        check(
          got[i]! > got[i - 1]!,
          `the restarted b received ${got[i]} after ${got[i - 1]} on one connection`,
        );
      }
      // And the restarted member reaches out again.
      await sendUntilDelivered(cl.member('b'), () => a, 'a to hear from the restarted b', ms(15_000));
    }),
  );

  add('a closed transport delivers nothing, and send after close is a no-op', 30_000, () =>
    withCluster(['a', 'b'], {}, async (cl) => {
      const a = cl.member('a');
      const b = cl.member('b');
      await sendUntilDelivered(a, () => b, 'a first message to b', ms(10_000));
      await sendUntilDelivered(b, () => a, 'b first message to a', ms(10_000));
      await cl.stop('a');
      const had = a.received.length;
      a.send(heartbeat('a', 'b', 1));
      for (let i = 0; i < 20; i++) {
        b.send(heartbeat('b', 'a', i));
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 100));
      check(a.received.length === had, `a closed transport delivered ${a.received.length - had} messages`);
    }),
  );

  const intrusionCase = (
    kind: IntrusionKind,
    tls: HarnessTls | undefined,
    supported: boolean,
    why: string,
  ) => {
    add(
      `${tls ? `over ${tls} TLS, ` : ''}refuses ${kind}: nothing delivered, counted, others still served`,
      30_000,
      () =>
        withCluster(['a', 'b'], tls ? { tls } : {}, async (cl) => {
          const a = cl.member('a');
          const b = cl.member('b');
          await sendUntilDelivered(b, () => a, 'b first message to a', ms(10_000));
          const before = await cl.rejections!('a');
          const marker = 424_242;
          const outcome = await cl.intrude!('a', kind, marker);
          check(outcome.refused, `a accepted ${kind}: ${outcome.detail}`);
          const deadline = performance.now() + ms(10_000);
          let after = before;
          while (after <= before && performance.now() < deadline) {
            await new Promise((r) => setTimeout(r, 10));
            after = await cl.rejections!('a');
          }
          check(after > before, `a did not count the ${kind} intrusion (${before} before, ${after} after)`);
          await sendUntilDelivered(b, () => a, 'a to go on serving b', ms(10_000));
          const leaked = a.received.filter((m) => m.type === 'heartbeat' && m.readRound === marker);
          check(leaked.length === 0, `a delivered ${leaked.length} message(s) from the ${kind} intruder`);
        }),
      supported ? undefined : why,
    );
  };
  for (const k of PLAIN_INTRUSIONS)
    intrusionCase(k, undefined, !!h.intrusions?.includes(k), 'no wire to attack in this harness');

  const tlsModes = h.tls ?? [];
  for (const mode of ['mutual', 'server-only'] as const) {
    add(
      `over ${mode} TLS, delivers every message type intact and in order`,
      30_000,
      () =>
        withCluster(['a', 'b'], { tls: mode }, async (cl) => {
          const a = cl.member('a');
          const b = cl.member('b');
          const msgs = sampleMessages('a', 'b');
          for (const m of msgs) a.send(m);
          await waitUntil(() => b.received.length >= msgs.length, 'b to receive every message', ms(10_000));
          msgs.forEach((m, i) => {
            check(sameData(b.received[i], m), `message ${i} arrived altered over TLS`);
          });
          await pump(b, a, 500, 200, ms(10_000));
          await waitUntil(() => fromPeer(a, 'b').length >= 500, 'a to receive 500 messages', ms(10_000));
          checkSequence(fromPeer(a, 'b'), 500, 'b -> a over TLS');
        }),
      tlsModes.includes(mode) ? undefined : `no ${mode} TLS in this harness`,
    );
  }
  for (const k of [
    'no-client-certificate',
    'foreign-certificate',
    'plaintext-to-tls',
    'wrong-secret',
  ] as const) {
    intrusionCase(
      k,
      'mutual',
      tlsModes.includes('mutual') && !!h.tlsIntrusions?.includes(k),
      'no TLS in this harness',
    );
  }
  intrusionCase(
    'wrong-secret',
    'server-only',
    tlsModes.includes('server-only') && !!h.intrusions?.includes('wrong-secret'),
    'no TLS in this harness',
  );
  return cases;
}
