import { transportConformanceCases } from '@quorate/raft/testing';
import { networkHarness } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { wsKit } from './kit.js';

describe('WebSocket transport conformance', () => {
  const harness = networkHarness(wsKit, {
    options: { maxQueueBytes: 4 << 20, writeHighWaterBytes: 1 << 20 },
  });
  for (const c of transportConformanceCases(harness)) {
    it.skipIf(c.skip !== undefined)(c.name, c.run, c.timeoutMs);
  }
});
