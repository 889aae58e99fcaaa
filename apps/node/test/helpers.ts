import { createServer } from 'node:net';
import { MemoryGroupNetwork } from '@quorate/multiraft';
import { MemoryNetwork, MemorySnapshotStore, MemoryStorage } from '@quorate/raft';
import { QuorateNode, type QuorateNodeOptions } from '../src/node.js';
import type { Member } from '../src/server/api.js';

/** Ports handed out by this process: the OS may offer a just-closed port again. */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1 (the OS picks it), never one handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface InProcessCluster {
  nodes: QuorateNode[];
  members: Member[];
  net: MemoryNetwork;
  leader(): QuorateNode | undefined;
  /** Waits for one leader that every member knows (a follower learns it from its first append). */
  settled(ms?: number): Promise<QuorateNode>;
  url(id: string): string;
  /** A member's client-protocol address. */
  protocolUrl(id: string): string;
  stop(): Promise<void>;
}

export async function inProcessCluster(
  n = 3,
  token: string | null = null,
  more: { diskGuard?: (id: string) => QuorateNodeOptions['diskGuard']; groups?: number } = {},
): Promise<InProcessCluster> {
  const net = new MemoryNetwork();
  const groupNet = new MemoryGroupNetwork();
  const members: Member[] = [];
  for (let i = 1; i <= n; i++) {
    const port = await freePort();
    members.push({
      id: `n${i}`,
      peerAddress: `mem:n${i}`,
      clientAddress: `http://127.0.0.1:${port}`,
      protocolAddress: `quorate://127.0.0.1:${await freePort()}`,
    });
  }
  const nodes = members.map(
    (m) =>
      new QuorateNode({
        id: m.id,
        members,
        ...(more.groups
          ? {
              groups: {
                count: more.groups,
                transport: groupNet.transport(m.id),
                storage: () => ({ log: new MemoryStorage(), snapshots: new MemorySnapshotStore() }),
                balanceIntervalMs: 300,
              },
            }
          : { storage: new MemoryStorage(), transport: net.transport(m.id) }),
        http: { host: '127.0.0.1', port: Number(new URL(m.clientAddress).port) },
        protocol: {
          host: '127.0.0.1',
          port: Number(new URL(m.protocolAddress!).port),
          maxFrameBytes: 64 << 10,
          maxInFlight: 64,
          helloTimeoutMs: 1500,
        },
        api: { token, maxValueBytes: 1024 },
        ...(more.diskGuard?.(m.id) ? { diskGuard: more.diskGuard(m.id)! } : {}),
      }),
  );
  await Promise.all(nodes.map((x) => x.start()));
  return {
    nodes,
    members,
    net,
    leader: () => nodes.find((x) => x.raft.isLeader),
    settled: (ms = 10_000) =>
      waitFor(
        () => {
          const l = nodes.find((x) => x.raft.isLeader);
          if (!l || !nodes.every((x) => x.raft.leaderId === l.id)) return undefined;
          // Sharded: every group has a leader that every member knows.
          for (let g = 1; g < l.shards.length; g++) {
            const gl = nodes.find((x) => x.shards[g]!.raft.isLeader);
            if (!gl || !nodes.every((x) => x.shards[g]!.raft.leaderId === gl.id)) return undefined;
          }
          return l;
        },
        'a leader every member knows',
        ms,
      ),
    url: (id) => members.find((m) => m.id === id)!.clientAddress,
    protocolUrl: (id) => members.find((m) => m.id === id)!.protocolAddress!,
    stop: async () => {
      await Promise.all(nodes.map((x) => x.stop({ transferLeadership: false })));
    },
  };
}
