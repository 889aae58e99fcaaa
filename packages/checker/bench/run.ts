/**
 * How long the checker takes on valid concurrent histories: 10k, 100k and 300k operations
 * over about 1,000 keys and 64 processes, with some `info` operations; then the same sizes
 * on 8 hot keys, where each key's search is long. Each size runs `RUNS` times (default 3)
 * and the median is printed. Not a test: `pnpm bench`.
 */
import { checkHistory, type HistoryEvent, parseEvents, simulateHistory } from '../src/index.js';

const RUNS = Number(process.env.RUNS ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function row(label: string, events: HistoryEvent[]): Promise<void> {
  const times: number[] = [];
  let result: Awaited<ReturnType<typeof checkHistory>> | undefined;
  for (let i = 0; i < RUNS; i++) {
    result = await checkHistory(events);
    times.push(result.ms);
  }
  const r = result!;
  if (r.linearizable !== true) throw new Error(`${label}: expected linearizable, got ${r.linearizable}`);
  const ms = median(times);
  const ops = r.counts.invoked;
  console.log(
    `${label.padEnd(34)} ${String(ops).padStart(7)} ops  ${String(r.keys).padStart(5)} keys  ${(ms / 1000).toFixed(2).padStart(6)} s  ${Math.round(
      (ops / ms) * 1000,
    )
      .toLocaleString('en-US')
      .padStart(9)} ops/s  (info ${r.counts.info}, ${r.steps.toLocaleString('en-US')} steps)`,
  );
}

console.log(`@quorate/checker: median of ${RUNS} runs, parsing included (events in memory)`);
for (const [keys, sizes] of [
  [1000, [10_000, 100_000, 300_000]],
  [8, [10_000, 100_000, 300_000]],
] as const) {
  for (const ops of sizes) {
    const events = simulateHistory({
      ops,
      keys,
      processes: 64,
      infoRatio: 0.01,
      failRatio: 0.01,
      seed: ops + keys,
    });
    // Check the generator made a history, and what it costs to parse alone.
    const p0 = performance.now();
    parseEvents(events).end();
    const parseMs = performance.now() - p0;
    await row(`${ops / 1000}k ops, ${keys} keys, 64 processes`, events);
    console.log(`${''.padEnd(34)} (parse alone ${(parseMs / 1000).toFixed(2)} s)`);
  }
}
