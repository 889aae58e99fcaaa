/** The event-loop monitor: a turn that holds the loop past the heartbeat interval is seen and logged. */
import { expect, it } from 'vitest';
import { LoopMonitor } from '../src/loop-monitor.js';
import { waitFor } from './helpers.js';

it('records how late its timer fires, and warns once when a turn held the loop past the heartbeat interval', async () => {
  const samples: number[] = [];
  const warnings: Record<string, unknown>[] = [];
  const log = { warn: (o: Record<string, unknown>) => warnings.push(o) } as never;
  const m = new LoopMonitor({ everyMs: 5, warnMs: 50, log, observe: (s) => samples.push(s) });
  m.start();
  await waitFor(() => samples.length >= 2 || null, 'a few samples');
  // Hold the loop for 200 ms, twice.
  for (let i = 0; i < 2; i++) {
    const until = performance.now() + 200;
    while (performance.now() < until) {
      /* busy */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(() => warnings.length > 0 || null, 'a warning');
  m.stop();
  expect(Math.max(...samples)).toBeGreaterThanOrEqual(0.15);
  // Rate-limited: one warning for both stretches within 10 s.
  expect(warnings).toHaveLength(1);
  expect(warnings[0]!.longestMs as number).toBeGreaterThanOrEqual(150);
});
