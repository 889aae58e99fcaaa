import {
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStorage,
  RaftNode,
  type RaftNodeOptions,
  type StateMachine,
} from '../src/index.js';
import type { Entry } from '../src/types.js';

/** Poll `cond` until it holds, failing with `what` after `timeoutMs`. */
export async function waitFor<T>(
  cond: () => T | undefined | null | false,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const dec = new TextDecoder();

/** A tiny KV state machine: entries are "key=value"; apply returns the previous value. */
export class KV implements StateMachine<string | null> {
  data = new Map<string, string>();
  applied = 0;
  restored = 0;

  *snapshot(): Iterable<Uint8Array> {
    // A consistent copy first (the synchronous part), then chunks of 100 keys.
    const entries = [...this.data.entries()];
    for (let i = 0; i < entries.length || i === 0; i += 100) {
      yield new TextEncoder().encode(JSON.stringify(entries.slice(i, i + 100)));
    }
  }

  async restore(_meta: unknown, data: AsyncIterable<Uint8Array>): Promise<void> {
    const next = new Map<string, string>();
    for await (const chunk of data) {
      for (const [k, v] of JSON.parse(new TextDecoder().decode(chunk)) as [string, string][]) next.set(k, v);
    }
    this.data = next;
    this.restored++;
  }

  apply(e: Entry): string | null {
    const s = dec.decode(e.data);
    const i = s.indexOf('=');
    const k = s.slice(0, i);
    const prev = this.data.get(k) ?? null;
    this.data.set(k, s.slice(i + 1));
    this.applied = e.index;
    return prev;
  }
}

export interface TestCluster {
  net: MemoryNetwork;
  ids: string[];
  nodes: Map<string, RaftNode<string | null>>;
  kvs: Map<string, KV>;
  storages: Map<string, MemoryStorage>;
  leader(): RaftNode<string | null> | undefined;
  start(id: string): Promise<void>;
  stopAll(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function cluster(
  n: number,
  extra: Partial<RaftNodeOptions<string | null>> = {},
): Promise<TestCluster> {
  const net = new MemoryNetwork();
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const nodes = new Map<string, RaftNode<string | null>>();
  const kvs = new Map<string, KV>();
  const storages = new Map<string, MemoryStorage>();
  const snapshotStores = new Map<string, MemorySnapshotStore>();
  const start = async (id: string) => {
    // A restarted node keeps its storage (its "disk") but gets a fresh state machine.
    let storage = storages.get(id);
    if (!storage) {
      storage = new MemoryStorage();
      storages.set(id, storage);
    } else {
      storage.reopen();
    }
    const kv = new KV();
    kvs.set(id, kv);
    let snaps = snapshotStores.get(id);
    if (!snaps) {
      snaps = new MemorySnapshotStore();
      snapshotStores.set(id, snaps);
    }
    const node = new RaftNode({
      id,
      storage,
      transport: net.transport(id),
      stateMachine: kv,
      members: ids,
      addressOf: (x) => `http://${x}.test`,
      ...(extra.snapshots ? { snapshots: { ...extra.snapshots, store: snaps } } : {}),
      ...(({ snapshots: _s, ...rest }) => rest)(extra),
    });
    nodes.set(id, node);
    await node.start();
  };
  for (const id of ids) await start(id);
  const c: TestCluster = {
    net,
    ids,
    nodes,
    kvs,
    storages,
    leader: () => [...nodes.values()].find((x) => x.isLeader),
    start,
    stopAll: async () => {
      await Promise.all([...nodes.values()].map((x) => x.stop()));
    },
    [Symbol.asyncDispose]: () => c.stopAll(),
  };
  return c;
}

export const enc = (s: string) => new TextEncoder().encode(s);
