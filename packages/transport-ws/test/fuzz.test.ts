import { fuzzCases } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { wsKit } from './kit.js';

describe('WebSocket listener under fuzz', () => {
  for (const c of fuzzCases(wsKit)) it(c.name, c.run, c.timeoutMs);
});
