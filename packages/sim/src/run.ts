import { type SimOptions, type SimResult, simulate } from './simulator.js';

export interface RunSummary {
  seeds: number;
  violations: number;
  failed: SimResult[];
  results: SimResult[];
  elapsedMs: number;
}

/** Run seeds `[first, first + count)` one after another. */
export async function runSeeds(
  first: number,
  count: number,
  base: Omit<SimOptions, 'seed'>,
  onResult?: (r: SimResult) => void,
): Promise<RunSummary> {
  const t0 = performance.now();
  const results: SimResult[] = [];
  for (let s = first; s < first + count; s++) {
    const r = await simulate({ ...base, seed: s });
    results.push(r);
    onResult?.(r);
  }
  const failed = results.filter((r) => r.violations.length > 0);
  return {
    seeds: count,
    violations: failed.reduce((a, r) => a + r.violations.length, 0),
    failed,
    results,
    elapsedMs: performance.now() - t0,
  };
}

/** A failing run as the operator needs it: what broke, how to replay it, what led there. */
export function formatFailure(r: SimResult, extraFlags = ''): string {
  const lines = [
    `seed ${r.seed} (${r.nodes} nodes, ${r.steps} steps, ${r.election}, digest ${r.digest}): ${r.violations.length} violation(s)`,
    ...r.violations.map(
      (v) => `  [${v.kind}] at ${(v.time / 1000).toFixed(3)}ms${v.node ? ` on ${v.node}` : ''}: ${v.detail}`,
    ),
    `  reproduce: pnpm sim -- --seed ${r.seed} --steps ${r.steps}${extraFlags}`,
    '  last steps:',
    ...r.trace.map((l) => `    ${l}`),
  ];
  return lines.join('\n');
}

export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Distribution lines for the run's timing figures. */
export function summarize(results: readonly SimResult[]): string[] {
  const dist = (name: string, xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    if (s.length === 0) return `${name}: no samples`;
    return `${name}: n=${s.length} min=${s[0]!.toFixed(0)} p50=${pct(s, 50).toFixed(0)} p90=${pct(s, 90).toFixed(0)} p99=${pct(s, 99).toFixed(0)} max=${s[s.length - 1]!.toFixed(0)} ms`;
  };
  const first = results.map((r) => r.stats.firstLeaderMs).filter((x): x is number => x !== null);
  const failover = results.flatMap((r) => r.stats.failoverMs);
  const failoverWrite = results.flatMap((r) => r.stats.failoverWriteMs);
  const quiet = results.map((r) => r.stats.quietCommitMs).filter((x): x is number => x !== null);
  const sum = (f: (r: SimResult) => number) => results.reduce((a, r) => a + f(r), 0);
  return [
    dist('first leader (virtual)', first),
    dist('leader crash -> new leader (virtual)', failover),
    dist('leader crash -> next acknowledged write (virtual)', failoverWrite),
    dist('faults stop -> first commit (virtual)', quiet),
    ...[...new Set(results.map((r) => r.election))].sort().map((e) =>
      dist(
        `  with ${e}`,
        results
          .filter((r) => r.election === e)
          .map((r) => r.stats.quietCommitMs)
          .filter((x): x is number => x !== null),
      ),
    ),
    `totals: ${sum((r) => r.stats.crashes)} crashes, ${sum((r) => r.stats.partitions)} partitions, ${sum((r) => r.stats.pauses)} pauses, ` +
      `${sum((r) => r.stats.elections)} elections, ${sum((r) => r.stats.confChanges)} membership changes, ` +
      `${sum((r) => r.stats.snapshotsStored)} snapshots taken (${sum((r) => r.stats.snapshotsLostToCrash)} writes torn by a crash), ${sum((r) => r.stats.snapshotsSent)} sent, ${sum((r) => r.stats.snapshotsInstalled)} installed, ` +
      `${sum((r) => r.stats.messages)} messages delivered`,
    `clients: ${sum((r) => r.stats.writesAcked)} writes acknowledged, ${sum((r) => r.stats.writesFailed)} failed, ${sum((r) => r.stats.writesUnknown)} with an unknown outcome; ${sum((r) => r.stats.readsAcked)} reads; ` +
      `${sum((r) => r.stats.opsChecked)} operations checked for linearizability (${sum((r) => r.stats.keysUndecided)} keys undecided within the search budget)`,
  ];
}
