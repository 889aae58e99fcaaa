import { fuzzCases } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { tcpKit } from './kit.js';

describe('TCP listener under fuzz', () => {
  for (const c of fuzzCases(tcpKit)) it(c.name, c.run, c.timeoutMs);
});
