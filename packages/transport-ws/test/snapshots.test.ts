import { snapshotTransferCases } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { wsKit } from './kit.js';

describe('snapshot streaming over ws', () => {
  for (const c of snapshotTransferCases(wsKit)) it(c.name, c.run, c.timeoutMs);
});
