/**
 * The runtime's throughput: three RaftNodes in one process over the in-memory transport
 * and storage (no disk, no sockets), `concurrency` proposals kept in flight, 256-byte
 * entries. Measures what the ready loop, group commit and promise bookkeeping cost on
 * top of the core.
 */

import { MemoryStorage } from '../src/memory/memory-storage.js';
import { MemoryNetwork } from '../src/memory/memory-transport.js';
import { RaftNode } from '../src/runtime/raft-node.js';

export async function runRuntime(concurrency: number, durationMs = 3000, warmupMs = 500) {
  const net = new MemoryNetwork();
  const ids = ['n1', 'n2', 'n3'];
  let applied = 0;
  const nodes = ids.map(
    (id) =>
      new RaftNode({
        id,
        members: ids,
        storage: new MemoryStorage(),
        transport: net.transport(id),
        stateMachine: {
          apply: () => {
            applied++;
            return null;
          },
        },
      }),
  );
  await Promise.all(nodes.map((n) => n.start()));
  let leader = nodes.find((n) => n.isLeader);
  while (!leader) {
    await new Promise((r) => setTimeout(r, 5));
    leader = nodes.find((n) => n.isLeader);
  }
  const payload = new Uint8Array(256);
  let done = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      await leader!.propose(payload);
      done++;
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, warmupMs));
  const d0 = done;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const ops = done - d0;
  stop = true;
  await Promise.allSettled(workers);
  await Promise.all(nodes.map((n) => n.stop()));
  return {
    concurrency,
    opsPerSec: ops / elapsed,
    cpuCores: (cpu.user + cpu.system) / 1e6 / elapsed,
    cpuMicrosPerOp: (cpu.user + cpu.system) / ops,
    applied,
  };
}
