/**
 * Transport benchmark between two processes on loopback: this process sends AppendEntries
 * (one entry of 256 B or 16 KiB each) through a TCP or WebSocket transport, with and
 * without mutual TLS, keeping a window of messages in flight; a peer process
 * (transport-peer.ts) answers each with an AppendEntries response, as a follower would.
 * Reports messages and payload MB/s per configuration (median of the repetitions, which
 * alternate between the transports so both see the same machine noise), the TCP/WS ratio,
 * CPU of both sides, and the codec's encode and decode cost per message in this process.
 *
 *   pnpm --filter @quorate/e2e bench:transports [-- --reps 3 --duration 2 --window 256]
 */
import { parseArgs } from 'node:util';
import { decodeMessage, defaultWireLimits, encodeMessageFrame, FRAME_HEADER_BYTES } from '@quorate/codec';
import type { AppendRequest, Message } from '@quorate/raft';
import type { NetworkTransport } from '@quorate/transport-engine';
import { ChildHandle, testPki } from '@quorate/transport-kit';
import { TcpTransport } from '@quorate/transport-tcp';
import { WsTransport } from '@quorate/transport-ws';

/** `ws-unmasked`: WebSocket with `maskFrames: false` (no masking pass; direct links only). */
export type Kind = 'tcp' | 'ws' | 'ws-unmasked';

/** What the peer process needs to build its transport (crosses the IPC channel). */
export interface PeerConfig {
  kind: Kind;
  id: string;
  clusterId: string;
  secret: string;
  peers: Record<string, string>;
  tls?: { ca: string; cert: string; key: string };
}

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '2' },
    window: { type: 'string', default: '256' },
  },
});
const reps = Number(values.reps);
const durationMs = Number(values.duration) * 1000;
const windowSize = Number(values.window);
const sizes = [256, 16 * 1024];
const clusterId = 'bench';
const secret = 'transport-benchmark-secret';
const peerScript = new URL('./transport-peer.ts', import.meta.url).pathname;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function appendOf(prevIndex: number, data: Uint8Array): AppendRequest {
  return {
    type: 'append',
    from: 'n1',
    to: 'n2',
    term: 1,
    prevIndex,
    prevTerm: 1,
    entries: [{ index: prevIndex + 1, term: 1, type: 0, data }],
    commit: prevIndex,
  };
}

interface Sample {
  msgsPerSec: number;
  mbPerSec: number;
  /** CPU of this process and of the peer, in % of one core, over the measured window. */
  cpuSelf: number;
  cpuPeer: number;
}

function create(
  kind: Kind,
  peers: Record<string, string>,
  tls: PeerConfig['tls'],
  onMessage: (m: Message) => void,
) {
  const common = { id: 'n1', clusterId, secret, peers, logger: null };
  const t: NetworkTransport =
    kind === 'tcp'
      ? new TcpTransport({
          ...common,
          listen: { host: '127.0.0.1', port: 0 },
          ...(tls ? { tls: { ...tls, requireClientCert: true } } : {}),
        })
      : new WsTransport({
          ...common,
          listen: { host: '127.0.0.1', port: 0, path: '/raft' },
          ...(tls ? { tls: { ...tls, requireClientCert: true } } : {}),
          ...(kind === 'ws-unmasked' ? { maskFrames: false } : {}),
        });
  return { t, start: () => t.start({ onMessage }) };
}

/** One peer process and one local transport; every payload size measured over them. */
async function session(kind: Kind, withTls: boolean): Promise<Map<number, Sample>> {
  const pki = withTls ? testPki() : null;
  const tls = pki ? { ca: pki.ca, cert: pki.member.cert, key: pki.member.key } : undefined;
  const child = new ChildHandle(peerScript);
  let inflight = 0;
  let acked = 0;
  let next = 0;
  let data = new Uint8Array(0);
  let local: NetworkTransport | null = null;
  const pump = () => {
    while (inflight < windowSize) {
      local!.send(appendOf(next, data));
      next++;
      inflight++;
    }
  };
  try {
    const peerConfig: PeerConfig = { kind, id: 'n2', clusterId, secret, peers: {}, ...(tls ? { tls } : {}) };
    const peerAddress = String((await child.request({ t: 'listen', config: peerConfig })).address);
    const self = create(kind, {}, tls, (m) => {
      if (m.type !== 'appendResponse') return;
      inflight--;
      acked++;
      pump();
    });
    local = self.t;
    const ownAddress = await local.listen();
    const peers = { n1: ownAddress, n2: peerAddress };
    local.setPeers(peers);
    await child.request({ t: 'peers', peers });
    await child.request({ t: 'start' });
    await self.start();
    const out = new Map<number, Sample>();
    for (const size of sizes) {
      data = new Uint8Array(size).fill(7);
      if (inflight === 0) pump();
      await sleep(300); // warm-up: connection, JIT, the previous size's messages drain
      const a0 = acked;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const p0 = (await child.request({ t: 'cpu' })).cpu as NodeJS.CpuUsage;
      await sleep(durationMs);
      const a1 = acked;
      const t1 = performance.now();
      const c1 = process.cpuUsage(c0);
      const p1 = (await child.request({ t: 'cpu' })).cpu as NodeJS.CpuUsage;
      const secs = (t1 - t0) / 1000;
      const msgs = (a1 - a0) / secs;
      out.set(size, {
        msgsPerSec: msgs,
        mbPerSec: (msgs * size) / 1e6,
        cpuSelf: ((c1.user + c1.system) / 1e4 / secs) * 1,
        cpuPeer: ((p1.user - p0.user + p1.system - p0.system) / 1e4 / secs) * 1,
      });
    }
    return out;
  } finally {
    await local?.close().catch(() => {});
    await child.request({ t: 'close' }).catch(() => {});
    await child.kill();
  }
}

/** The codec's cost per message in this process: encode a whole frame, decode and validate it. */
function codecCost(size: number): { encodeNs: number; decodeNs: number } {
  const msg = appendOf(41, new Uint8Array(size).fill(7));
  const ctx = { clusterId, peer: 'n1', local: 'n2', limits: defaultWireLimits };
  const frameBytes = encodeMessageFrame(clusterId, msg);
  const payload = frameBytes.subarray(FRAME_HEADER_BYTES);
  const time = (f: () => unknown) => {
    for (let i = 0; i < 20_000; i++) f();
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const n = 50_000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) f();
      runs.push(Number(process.hrtime.bigint() - t0) / n);
    }
    return median(runs);
  };
  return {
    encodeNs: time(() => encodeMessageFrame(clusterId, msg)),
    decodeNs: time(() => decodeMessage(payload, ctx)),
  };
}

const configs: [Kind, boolean][] = [
  ['tcp', false],
  ['ws', false],
  ['ws-unmasked', false],
  ['tcp', true],
  ['ws', true],
];
const results = new Map<string, Sample[]>();
const key = (k: Kind, tls: boolean, size: number) => `${k}|${tls}|${size}`;

console.log(
  `transport benchmark: 2 processes on 127.0.0.1, AppendEntries of one entry, window ${windowSize} messages, ` +
    `${reps} repetitions of ${durationMs / 1000} s per configuration (alternating)\n`,
);
for (let r = 0; r < reps; r++) {
  for (const [kind, tls] of configs) {
    const s = await session(kind, tls);
    for (const [size, sample] of s) {
      const k = key(kind, tls, size);
      results.set(k, [...(results.get(k) ?? []), sample]);
    }
  }
}

const pad = (s: string, n: number) => s.padEnd(n);
console.log(
  `${pad('transport', 10)}${pad('tls', 5)}${pad('payload', 9)}${pad('msgs/s (median [min-max])', 30)}${pad('MB/s', 8)}cpu % (sender / peer)`,
);
for (const [kind, tls] of configs) {
  for (const size of sizes) {
    const xs = results.get(key(kind, tls, size))!;
    const m = xs.map((x) => x.msgsPerSec);
    const k = (v: number) => `${(v / 1000).toFixed(1)}k`;
    console.log(
      `${pad(kind, 10)}${pad(tls ? 'yes' : 'no', 5)}${pad(size === 256 ? '256 B' : '16 KiB', 9)}` +
        `${pad(`${k(median(m))} [${k(Math.min(...m))}-${k(Math.max(...m))}]`, 30)}` +
        `${pad(median(xs.map((x) => x.mbPerSec)).toFixed(1), 8)}` +
        `${median(xs.map((x) => x.cpuSelf)).toFixed(0)} / ${median(xs.map((x) => x.cpuPeer)).toFixed(0)}`,
    );
  }
}
console.log('\nTCP/WS ratio of median msgs/s (above 1: TCP is faster)');
for (const tls of [false, true]) {
  for (const size of sizes) {
    const t = median(results.get(key('tcp', tls, size))!.map((x) => x.msgsPerSec));
    const w = median(results.get(key('ws', tls, size))!.map((x) => x.msgsPerSec));
    console.log(
      `  ${tls ? 'tls   ' : 'plain '} ${size === 256 ? '256 B ' : '16 KiB'}  ${(t / w).toFixed(2)}`,
    );
  }
}
console.log('\nWS masked / unmasked ratio of median msgs/s, no TLS (the cost of RFC 6455 masking)');
for (const size of sizes) {
  const m = median(results.get(key('ws', false, size))!.map((x) => x.msgsPerSec));
  const u = median(results.get(key('ws-unmasked', false, size))!.map((x) => x.msgsPerSec));
  console.log(`  ${size === 256 ? '256 B ' : '16 KiB'}  ${(m / u).toFixed(2)}`);
}
console.log('\ncodec cost per AppendEntries message in this process (median of 5 runs of 50k)');
for (const size of sizes) {
  const c = codecCost(size);
  console.log(
    `  ${size === 256 ? '256 B ' : '16 KiB'}  encode ${(c.encodeNs / 1000).toFixed(2)} µs  decode+validate ${(c.decodeNs / 1000).toFixed(2)} µs`,
  );
}
