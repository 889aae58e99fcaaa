import { handshakeSlotCases } from '@quorate/transport-kit';
import { describe, it } from 'vitest';
import { tcpKit } from './kit.js';

describe('handshake slots (tcp)', () => {
  for (const c of handshakeSlotCases(tcpKit)) it(c.name, c.run, c.timeoutMs);
});
