/** A live in-process cluster with metrics attached, for the tests. */
import { MemoryNetwork, MemoryStorage, type Message, type PersistBatch, RaftNode } from '@quorate/raft';
import {
  type InstrumentedTransport,
  instrumentTransport,
  type RaftMetrics,
  type StorageStatsSource,
} from '../src/index.js';

/** The in-memory store, counting its writes the way a disk store would report them. */
export class CountingStorage extends MemoryStorage implements StorageStatsSource {
  writes = 0;
  syncs = 0;
  bytesWritten = 0;
  override async persist(batch: PersistBatch): Promise<void> {
    await super.persist(batch);
    this.writes++;
    if (batch.mustSync !== false) this.syncs++;
    for (const e of batch.entries) this.bytesWritten += e.data.byteLength + 16;
  }
  storageStats() {
    return {
      writes: this.writes,
      syncs: this.syncs,
      bytesWritten: this.bytesWritten,
      sizeBytes: 4096 + this.bytesWritten,
    };
  }
}

/** Poll `cond` until it holds; fail naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  cond: () => T | null | undefined | false,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface MetricsCluster extends AsyncDisposable {
  readonly nodes: RaftNode<null>[];
  readonly transports: InstrumentedTransport[];
  leader(): Promise<RaftNode<null>>;
}

const wireSize = (m: Message) =>
  JSON.stringify(m, (_k, v) => (v instanceof Uint8Array ? v.byteLength : v)).length;

export async function metricsCluster(metrics: RaftMetrics, n = 3): Promise<MetricsCluster> {
  const net = new MemoryNetwork();
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const transports: InstrumentedTransport[] = [];
  const nodes = ids.map((id) => {
    const transport = instrumentTransport(net.transport(id), { sizeOf: wireSize });
    const storage = new CountingStorage();
    transports.push(transport);
    // A long election timeout: a stalled event loop on a busy machine must not cause extra
    // elections that would change what the tests count.
    const node = new RaftNode<null>({
      id,
      members: ids,
      storage,
      transport,
      stateMachine: { apply: () => null },
      heartbeatIntervalMs: 50,
      electionTimeoutMs: 1000,
      requestTimeoutMs: 30_000,
    });
    metrics.attach(node, { transport, storage });
    return node;
  });
  await Promise.all(nodes.map((x) => x.start()));
  const leader = () => waitFor(() => nodes.find((x) => x.isLeader), 'a leader');
  return {
    nodes,
    transports,
    leader,
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((x) => x.stop()));
    },
  };
}

/** `name{a="b",…} value` lines of an exposition, as [name, labels, value]. */
export function parseExposition(
  text: string,
): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}
