import {
  type Entry,
  MemorySnapshotStore,
  MemoryStorage,
  type NodeId,
  type RaftNode,
  type SnapshotMeta,
  type StateMachine,
} from '@quorate/raft';
import { MemoryGroupNetwork, MultiRaftHost, type MultiRaftHostOptions } from '../src/index.js';

const dec = new TextDecoder();
const enc = new TextEncoder();

/** A register per group: the last value written, and how many writes were applied. */
export class Register implements StateMachine<number> {
  value = '';
  writes = 0;
  apply(e: Entry): number {
    this.value = dec.decode(e.data);
    return ++this.writes;
  }
  snapshot(): Iterable<Uint8Array> {
    return [enc.encode(JSON.stringify([this.value, this.writes]))];
  }
  async restore(_meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of data) parts.push(c);
    [this.value, this.writes] = JSON.parse(dec.decode(Buffer.concat(parts)));
  }
}

export const bytes = (s: string) => enc.encode(s);

export async function until(
  what: string,
  cond: () => boolean,
  timeoutMs = 10_000,
  stepMs = 10,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export interface MemoryCluster {
  readonly net: MemoryGroupNetwork;
  readonly ids: NodeId[];
  readonly hosts: Map<NodeId, MultiRaftHost>;
  readonly registers: Map<string, Register>;
  leaderOf(group: number): RaftNode | undefined;
  [Symbol.asyncDispose](): Promise<void>;
}

/** `size` hosts in memory, each hosting groups 0..groups-1 with every host a member. */
export async function memoryCluster(
  size: number,
  groups: number,
  opts: Partial<MultiRaftHostOptions> = {},
): Promise<MemoryCluster> {
  const net = new MemoryGroupNetwork();
  const ids = Array.from({ length: size }, (_, i) => `h${i + 1}`);
  const hosts = new Map<NodeId, MultiRaftHost>();
  const registers = new Map<string, Register>();
  for (const id of ids) {
    const host = new MultiRaftHost({ id, transport: net.transport(id), ...opts });
    await host.start();
    hosts.set(id, host);
  }
  for (const id of ids) {
    for (let g = 0; g < groups; g++) {
      const sm = new Register();
      registers.set(`${id}/${g}`, sm);
      await hosts.get(id)!.addGroup({
        group: g,
        storage: new MemoryStorage(),
        stateMachine: sm,
        members: ids,
        snapshots: { store: new MemorySnapshotStore(), everyEntries: 20, keepEntries: 5 },
      });
    }
  }
  return {
    net,
    ids,
    hosts,
    registers,
    leaderOf(group) {
      for (const h of hosts.values()) {
        const n = h.group(group);
        if (n?.isLeader) return n;
      }
      return undefined;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all([...hosts.values()].map((h) => h.stop()));
    },
  };
}
