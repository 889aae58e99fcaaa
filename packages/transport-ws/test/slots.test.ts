import { handshakeSlotCases } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { wsKit } from './kit.js';

describe('handshake slots (ws)', () => {
  for (const c of handshakeSlotCases(wsKit)) it(c.name, c.run, c.timeoutMs);
});
