/**
 * Property: whatever timing and flow-control settings the config accepts, the Raft core
 * accepts too once the runtime has turned milliseconds into ticks — so a node never passes
 * config validation and then fails to start.
 */
import { coreConfigIssues, defaultCoreOptions } from '@quorate/raft';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { raftRuntimeOptions, validate } from '../src/index.js';

it('every raft section the config accepts is one the core accepts', () => {
  let accepted = 0;
  fc.assert(
    fc.property(
      fc.record({
        tickMs: fc.integer({ min: 1, max: 200 }),
        heartbeatIntervalMs: fc.integer({ min: 1, max: 2000 }),
        // Around the boundary: from 1 to 6 heartbeats, plus a remainder.
        heartbeats: fc.integer({ min: 1, max: 6 }),
        extraMs: fc.integer({ min: 0, max: 500 }),
        maxInflightMsgs: fc.integer({ min: 1, max: 65_536 }),
        maxInflightBytes: fc.integer({ min: 0, max: 1 << 30 }),
        maxEntriesPerMsg: fc.integer({ min: 1, max: 100_000 }),
        maxMsgBytes: fc.integer({ min: 1024, max: 1 << 24 }),
      }),
      ({ heartbeats, extraMs, ...rest }) => {
        const raft = { ...rest, electionTimeoutMs: rest.heartbeatIntervalMs * heartbeats + extraMs };
        const r = validate({ raft });
        if (!r.ok) return;
        accepted++;
        const o = raftRuntimeOptions(r.config);
        // The runtime's conversion (RaftNode.start).
        const electionTicks = Math.max(2, Math.round(o.electionTimeoutMs / o.tickMs));
        const heartbeatTicks = Math.max(1, Math.round(o.heartbeatIntervalMs / o.tickMs));
        const issues = coreConfigIssues({
          ...defaultCoreOptions,
          ...o.raft,
          id: o.id,
          random: () => 0,
          electionTicks,
          heartbeatTicks,
        });
        expect(issues).toEqual([]);
      },
    ),
    { numRuns: 1000 },
  );
  expect(accepted).toBeGreaterThan(200);
});
