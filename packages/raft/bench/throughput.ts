/**
 * Core throughput, measured the way `shared/anchors/etcdraft-bench` measures etcd's raft:
 * three cores in one loop, in-memory storage, no network, no serialization. Each
 * iteration: tick every 10 ms of wall time, the leader proposes B fresh 256-byte
 * entries, every node with a ready persists (in memory), sends, applies into a map keyed
 * by (applied count mod 4096) and acknowledges; then messages are delivered. Every
 * 10,000 applied entries each node compacts to applied - 1000.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { decodeConfChange } from '../src/core/confchange.js';
import { RaftCore } from '../src/core/raft.js';
import { seededRandom } from '../src/core/random.js';
import { MemoryStorage } from '../src/memory/memory-storage.js';
import { EntryType, type Message } from '../src/types.js';

export interface ThroughputResult {
  b: number;
  entriesPerSec: number;
  mbPerSec: number;
  cpuCores: number;
  heapMiB: number;
  rssMiB: number;
  gcs: number;
  term: number;
  applied: number[];
}

export function runThroughput(b: number, warmupMs = 1000, durationMs = 5000, size = 256): ThroughputResult {
  const ids = ['1', '2', '3'];
  const conf = { voters: ids, learners: [], votersOutgoing: [] };
  const nodes = ids.map((id, i) => {
    const storage = new MemoryStorage(conf);
    const core = new RaftCore(
      {
        id,
        random: seededRandom(i + 1),
        electionTicks: 10,
        heartbeatTicks: 1,
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 256,
      },
      storage,
    );
    return { id, storage, core, sm: new Map<number, Uint8Array>(), appliedCount: 0, appliedIndex: 0 };
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let queue: Message[] = [];

  const processAll = () => {
    for (const n of nodes) {
      while (n.core.hasReady()) {
        const rd = n.core.ready();
        for (const m of rd.messages) queue.push(m);
        if (rd.mustPersist) n.storage.persistSync(rd);
        n.core.persisted(rd);
        for (const m of rd.messagesAfterPersist) queue.push(m);
        const ce = rd.committedEntries;
        if (ce.length > 0) {
          for (const e of ce) {
            if (e.type === EntryType.ConfChange) {
              n.core.applyConfChange(decodeConfChange(e.data));
            } else if (e.data.byteLength > 0) {
              n.sm.set(n.appliedCount % 4096, e.data);
              n.appliedCount++;
            }
          }
          n.appliedIndex = ce[ce.length - 1]!.index;
          n.core.applied(n.appliedIndex);
          if (n.appliedCount > 0 && n.appliedIndex % 10_000 < ce.length && n.appliedIndex > 1000) {
            const at = n.appliedIndex - 1000;
            if (at >= n.storage.firstIndex()) {
              void n.storage.compact(at, { index: at, term: n.storage.term(at), conf });
            }
          }
        }
      }
    }
  };
  const deliver = () => {
    const q = queue;
    queue = [];
    for (const m of q) byId.get(m.to)!.core.step(m);
  };

  // Elect node 1, once the founding membership entries are applied.
  processAll();
  nodes[0]!.core.campaign();
  for (let i = 0; i < 100 && nodes[0]!.core.currentRole !== 'leader'; i++) {
    processAll();
    deliver();
  }
  if (nodes[0]!.core.currentRole !== 'leader') throw new Error('no leader');
  const leader = nodes[0]!;

  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  obs.observe({ entryTypes: ['gc'] });

  let lastTick = performance.now();
  let windowStart = 0;
  let startCount = 0;
  let cpuStart = process.cpuUsage();
  const t0 = performance.now();
  let measuring = false;
  let payloadSeq = 0;
  for (;;) {
    const now = performance.now();
    if (!measuring && now - t0 >= warmupMs) {
      measuring = true;
      windowStart = now;
      startCount = leader.appliedCount;
      cpuStart = process.cpuUsage();
      gcs = 0;
    }
    if (measuring && now - windowStart >= durationMs) break;
    if (now - lastTick >= 10) {
      lastTick = now;
      for (const n of nodes) n.core.tick();
    }
    for (let i = 0; i < b; i++) {
      const data = new Uint8Array(size);
      data[0] = payloadSeq & 0xff;
      data[1] = (payloadSeq >> 8) & 0xff;
      payloadSeq++;
      leader.core.propose(data);
    }
    processAll();
    deliver();
  }
  const elapsed = (performance.now() - windowStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  gcs += obs.takeRecords().length;
  obs.disconnect();
  const entries = leader.appliedCount - startCount;
  const mem = process.memoryUsage();
  return {
    b,
    entriesPerSec: entries / elapsed,
    mbPerSec: (entries * size) / 1e6 / elapsed,
    cpuCores: (cpu.user + cpu.system) / 1e6 / elapsed,
    heapMiB: mem.heapUsed / 2 ** 20,
    rssMiB: mem.rss / 2 ** 20,
    gcs,
    term: leader.core.currentTerm,
    applied: nodes.map((n) => n.appliedIndex),
  };
}
