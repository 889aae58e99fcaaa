/**
 * Snapshot streaming over a real network transport, for any `TransportKit`: two members on
 * loopback, a multi-megabyte snapshot in odd-sized pieces, a slow receiver (flow control),
 * a receiver that refuses, a receiver that goes away mid-transfer, connections cut
 * mid-transfer through a relay (the transfer resumes), and a receiver that restarts.
 * Framework-agnostic: each case is a name, a deadline and a function that throws on failure.
 */
import type { Message, NodeId, TransportHandler } from '@quorate/raft';
import { type NetworkTransport, SNAPSHOT_WINDOW } from '@quorate/transport-engine';
import type { TransportKit } from './config.js';
import { type CutProxy, cutProxy, portOf, withPort } from './cut-proxy.js';

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
  /** The real addresses the two listen on. */
  addresses: { a: string; b: string };
  /** Relays that a's connection to b, and b's to a, go through (when asked for). */
  toB: CutProxy | null;
  toA: CutProxy | null;
  close(): Promise<void>;
}

const STALL_MS = 3000;

const member = (kit: TransportKit, id: NodeId, port = 0) =>
  kit.create({
    id,
    clusterId: 'snap',
    secret: SECRET,
    peers: {},
    port,
    options: { stallTimeoutMs: STALL_MS },
  });

async function pair(
  kit: TransportKit,
  onB: TransportHandler['onSnapshot'],
  relay: { toB?: boolean; toA?: boolean } = {},
  onMessageB: TransportHandler['onMessage'] = () => {},
): Promise<Pair> {
  const a = member(kit, 'a');
  const b = member(kit, 'b');
  const addresses = { a: await a.listen(), b: await b.listen() };
  const toB = relay.toB ? await cutProxy(portOf(addresses.b)) : null;
  const toA = relay.toA ? await cutProxy(portOf(addresses.a)) : null;
  a.setPeers({ a: addresses.a, b: toB ? withPort(addresses.b, toB.port) : addresses.b });
  b.setPeers({ a: toA ? withPort(addresses.a, toA.port) : addresses.a, b: addresses.b });
  await a.start({ onMessage: () => {} });
  await b.start({ onMessage: onMessageB, ...(onB ? { onSnapshot: onB } : {}) });
  return {
    a,
    b,
    addresses,
    toB,
    toA,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([toB?.close(), toA?.close()]);
    },
  };
}

/** `total` deterministic bytes in odd-sized pieces; `onPiece(k, n)` runs before piece k (n bytes) is given. */
async function* source(total: number, onPiece?: (k: number, n: number) => void): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let k = 0; at < total; k++) {
    const n = Math.min(total - at, 1 + ((at * 7) % 300_000)); // odd piece sizes
    onPiece?.(k, n);
    yield bytesAt(at, n);
    at += n;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
        await p.a.sendSnapshot(
          snapshotMessage('a', 'b'),
          source(total, (_k, n) => {
            pulled += n;
          }),
        );
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

  /**
   * Cut the relayed connections (a's to b, and b's to a when `both`) each time the receiver
   * has consumed one of `cutAfter` chunks; the one transfer must still complete intact,
   * handed to the receiver's handler once, with every cut breaking a live connection.
   */
  const resumes = async (both: boolean) => {
    const total = 8 * 1024 * 1024 + 777;
    const cutAfter = new Set([3, 11, 19]);
    const cut: number[] = [];
    const received: Uint8Array[] = [];
    let handed = 0;
    let consumed = 0;
    let p!: Pair;
    p = await pair(
      kit,
      async (_msg, data) => {
        handed++;
        for await (const c of data) {
          received.push(c);
          if (cutAfter.has(++consumed)) cut.push(p.toB!.cut() + (both ? p.toA!.cut() : 0));
          await sleep(2); // a disk, so the sender runs a window ahead of what is consumed
        }
      },
      { toB: true, toA: both },
    );
    try {
      await p.a.sendSnapshot(snapshotMessage('a', 'b'), source(total));
      const whole = Buffer.concat(received);
      check(handed === 1, `the receiver was handed ${handed} transfers; the one transfer should resume`);
      check(whole.byteLength === total, `received ${whole.byteLength} bytes of ${total}`);
      check(Buffer.from(bytesAt(0, total)).equals(whole), 'the received bytes differ from those sent');
      check(cut.length === cutAfter.size, `${cut.length} cuts of ${cutAfter.size}`);
      const each = both ? 2 : 1;
      check(
        cut.every((n) => n >= each),
        `a cut found no live connection to break (connections cut: ${cut.join(', ')})`,
      );
      check(
        p.toB!.accepted >= cutAfter.size + 1,
        `a reconnected to b ${p.toB!.accepted - 1} times after ${cutAfter.size} cuts`,
      );
    } finally {
      await p.close();
    }
  };
  add(
    "a connection cut three times mid-transfer resumes where the receiver is, and the receiver's handler sees one transfer",
    60_000,
    () => resumes(false),
  );
  add('cutting the connections both ways (losing ACKs too) mid-transfer still resumes', 60_000, () =>
    resumes(true),
  );

  add('a connection cut as the transfer begins still delivers it intact, once', 60_000, async () => {
    const total = 2 * 1024 * 1024 + 99;
    const received: Uint8Array[] = [];
    let handed = 0;
    let linkUp!: () => void;
    const up = new Promise<void>((r) => {
      linkUp = r;
    });
    const p = await pair(
      kit,
      async (_msg, data) => {
        handed++;
        for await (const c of data) received.push(c);
      },
      { toB: true },
      () => linkUp(),
    );
    try {
      // Open a's connection to b first (a message that b receives), so the cut breaks it.
      p.a.send({ type: 'timeoutNow', from: 'a', to: 'b', term: 1 });
      await up;
      let cuts = 0;
      await p.a.sendSnapshot(
        snapshotMessage('a', 'b'),
        source(total, (k) => {
          if (k === 0 || k === 3) cuts += p.toB!.cut();
        }),
      );
      const whole = Buffer.concat(received);
      check(cuts >= 1, 'the first cut found no open connection');
      check(handed === 1, `the receiver was handed ${handed} transfers`);
      check(Buffer.from(bytesAt(0, total)).equals(whole), 'the received bytes differ from those sent');
    } finally {
      await p.close();
    }
  });

  add(
    'a receiver that restarts mid-transfer fails the send with that reason, not a stall',
    30_000,
    async () => {
      let consumed = 0;
      let enough!: () => void;
      const reached = new Promise<void>((r) => {
        enough = r;
      });
      const p = await pair(kit, async (_msg, data) => {
        for await (const _ of data) {
          // Past the window: the sender has had ACKs, so it cannot start over from BEGIN.
          if (++consumed === SNAPSHOT_WINDOW + 4) {
            enough();
            await new Promise(() => {}); // the process "dies" holding the transfer
          }
        }
      });
      try {
        let err: Error | null = null;
        const sending = p.a
          .sendSnapshot(snapshotMessage('a', 'b'), source(16 * 1024 * 1024))
          .catch((e: Error) => {
            err = e;
          });
        await reached;
        await p.b.close();
        const b2 = member(kit, 'b', portOf(p.addresses.b));
        p.b = b2;
        await b2.listen();
        b2.setPeers(p.addresses);
        await b2.start({
          onMessage: () => {},
          onSnapshot: async (_m, data) => {
            for await (const _ of data) {
              // a fresh node: nothing should come
            }
          },
        });
        await sending;
        check(err !== null, 'the send resolved although the receiver restarted');
        check(
          /no longer has the transfer/.test(String((err as Error | null)?.message)),
          `the send failed for another reason: ${String(err)}`,
        );
      } finally {
        await p.close();
      }
    },
  );

  return cases;
}
