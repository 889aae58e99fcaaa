/**
 * A fuzz run against a live listener, for any `TransportKit`: the listener is a member in
 * its own process; a well-behaved peer (in this process) keeps sending it numbered
 * messages; meanwhile at least 200 000 frames are thrown at it over many concurrent
 * connections: random bytes, truncated and oversized frames, valid msgpack of the wrong
 * shape, type, cluster or version before the handshake, and after a genuine one (with the
 * cluster secret) schema-breaking messages and snapshot-stream frames.
 *
 * The transport closes a connection at its first bad frame, so each connection ("shot")
 * carries one bad frame, after the handshake behind a burst of well-formed frames, and is
 * often followed by a few more that must never be delivered. A shot's frames are a function
 * of the seed and its index (and of the member id its connection claims, and of the
 * handshake nonces).
 *
 * Checked: every good-peer message arrives, in order, and nothing is invented; the valid
 * messages in front of each bad frame arrive exactly as sent, and nothing after a bad frame
 * (or on a connection that never authenticated) ever does; the listener closes every bad
 * connection by itself (except byte streams that stop inside a frame, which the fuzzer
 * half-closes), counts each exactly once, and is alive and serving at the end, with its
 * settled heap (V8 `heapUsed` after gc: Buffer contents are not in it, their JS objects
 * are) within a bound of its value after a warm-up round.
 */

import {
  defaultWireLimits,
  type EnvelopeContext,
  encodeMessageFrame,
  FrameKind,
  secretBytes,
} from '@quorate/codec';
import type { Message, NodeId } from '@quorate/raft';
import type { NetworkTransport, StreamLayer, TransportStats } from '@quorate/transport-engine';
import type { TransportKit } from '../config.js';
import { MemberProcess } from '../member-process.js';
import { waitUntil } from '../wait.js';
import { WireClient } from '../wire-client.js';
import { postAuthShot } from './post-auth.js';
import { preAuthShot } from './pre-auth.js';
import {
  type BuildContext,
  CLOSE_DEADLINE_MS,
  CLUSTER,
  type Expected,
  FORGED_ROUND,
  type FuzzCase,
  type FuzzOptions,
  type FuzzReport,
  FuzzRng,
  GOOD,
  HANDSHAKE_TIMEOUT_MS,
  IDLE_POOL,
  idleSnapshotFrame,
  LISTENER,
  MAX_FRAME,
  MiB,
  SECRET,
  type Shot,
  SLOW_SHOTS,
  serialBase,
  validMessage,
} from './shared.js';

function idlePool(seed: number): Buffer[] {
  const r = new FuzzRng(seed, -1);
  return Array.from({ length: IDLE_POOL }, () => idleSnapshotFrame(r));
}

/**
 * Build shot `stream` of a round: its frames are a function of the seed, `stream` and the
 * slot's id; `index` (unique over the whole run) only numbers its messages.
 */
function buildShot(
  index: number,
  stream: number,
  b: BuildContext,
  slowKind?: 'silent' | 'stalled-hello',
): Shot {
  const r = new FuzzRng(b.seed, stream);
  const auth = slowKind === undefined && r.chance(0.65);
  const serial0 = serialBase(index);
  let next = 0;
  const term = () => serial0 + ++next;
  const ctx: EnvelopeContext = {
    clusterId: CLUSTER,
    peer: b.slot,
    local: LISTENER,
    limits: defaultWireLimits,
  };
  const validFrame = (from = b.slot) => {
    const m = validMessage(r, from, LISTENER, term());
    return { term: m.term, bytes: encodeMessageFrame(CLUSTER, m) };
  };
  const forbidden: number[] = [];
  const trailing = (n: number, from = b.slot): Buffer[] =>
    Array.from({ length: n }, () => {
      if (from === GOOD) {
        const round = FORGED_ROUND + serial0 + ++next;
        forbidden.push(round);
        return encodeMessageFrame(CLUSTER, {
          type: 'heartbeat',
          from: GOOD,
          to: LISTENER,
          term: 1,
          commit: 0,
          readRound: round,
        });
      }
      const f = validFrame(from);
      forbidden.push(f.term);
      return f.bytes;
    });
  return auth
    ? postAuthShot(index, r, b, ctx, validFrame, trailing, forbidden)
    : preAuthShot(index, r, b, validFrame, trailing, forbidden, slowKind);
}

// ------------------------------------------------------------------------------ checking

interface Segment {
  readonly shot: number;
  readonly label: string;
  readonly items: Expected[];
  readonly prefixOnly: boolean;
  pos: number;
}

/** Checks every message the listener delivers, as it arrives. */
class DeliveryCheck {
  goodNext = 0;
  fuzzDelivered = 0;
  droppedBeforeOversized = 0;
  readonly problems: string[] = [];
  private problemCount = 0;
  private readonly segments = new Map<NodeId, Segment[]>();
  private readonly forbidden = new Map<number, string>();

  problem(p: string): void {
    this.problemCount++;
    if (this.problems.length < 40) this.problems.push(p);
  }

  get failures(): number {
    return this.problemCount;
  }

  expect(slot: NodeId, shot: Shot): void {
    for (const t of shot.forbidden) this.forbidden.set(t, `shot ${shot.index} (${shot.label})`);
    if (shot.expected.length === 0) return;
    let q = this.segments.get(slot);
    if (!q) {
      q = [];
      this.segments.set(slot, q);
    }
    q.push({
      shot: shot.index,
      label: shot.label,
      items: shot.expected,
      prefixOnly: shot.prefixOnly,
      pos: 0,
    });
  }

  private describeForbidden(key: number): string {
    const where = this.forbidden.get(key);
    return where ? ` — it came after the bad frame or without a handshake, ${where}` : '';
  }

  take(m: Message): void {
    if (m.to !== LISTENER) {
      this.problem(`the listener delivered a message addressed to ${JSON.stringify(m.to)}`);
      return;
    }
    if (m.from === GOOD) {
      if (m.type === 'heartbeat' && m.readRound === this.goodNext && m.term === 1) {
        this.goodNext++;
        return;
      }
      const round = m.type === 'heartbeat' ? m.readRound : -1;
      this.problem(
        `good peer: expected heartbeat #${this.goodNext}, the listener delivered a ${m.type} #${round}${this.describeForbidden(round)}`,
      );
      return;
    }
    const q = this.segments.get(m.from);
    for (;;) {
      const seg = q?.[0];
      if (!seg) {
        this.problem(
          `the listener delivered a ${m.type} (term ${m.term}) from ${m.from} that no one sent in front of a bad frame${this.describeForbidden(m.term)}`,
        );
        return;
      }
      const want = seg.items[seg.pos]!;
      if (want.term === m.term) {
        if (!encodeMessageFrame(CLUSTER, m).equals(want.bytes)) {
          this.problem(`shot ${seg.shot} (${seg.label}): message ${seg.pos} arrived altered (a ${m.type})`);
        }
        this.fuzzDelivered++;
        if (++seg.pos === seg.items.length) q!.shift();
        return;
      }
      if (seg.prefixOnly) {
        this.droppedBeforeOversized += seg.items.length - seg.pos;
        q!.shift();
        continue;
      }
      this.problem(
        `shot ${seg.shot} (${seg.label}): expected message ${seg.pos} (term ${want.term}) from ${m.from}, got term ${m.term}${this.describeForbidden(m.term)}`,
      );
      return;
    }
  }

  /** Everything the listener will deliver has been taken: what is still expected never came. */
  settle(): void {
    for (const [slot, q] of this.segments) {
      for (const seg of q) {
        if (seg.prefixOnly) this.droppedBeforeOversized += seg.items.length - seg.pos;
        else
          this.problem(
            `shot ${seg.shot} (${seg.label}) from ${slot}: ${seg.items.length - seg.pos} of ${seg.items.length} valid messages in front of the bad frame never arrived`,
          );
      }
    }
    this.segments.clear();
  }
}

/** The fuzzer's wait: the state in the message is taken at the timeout. */
const waitFor = (cond: () => boolean, timeoutMs: number, what: () => string) =>
  waitUntil(cond, what, timeoutMs, 20);

const fmt = (n: number) => n.toLocaleString('en-US');
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

// ------------------------------------------------------------------------------ the run

/** Throw the frames at a live listener of `kit`; resolves with the figures, throws on any failure. */
export async function fuzzListener(kit: TransportKit, options: FuzzOptions = {}): Promise<FuzzReport> {
  const seed = options.seed ?? 0x5eed;
  const target = options.frames ?? 200_000;
  const warmup = options.warmupFrames ?? 20_000;
  const concurrency = options.concurrency ?? 24;
  const heapLimit = options.heapGrowthLimitBytes ?? 6 * MiB;
  const log = options.log ?? ((line: string) => console.log(line));
  const tag = `[fuzz ${kit.name}]`;
  const slots = Array.from({ length: concurrency }, (_, i) => `fuzz-${i}`);
  const peers = new Set<NodeId>([GOOD, ...slots]);

  const check = new DeliveryCheck();
  const fromListener: Message[] = [];
  let good: NetworkTransport | null = null;
  let listener: MemberProcess | null = null;
  let goodTimer: ReturnType<typeof setInterval> | null = null;
  let drainTimer: ReturnType<typeof setInterval> | null = null;
  let goodSent = 0;
  const goodPeerOptions = {
    connectTimeoutMs: 5000,
    handshakeTimeoutMs: 5000,
    backoffMaxMs: 250,
    closeTimeoutMs: 500,
    maxFrameBytes: MAX_FRAME,
    // The listener only receives here: it never answers, which is not a dead link.
    silenceTimeoutMs: 0,
  };
  try {
    // The good peer (here) and the listener (its own process).
    good = kit.create({
      id: GOOD,
      clusterId: CLUSTER,
      secret: SECRET,
      peers: {},
      port: 0,
      options: goodPeerOptions,
    });
    const goodAddress = await good.listen();
    const nowhere = goodAddress.replace(/:\d+(\/|$)/, ':1$1');
    listener = await MemberProcess.spawn(kit.memberScript, {
      id: LISTENER,
      clusterId: CLUSTER,
      secret: SECRET,
      peers: { [GOOD]: goodAddress, ...Object.fromEntries(slots.map((s) => [s, nowhere])) },
      port: 0,
      options: {
        maxFrameBytes: MAX_FRAME,
        handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
        connectTimeoutMs: 5000,
        backoffMaxMs: 250,
        closeTimeoutMs: 500,
        // Every fuzzing connection comes from 127.0.0.1: room for all of them at once (the
        // per-host limit has its own test, `handshakeSlotCases`).
        maxPendingHandshakesPerHost: concurrency + 8,
      },
    });
    const L = listener;
    const address = L.address;
    good.setPeers({ [LISTENER]: address, [GOOD]: goodAddress });
    await L.start();
    await good.start({ onMessage: (m) => fromListener.push(m) });
    const g = good;
    const sendGood = (n: number) => {
      for (let i = 0; i < n; i++) {
        g.send({ type: 'heartbeat', from: GOOD, to: LISTENER, term: 1, commit: 0, readRound: goodSent++ });
      }
    };
    const drain = () => {
      for (const m of L.received.splice(0)) check.take(m);
    };
    drainTimer = setInterval(drain, 25);
    sendGood(10);
    await waitFor(
      () => check.goodNext >= 10,
      15_000,
      () => `the first good-peer messages (${check.goodNext}/10)`,
    );
    goodTimer = setInterval(() => sendGood(4), 10);

    const layer: StreamLayer = kit.dialer();
    const probe = await layer.dial(address, AbortSignal.timeout(10_000));
    const framed = probe.messageFramed;
    probe.destroy();

    const secret = secretBytes(SECRET);
    let nextIndex = 0;
    /** One round: shots handed out in index order until `frames` are planned; `concurrency` at once. */
    const round = async (roundSeed: number, frames: number) => {
      const first = nextIndex;
      const idle = idlePool(roundSeed);
      let planned = 0;
      const counts = { frames: 0, pre: 0, post: 0, kinds: {} as Record<string, number> };
      const nextShot = (slot: NodeId): Shot | null => {
        if (planned >= frames || check.failures > 100) return null;
        const index = nextIndex++;
        const s = buildShot(index, index - first, { seed: roundSeed, slot, framed, peers, idle });
        planned += s.frames;
        return s;
      };
      const fire = async (slot: NodeId, shot: Shot) => {
        const what = `shot ${shot.index} (${shot.label}) as ${slot}`;
        let c: WireClient;
        try {
          c = await WireClient.dial(layer, address, 15_000);
        } catch (err) {
          check.problem(`${what}: could not connect: ${(err as Error).message}`);
          return;
        }
        try {
          if (shot.auth) {
            const answer = await c.handshake({ clusterId: CLUSTER, secret, from: slot, to: LISTENER });
            if (answer?.kind !== FrameKind.Welcome) {
              check.problem(
                `${what}: the genuine handshake was not welcomed (${answer ? `kind ${answer.kind}` : 'closed'})`,
              );
              return;
            }
          }
          check.expect(slot, shot);
          for (const w of shot.writes) c.write(...w);
          counts.frames += shot.frames;
          if (shot.auth) counts.post++;
          else counts.pre++;
          counts.kinds[shot.label] = (counts.kinds[shot.label] ?? 0) + 1;
          if (shot.end) c.end();
          const deadline = CLOSE_DEADLINE_MS + (shot.slow ? HANDSHAKE_TIMEOUT_MS : 0);
          if (!(await c.waitClosed(deadline)))
            check.problem(`${what}: the listener kept the connection open`);
        } catch (err) {
          check.problem(`${what}: ${(err as Error).message}`);
        } finally {
          c.destroy();
        }
      };
      // The slow shots first, in the background (their frames are not part of the plan).
      const slow = Array.from({ length: SLOW_SHOTS }, (_, k) => {
        const index = nextIndex++;
        const slot = slots[k % slots.length]!;
        const kind = k % 2 === 0 ? 'silent' : 'stalled-hello';
        return fire(
          slot,
          buildShot(index, index - first, { seed: roundSeed, slot, framed, peers, idle }, kind),
        );
      });
      await Promise.all([
        ...slow,
        ...slots.map(async (slot) => {
          for (let s = nextShot(slot); s; s = nextShot(slot)) await fire(slot, s);
        }),
      ]);
      return counts;
    };
    /** After this, everything the listener delivered for closed connections has reached `received`. */
    const failIfProblems = (when: string) => {
      if (check.failures > 0) {
        throw new Error(`${tag} ${check.failures} problems ${when}:\n  ${check.problems.join('\n  ')}`);
      }
    };
    const settle = async (when: string) => {
      let s: Awaited<ReturnType<MemberProcess['stats']>>;
      try {
        s = await L.stats(); // replies come after every message the child sent before
      } catch (err) {
        throw new Error(
          `${tag} the listener process does not answer ${when} (crashed?): ${(err as Error).message}; ` +
            `${check.failures} problems before that:\n  ${check.problems.join('\n  ')}`,
        );
      }
      drain();
      check.settle();
      failIfProblems(when);
      return s;
    };

    /**
     * The listener's counters must account for every connection of a round: accepted once,
     * and counted once, as a handshake failure when it never authenticated, as a rejected
     * frame when it did. A connection the fuzzer half-closed is counted when the listener
     * sees the close, which can be just after the fuzzer did: wait for it, with a deadline.
     * A mismatch is recorded (the run goes on, so that every figure is still reported).
     */
    type Counter = 'connectionsAccepted' | 'handshakeFailures' | 'framesRejected';
    const counterProblems: string[] = [];
    const accounted = async (
      when: string,
      from: TransportStats,
      want: Record<Counter, number>,
      kinds: Record<string, number>,
    ) => {
      const deadline = performance.now() + 3000;
      for (;;) {
        const s = await L.stats();
        const off = (Object.keys(want) as Counter[]).filter((k) => s.stats[k] - from[k] !== want[k]);
        if (off.length === 0) return s;
        if (performance.now() > deadline || off.some((k) => s.stats[k] - from[k] > want[k])) {
          let why = off.map((k) => `${k} grew by ${s.stats[k] - from[k]}, expected ${want[k]}`).join('; ');
          const short = want.framesRejected - (s.stats.framesRejected - from.framesRejected);
          if (framed && short > 0 && short === (kinds['post:oversized-body'] ?? 0)) {
            why +=
              ` — as many as the authenticated connections that sent a WebSocket message over the frame limit` +
              ` (post:oversized-body, ${short}): the listener closes those without counting a rejected frame`;
          }
          const shots = Object.entries(kinds)
            .sort()
            .map(([k, n]) => `${k} ${n}`)
            .join(', ');
          counterProblems.push(`${when}: ${why} (shots: ${shots})`);
          return s;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const want = (c: { pre: number; post: number }): Record<Counter, number> => ({
      connectionsAccepted: c.pre + c.post,
      handshakeFailures: c.pre,
      framesRejected: c.post,
    });
    const zero = {
      connectionsAccepted: 0,
      handshakeFailures: 0,
      framesRejected: 0,
      peers: {},
    } as TransportStats;
    // The good peer's connection and the probe.
    const start = await accounted(
      'at the start',
      zero,
      { connectionsAccepted: 2, handshakeFailures: 1, framesRejected: 0 },
      {},
    );

    // Warm-up round, then the baseline.
    const w = await round(seed ^ 0x7a3d, warmup);
    await settle('in the warm-up round');
    const before = await accounted('in the warm-up round', start.stats, want(w), w.kinds);
    log(
      `${tag} warm-up: ${fmt(w.frames)} frames on ${fmt(w.pre + w.post)} connections; listener heap ${mib(before.heap)}`,
    );

    // The measured round.
    const t0 = performance.now();
    const m = await round(seed, target);
    const durationMs = performance.now() - t0;
    const afterRun = await settle('while fuzzing');
    clearInterval(goodTimer);
    goodTimer = null;
    await accounted('in the fuzzing round', before.stats, want(m), m.kinds);

    // Still serving: the good peer's last messages, and the listener's own messages to it.
    sendGood(100);
    await waitFor(
      () => check.goodNext >= goodSent || check.failures > 0,
      20_000,
      () => `the good peer's messages (${check.goodNext}/${goodSent} arrived)`,
    );
    for (let i = 0; i < 20; i++)
      L.send({ type: 'heartbeatResponse', from: LISTENER, to: GOOD, term: 1, readRound: i });
    await waitFor(
      () => fromListener.length >= 20,
      20_000,
      () => `the listener's messages to the good peer (${fromListener.length}/20)`,
    );
    fromListener.forEach((msg, i) => {
      if (msg.type !== 'heartbeatResponse' || msg.readRound !== i || msg.from !== LISTENER)
        check.problem(
          `the good peer got ${msg.type} #${i} from ${msg.from} instead of heartbeatResponse #${i}`,
        );
    });
    drain();
    failIfProblems('after fuzzing');
    const after = await L.stats();

    const d = (k: 'framesRejected' | 'handshakeFailures' | 'connectionsAccepted') =>
      after.stats[k] - before.stats[k];
    const goodStats = good.stats();
    const link = goodStats.peers[LISTENER];
    const report: FuzzReport = {
      transport: kit.name,
      frames: m.frames,
      connections: m.pre + m.post,
      preAuthConnections: m.pre,
      postAuthConnections: m.post,
      fuzzMessagesDelivered: check.fuzzDelivered,
      droppedBeforeOversized: check.droppedBeforeOversized,
      goodMessages: check.goodNext,
      durationMs,
      heapBaselineBytes: before.heap,
      heapAfterBytes: after.heap,
      kinds: m.kinds,
      before: before.stats,
      after: after.stats,
    };
    log(
      `${tag} ${fmt(m.frames)} frames on ${fmt(m.pre + m.post)} connections (${fmt(m.pre)} before the handshake, ${fmt(m.post)} after) in ${(durationMs / 1000).toFixed(1)} s (${fmt(Math.round(m.frames / (durationMs / 1000)))} frames/s)`,
    );
    log(
      `${tag} listener: +${fmt(d('framesRejected'))} frames rejected, +${fmt(d('handshakeFailures'))} handshake failures, +${fmt(d('connectionsAccepted'))} connections; ${fmt(check.fuzzDelivered)} fuzz messages delivered and checked (${fmt(check.droppedBeforeOversized)} discarded with an oversized frame); ${fmt(check.goodNext)} good-peer messages in order`,
    );
    log(
      `${tag} listener heap after gc: ${mib(before.heap)} after warm-up, ${mib(after.heap)} at the end (${after.heap >= before.heap ? '+' : ''}${mib(after.heap - before.heap)}); heap right after the round ${mib(afterRun.heap)}`,
    );

    const failures: string[] = [...counterProblems];
    if (after.heap - before.heap >= heapLimit)
      failures.push(
        `the listener's settled heap grew by ${mib(after.heap - before.heap)} (limit ${mib(heapLimit)})`,
      );
    if (link?.state !== 'open' || link.reconnects !== 0 || goodStats.messagesDropped !== 0)
      failures.push(
        `the good peer's link was disturbed: state ${link?.state}, ${link?.reconnects} reconnects, ${goodStats.messagesDropped} dropped`,
      );
    if (check.goodNext !== goodSent)
      failures.push(`${check.goodNext} of ${goodSent} good-peer messages arrived`);
    if (m.frames < target) failures.push(`only ${m.frames} frames were thrown (target ${target})`);
    if (failures.length > 0) throw new Error(`${tag} ${failures.join('; ')}`);
    return report;
  } finally {
    if (goodTimer) clearInterval(goodTimer);
    if (drainTimer) clearInterval(drainTimer);
    await listener?.kill();
    await good?.close();
  }
}

/** The fuzz run as a case list, like the other shared suites. */
export function fuzzCases(kit: TransportKit, options: FuzzOptions = {}): FuzzCase[] {
  return [
    {
      name: `${kit.name}: a live listener survives ${fmt(options.frames ?? 200_000)} random, truncated, oversized and schema-breaking frames, keeps serving a well-behaved peer and keeps its heap flat`,
      timeoutMs: 120_000,
      run: async () => {
        await fuzzListener(kit, options);
      },
    },
  ];
}
