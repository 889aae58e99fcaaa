import { snapshotTransferCases } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { tcpKit } from './kit.js';

describe('snapshot streaming over tcp', () => {
  for (const c of snapshotTransferCases(tcpKit)) it(c.name, c.run, c.timeoutMs);
});
