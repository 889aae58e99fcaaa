import { describe, it } from 'vitest';
import { MemoryNetwork, type NodeId } from '../src/index.js';
import {
  type HarnessCluster,
  type RecordedMember,
  recordTransport,
  type TransportHarness,
  transportConformanceCases,
} from '../src/testing/index.js';

/** The in-memory transport under the suite every transport must pass. */
const memoryHarness: TransportHarness = {
  name: 'memory',
  async cluster(ids: readonly NodeId[]): Promise<HarnessCluster> {
    const net = new MemoryNetwork();
    const members = new Map<NodeId, RecordedMember>();
    const start = async (id: NodeId) => {
      members.set(id, await recordTransport(id, net.transport(id)));
    };
    for (const id of ids) await start(id);
    return {
      member: (id) => members.get(id)!,
      stop: (id) => members.get(id)!.close(),
      start,
      close: async () => {
        for (const m of members.values()) await m.close();
      },
    };
  },
};

describe('transport conformance', () => {
  for (const c of transportConformanceCases(memoryHarness)) {
    it.skipIf(c.skip !== undefined)(c.name, c.run, c.timeoutMs);
  }
});
