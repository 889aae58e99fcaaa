/**
 * Snapshot streaming over a real network transport, for any `TransportKit`: two members on
 * loopback, a multi-megabyte snapshot in odd-sized pieces, a slow receiver (flow control),
 * a receiver that refuses, and a receiver that goes away mid-transfer. Framework-agnostic:
 * each case is a name, a deadline and a function that throws on failure.
 */
import type { Message, NodeId, TransportHandler } from '@quorate/raft';
import type { NetworkTransport } from '../net/network-transport.js';
import { SNAPSHOT_WINDOW } from '../net/snapshots.js';
import type { TransportKit } from './config.js';

type SnapshotMessage = Extract<Message, { type: 'snapshot' }>;

export interface SnapshotCase {
  readonly name: string;
  readonly timeoutMs: number;
  run(): Promise<void>;
}

const SECRET = 'snapshot-tests-shared-secret';

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

const snapshotMessage = (from: NodeId, to: NodeId): SnapshotMessage => ({
  type: 'snapshot',
  from,
  to,
  term: 3,
  snapshot: { index: 1000, term: 2, conf: { voters: ['a', 'b'], learners: [], votersOutgoing: [] } },
});

/** Deterministic bytes: byte i of the snapshot is a function of i. */
function bytesAt(start: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = ((start + i) * 2654435761) >>> 24;
  return out;
}

interface Pair {
  a: NetworkTransport;
  b: NetworkTransport;
  close(): Promise<void>;
}

async function pair(kit: TransportKit, onB: TransportHandler['onSnapshot']): Promise<Pair> {
  const mk = (id: NodeId) =>
    kit.create({
      id,
      clusterId: 'snap',
      secret: SECRET,
      peers: {},
      port: 0,
      options: { stallTimeoutMs: 3000 },
    });
  const a = mk('a');
  const b = mk('b');
  const peers = { a: await a.listen(), b: await b.listen() };
  a.setPeers(peers);
  b.setPeers(peers);
  await a.start({ onMessage: () => {} });
  await b.start({ onMessage: () => {}, ...(onB ? { onSnapshot: onB } : {}) });
  return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
}

export function snapshotTransferCases(kit: TransportKit): SnapshotCase[] {
  const cases: SnapshotCase[] = [];
  const add = (name: string, timeoutMs: number, run: () => Promise<void>) =>
    cases.push({ name: `${kit.name}: ${name}`, timeoutMs, run });

  add(
    'streams a 6 MiB snapshot intact to a slow receiver, never more than the window ahead',
    60_000,
    async () => {
      const total = 6 * 1024 * 1024 + 12345;
      let pulled = 0; // bytes the sender has taken from its source
      let consumed = 0; // bytes the receiver has taken from the transport
      let maxAhead = 0;
      let got: SnapshotMessage | null = null;
      const received: Uint8Array[] = [];
      const p = await pair(kit, async (msg, data) => {
        got = msg as SnapshotMessage;
        let n = 0;
        for await (const c of data) {
          received.push(c);
          consumed += c.byteLength;
          maxAhead = Math.max(maxAhead, pulled - consumed);
          if (++n % 4 === 0) await new Promise((r) => setTimeout(r, 5)); // a slow disk
        }
      });
      try {
        async function* source() {
          let at = 0;
          while (at < total) {
            const n = Math.min(total - at, 1 + ((at * 7) % 300_000)); // odd piece sizes
            pulled += n;
            yield bytesAt(at, n);
            at += n;
          }
        }
        await p.a.sendSnapshot(snapshotMessage('a', 'b'), source());
        const whole = Buffer.concat(received);
        check(whole.byteLength === total, `received ${whole.byteLength} bytes of ${total}`);
        check(Buffer.from(bytesAt(0, total)).equals(whole), 'the received bytes differ from those sent');
        check(
          got !== null && (got as SnapshotMessage).snapshot.index === 1000,
          'the snapshot message arrived altered',
        );
        // The window (plus the piece being cut and one in each direction) bounds what is in flight.
        const bound = (SNAPSHOT_WINDOW + 4) * p.a.maxSnapshotChunkBytes + 300_000;
        check(maxAhead <= bound, `the sender ran ${maxAhead} bytes ahead of the receiver (bound ${bound})`);
      } finally {
        await p.close();
      }
    },
  );

  add('a receiver that cannot store the snapshot makes the send fail with its reason', 30_000, async () => {
    const p = await pair(kit, async (_msg, data) => {
      for await (const _ of data) throw new Error('disk full');
    });
    try {
      let err: Error | null = null;
      await p.a
        .sendSnapshot(
          snapshotMessage('a', 'b'),
          (async function* () {
            yield bytesAt(0, 1 << 20);
          })(),
        )
        .catch((e: Error) => {
          err = e;
        });
      check(err !== null, 'the send resolved although the receiver failed');
      check(/disk full/.test(String((err as Error | null)?.message)), `the reason is lost: ${String(err)}`);
    } finally {
      await p.close();
    }
  });

  add('a receiver that goes away mid-transfer fails the send instead of hanging it', 30_000, async () => {
    let started!: () => void;
    const begun = new Promise<void>((r) => {
      started = r;
    });
    const p = await pair(kit, async (_msg, data) => {
      for await (const _ of data) {
        started();
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    try {
      const sending = p.a.sendSnapshot(
        snapshotMessage('a', 'b'),
        (async function* () {
          for (let i = 0; i < 400; i++) yield bytesAt(i, 64 * 1024);
        })(),
      );
      await begun;
      await p.b.close();
      let failed = false;
      await sending.catch(() => {
        failed = true;
      });
      check(failed, 'the send resolved although the receiver closed mid-transfer');
    } finally {
      await p.close();
    }
  });

  add('a member without a snapshot handler refuses at once', 30_000, async () => {
    const p = await pair(kit, undefined);
    try {
      let err: Error | null = null;
      await p.a
        .sendSnapshot(
          snapshotMessage('a', 'b'),
          (async function* () {
            yield bytesAt(0, 1000);
          })(),
        )
        .catch((e: Error) => {
          err = e;
        });
      check(
        err !== null && /does not take snapshots/.test(String((err as Error).message)),
        `unexpected: ${String(err)}`,
      );
    } finally {
      await p.close();
    }
  });

  return cases;
}
