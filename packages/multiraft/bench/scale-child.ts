/**
 * One host of `bench/scale.ts`, in its own process: a `MultiRaftHost` of N groups over TCP
 * and LMDB, driven by its parent over IPC.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Entry, NodeId, StateMachine } from '@quorate/raft';
import { LmdbGroupStore } from '@quorate/storage-lmdb';
import { TcpGroupTransport } from '@quorate/transport-tcp';
import { leaderQuiesceBlocker, MultiRaftHost } from '../src/index.js';

type FromParent =
  | { cmd: 'peers'; peers: Record<NodeId, string>; ids: NodeId[] }
  | { cmd: 'status' }
  | { cmd: 'cpu'; ms: number }
  | { cmd: 'exit' };

const [id, dir, groupsArg] = process.argv.slice(2) as [string, string, string];
const groups = Number(groupsArg);
const send = (m: unknown) => process.send!(m);

class Noop implements StateMachine<number> {
  n = 0;
  apply(_e: Entry): number {
    return ++this.n;
  }
}

/** utime + stime of this process, in ms (from /proc). */
function cpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
}

const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

const transport = new TcpGroupTransport({
  id,
  clusterId: 'scale',
  secret: 'scale-bench-secret-0123456789ab',
  peers: { [id]: '127.0.0.1:0' },
  logger: null,
});
const address = await transport.listen();
const store = await LmdbGroupStore.open({ dir: join(dir, id), clusterId: 'scale', nodeId: id });
const host = new MultiRaftHost({ id, transport });
await host.start();
const wokeBy: Record<string, number> = {};
host.events.onAny((e) => {
  const k = e.type === 'woke' ? `woke:${e.reason}` : e.type === 'quiesced' ? 'quiesced' : e.type;
  wokeBy[k] = (wokeBy[k] ?? 0) + 1;
});
global.gc?.();
const rssBefore = rssMiB();
send({ type: 'listening', address });

process.on('message', async (m: FromParent) => {
  if (m.cmd === 'peers') {
    transport.setPeers(m.peers);
    const t0 = performance.now();
    // Added together: their bootstrap writes share LMDB commits.
    const all: Promise<unknown>[] = [];
    for (let g = 0; g < groups; g++) {
      all.push(
        host.addGroup({ group: g, storage: store.group(g), stateMachine: new Noop(), members: m.ids }),
      );
    }
    await Promise.all(all);
    send({ type: 'added', ms: performance.now() - t0 });
  } else if (m.cmd === 'status') {
    let known = 0;
    const blockers: Record<string, number> = {};
    for (const g of host.groupIds()) {
      const n = host.group(g)!;
      if (n.leaderId !== null) known++;
      if (n.isLeader && !host.isQuiesced(g)) {
        const why = (leaderQuiesceBlocker(n.status(), n.idle, (p) => host.isPeerLive(p)) ?? 'none').replace(
          /\d+/g,
          '#',
        );
        blockers[why] = (blockers[why] ?? 0) + 1;
      }
    }
    const s = host.stats();
    global.gc?.();
    send({
      type: 'status',
      knownLeaders: known,
      leaders: s.leaders,
      quiesced: s.quiesced,
      rssMiB: rssMiB(),
      rssBeforeMiB: rssBefore,
      storage: store.storageStats(),
      stats: s,
      blockers,
      events: wokeBy,
    });
  } else if (m.cmd === 'cpu') {
    const c0 = cpuMs();
    const t0 = performance.now();
    const s0 = host.stats();
    await new Promise((r) => setTimeout(r, m.ms));
    const s1 = host.stats();
    send({
      type: 'cpu',
      percent: ((cpuMs() - c0) * 100) / (performance.now() - t0),
      raftMessages: s1.raftMessagesSent - s0.raftMessagesSent,
      hostMessages: s1.hostMessagesSent - s0.hostMessagesSent,
      groupTicks: s1.groupTicks - s0.groupTicks,
    });
  } else if (m.cmd === 'exit') {
    await host.stop();
    await store.close();
    process.exit(0);
  }
});
