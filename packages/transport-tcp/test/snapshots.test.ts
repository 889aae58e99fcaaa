import { snapshotTransferCases } from '@quorate/codec/testing';
import { describe, it } from 'vitest';
import { tcpKit } from './kit.js';

describe('snapshot streaming over tcp', () => {
  for (const c of snapshotTransferCases(tcpKit)) it(c.name, c.run, c.timeoutMs);
});
