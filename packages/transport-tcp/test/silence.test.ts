/**
 * A connection over which this node sends and hears nothing back is presumed dead and
 * opened again (`silenceTimeoutMs`): across a partition TCP retransmits into the void for
 * seconds after the heal, a new connection gets through at once. A peer that answers keeps
 * its connection. Real sockets on 127.0.0.1.
 */
import type { Message } from '@quorate/raft';
import { afterEach, expect, it } from 'vitest';
import { TcpTransport } from '../src/index.js';

const SECRET = 'silence-secret-0123456789';
const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function pair(answer: boolean) {
  const mk = (id: string) =>
    new TcpTransport({
      id,
      clusterId: 'silence',
      secret: SECRET,
      peers: {},
      listen: { host: '127.0.0.1', port: 0 },
      logger: null,
      silenceTimeoutMs: 300,
    });
  const a = mk('a');
  const b = mk('b');
  open.push(a, b);
  const aAddr = await a.listen();
  const bAddr = await b.listen();
  a.setPeers({ b: bAddr });
  b.setPeers({ a: aAddr });
  let got = 0;
  await a.start({ onMessage: () => {} });
  await b.start({
    onMessage: (m: Message) => {
      got++;
      if (answer) b.send({ type: 'heartbeatResponse', from: 'b', to: 'a', term: m.term, readRound: 0 });
    },
  });
  return { a, b, got: () => got };
}

const heartbeat: Message = { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 0, readRound: 0 };

async function sendFor(t: TcpTransport, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    t.send(heartbeat);
    await new Promise((r) => setTimeout(r, 30));
  }
}

it('sending into silence for longer than silenceTimeoutMs opens a new connection', async () => {
  const { a, got } = await pair(false);
  // Until the reconnect shows: on a loaded machine the turns run late, never early.
  const deadline = performance.now() + 10_000;
  while ((a.stats().peers.b?.reconnects ?? 0) === 0 && performance.now() < deadline) await sendFor(a, 200);
  expect(got()).toBeGreaterThan(0);
  expect(a.stats().peers.b!.reconnects).toBeGreaterThan(0);
});

it('a peer that answers keeps its connection', async () => {
  const { a, got } = await pair(true);
  await sendFor(a, 1500);
  expect(got()).toBeGreaterThan(10);
  expect(a.stats().peers.b!.reconnects).toBe(0);
});
