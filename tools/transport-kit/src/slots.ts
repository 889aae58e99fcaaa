/**
 * Handshake slots under a slow-loris, for any `TransportKit`: connections that open and
 * then say nothing hold a slot each until `handshakeTimeoutMs`. One host may hold at most
 * `maxPendingHandshakesPerHost` of them: past that its connections are closed at once and
 * counted, and once it lets go, a real member connects and is heard. Framework-agnostic:
 * each case is a name, a deadline and a function that throws on failure.
 */
import type { NodeId } from '@quorate/raft';
import type { Connection } from '@quorate/transport-engine';
import type { TransportKit } from './config.js';
import { waitUntil } from './wait.js';

export interface SlotCase {
  readonly name: string;
  readonly timeoutMs: number;
  run(): Promise<void>;
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

export function handshakeSlotCases(kit: TransportKit): SlotCase[] {
  const PER_HOST = 4;
  return [
    {
      name: `${kit.name}: one host holding connections silent gets ${PER_HOST} handshake slots, no more; freed, a member gets in`,
      timeoutMs: 30_000,
      async run() {
        const mk = (id: NodeId) =>
          kit.create({
            id,
            clusterId: 'slots',
            secret: 'slots-tests-shared-secret',
            peers: {},
            port: 0,
            options: { maxPendingHandshakesPerHost: PER_HOST, handshakeTimeoutMs: 20_000 },
          });
        const a = mk('a');
        const b = mk('b');
        const dialer = kit.dialer();
        const silent: { conn: Connection; closed: boolean }[] = [];
        let heard = 0;
        try {
          const peers = { a: await a.listen(), b: await b.listen() };
          a.setPeers(peers);
          b.setPeers(peers);
          await a.start({ onMessage: () => void heard++ });
          // PER_HOST silent connections take their slots; each further one is closed.
          for (let i = 0; i < PER_HOST + 3; i++) {
            const conn = await dialer.dial(peers.a, AbortSignal.timeout(5000));
            const s = { conn, closed: false };
            conn.attach({
              data: () => {},
              drain: () => {},
              close: () => {
                s.closed = true;
              },
            });
            silent.push(s);
          }
          await waitUntil(
            () => silent.filter((s) => s.closed).length >= 3,
            'the connections over the limit to close',
          );
          await waitUntil(() => a.stats().handshakeFailures >= 3, 'the refusals to be counted');
          check(
            silent.slice(0, PER_HOST).every((s) => !s.closed),
            'a connection within the limit was closed before its handshake timed out',
          );
          check(
            silent.filter((s) => s.closed).length === 3,
            'more connections were closed than the limit asks',
          );
          // Let go of the slots: a real member (same host) connects and is heard. It sends
          // until then: a first attempt may land before the listener has seen the closes.
          for (const s of silent) s.conn.destroy();
          await b.start({ onMessage: () => {} });
          const deadline = performance.now() + 15_000;
          for (let term = 1; heard === 0; term++) {
            if (performance.now() > deadline)
              throw new Error('no member was heard after the slots were freed');
            b.send({ type: 'timeoutNow', from: 'b', to: 'a', term });
            await new Promise((r) => setTimeout(r, 50));
          }
        } finally {
          for (const s of silent) s.conn.destroy();
          await Promise.all([a.close(), b.close(), dialer.close().catch(() => {})]);
        }
      },
    },
  ];
}
