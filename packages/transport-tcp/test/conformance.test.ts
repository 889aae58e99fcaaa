import { transportConformanceCases } from '@quorate/raft/testing';
import { networkHarness } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { tcpKit } from './kit.js';

describe('TCP transport conformance', () => {
  const harness = networkHarness(tcpKit, {
    options: { maxQueueBytes: 4 << 20, writeHighWaterBytes: 1 << 20 },
  });
  for (const c of transportConformanceCases(harness)) {
    it.skipIf(c.skip !== undefined)(c.name, c.run, c.timeoutMs);
  }
});
