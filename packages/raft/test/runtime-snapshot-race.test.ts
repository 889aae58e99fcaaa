/**
 * The runtime's snapshot pipeline at its edges, driven message by message: this node is a
 * follower of a leader played by the test through a scripted transport, and no timer
 * ticks (so nothing happens that the test did not send).
 */
import { describe, expect, it } from 'vitest';
import {
  type Entry,
  MemorySnapshotStore,
  MemoryStorage,
  type Message,
  RaftNode,
  type RaftNodeEvent,
  type SnapshotMeta,
  type SnapshotStore,
  type TimerProvider,
  type Transport,
  type TransportHandler,
} from '../src/index.js';
import { enc, KV, waitFor } from './helpers.js';

/** A transport whose other side is the test: it keeps what the node sends. */
class ScriptedTransport implements Transport {
  handler: TransportHandler | null = null;
  readonly sent: Message[] = [];
  async start(h: TransportHandler): Promise<void> {
    this.handler = h;
  }
  send(m: Message): void {
    this.sent.push(m);
  }
  async close(): Promise<void> {}
}

/** Real clock and deferral, but intervals never fire: no ticks, so no elections. */
const still: TimerProvider = {
  now: () => performance.now(),
  setInterval: () => 0,
  clearInterval: () => {},
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  defer: (fn) => setImmediate(fn),
};

/** One follower node `n1` under test, its leader played through `append`. */
async function follower(store: SnapshotStore, everyEntries = 20, kv = new KV()) {
  const storage = new MemoryStorage();
  const t = new ScriptedTransport();
  const node = new RaftNode({
    id: 'n1',
    storage,
    transport: t,
    stateMachine: kv,
    members: ['n1', 'n2', 'n3'],
    timers: still,
    snapshots: { store, everyEntries, keepEntries: 2 },
  });
  const events: RaftNodeEvent[] = [];
  node.events.onAny((e) => events.push(e));
  await node.start();
  const h = t.handler!;
  const base = node.status().lastIndex;
  const term = Math.max(1, storage.initialState().hardState.term);
  let last = base;
  let lastTerm = base > 0 ? storage.term(base) : 0;
  /** The leader n2 appends `n` puts and names `commit` as committed. */
  const append = (n: number, commit: number) => {
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const index = last + 1 + i;
      entries.push({ index, term, type: 0, data: enc(`k${index}=${index}`) });
    }
    h.onMessage({
      type: 'append',
      from: 'n2',
      to: 'n1',
      term,
      prevIndex: last,
      prevTerm: lastTerm,
      entries,
      commit,
    });
    if (n > 0) {
      last += n;
      lastTerm = term;
    }
  };
  /** The leader's snapshot as of `index`: the puts k(base+1)..k(index). */
  const snapshotAt = (index: number) => {
    const meta: SnapshotMeta = {
      index,
      term,
      conf: { voters: ['n1', 'n2', 'n3'], learners: [], votersOutgoing: [] },
    };
    const state: [string, string][] = [];
    for (let i = base + 1; i <= index; i++) state.push([`k${i}`, String(i)]);
    return { meta, state, msg: { type: 'snapshot' as const, from: 'n2', to: 'n1', term, snapshot: meta } };
  };
  return { node, storage, kv, h, base, append, snapshotAt, events };
}

describe('RaftNode snapshot edges', () => {
  it('writes a snapshot of its own one chunk per turn of the event loop, whatever the store', async () => {
    // Chunks from a synchronous iterable into a store whose writes resolve at once: unless
    // the runtime lets go between chunks, the whole snapshot is written in one turn, and
    // timers (heartbeats) and I/O wait behind it. At each chunk, the state machine checks
    // that a macrotask it queued at the previous one has run.
    const turnBetween: boolean[] = [];
    class Chunky extends KV {
      override *snapshot(): Iterable<Uint8Array> {
        const entries = [...this.data.entries()];
        let ran = true;
        for (let i = 0; i < 10; i++) {
          turnBetween.push(ran);
          ran = false;
          setImmediate(() => {
            ran = true;
          });
          yield enc(JSON.stringify(entries.filter((_, j) => j % 10 === i)));
        }
      }
    }
    const { node, base, append, events } = await follower(new MemorySnapshotStore(), 20, new Chunky());
    try {
      append(25, base + 25);
      await waitFor(() => events.some((e) => e.type === 'snapshotTaken'), 'a snapshot of its own');
      expect(turnBetween).toEqual(Array(10).fill(true));
    } finally {
      await node.stop();
    }
  });

  it('a snapshot message that arrives without its data (as a plain message) is ignored', async () => {
    const store = new MemorySnapshotStore();
    const { node, kv, h, base, append, snapshotAt, events } = await follower(store);
    try {
      append(6, base + 3);
      await waitFor(() => kv.applied === base + 3, 'the first entries to apply');
      // A buggy or hostile peer: the snapshot message alone, ahead of our commit, with no
      // data in the store. Stepping it would make the core install a snapshot nobody has.
      h.onMessage(snapshotAt(base + 50).msg);
      append(0, base + 6);
      await waitFor(() => kv.applied === base + 6, 'the log to go on applying');
      expect(kv.restored).toBe(0);
      expect(node.status().commit).toBe(base + 6);
      expect(events.some((e) => e.type === 'stopped')).toBe(false);
    } finally {
      await node.stop();
    }
  });

  it('a snapshot the log overtook while it streamed is declined, recorded in the log, and snapshots go on', async () => {
    const store = new MemorySnapshotStore();
    const { node, storage, kv, h, base, append, snapshotAt, events } = await follower(store);
    try {
      append(10, base + 4);
      await waitFor(() => kv.applied === base + 4, 'the first entries to apply');
      // The leader streams a snapshot as of base+8 (ahead of our commit when it starts);
      // while it streams, the log catches up and commits past it.
      const snap = snapshotAt(base + 8);
      async function* data() {
        yield enc(JSON.stringify(snap.state.slice(0, 4)));
        append(0, base + 10);
        await waitFor(() => node.status().commit === base + 10, 'the commit to pass the snapshot');
        yield enc(JSON.stringify(snap.state.slice(4)));
      }
      await h.onSnapshot!(snap.msg, data());

      // Declined: the state machine applied the log instead of restoring...
      await waitFor(() => kv.applied === base + 10, 'the log to apply past the snapshot');
      expect(kv.restored).toBe(0);
      // ...and the log names the snapshot the store now holds, so a leader could send it.
      await waitFor(
        () => storage.snapshot().index === snap.meta.index,
        'the log to record the stored snapshot',
      );
      expect(store.latest()?.index).toBe(snap.meta.index);

      // Snapshots of its own go on (the node is not stuck "installing").
      append(30, base + 40);
      await waitFor(() => events.some((e) => e.type === 'snapshotTaken'), 'a snapshot of its own');
      await waitFor(() => storage.snapshot().index === store.latest()?.index, 'log and store to agree');
      expect(store.latest()!.index).toBeGreaterThan(snap.meta.index);
      expect(events.some((e) => e.type === 'stopped')).toBe(false);
    } finally {
      await node.stop();
    }
  });

  it("a snapshot from the leader waits for the node's own snapshot still being written, and wins", async () => {
    // A store whose writers of the node's own snapshots stall until released.
    const inner = new MemorySnapshotStore();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let ownStarted = false;
    let leaderIndex = -1;
    const store: SnapshotStore = {
      latest: () => inner.latest(),
      read: (m) => inner.read(m),
      create: async (meta) => {
        const w = await inner.create(meta);
        if (meta.index === leaderIndex) return w;
        ownStarted = true;
        return {
          ...w,
          write: async (c) => {
            await gate;
            await w.write(c);
          },
        };
      },
    };
    const { node, storage, kv, h, base, append, snapshotAt, events } = await follower(store);
    try {
      append(25, base + 25);
      await waitFor(() => ownStarted, 'a snapshot of its own to start');
      const snap = snapshotAt(base + 60);
      leaderIndex = snap.meta.index;
      async function* data() {
        yield enc(JSON.stringify(snap.state));
      }
      const received = h.onSnapshot!(snap.msg, data());
      await new Promise((r) => setImmediate(r));
      release();
      await received;
      await waitFor(() => kv.restored === 1, 'the leader snapshot to be restored');
      expect(kv.data.get(`k${base + 60}`)).toBe(String(base + 60));
      expect(store.latest()!.index).toBe(base + 60);
      expect(storage.snapshot().index).toBe(base + 60);
      expect(events.some((e) => e.type === 'stopped')).toBe(false);
    } finally {
      await node.stop();
    }
  });
});
