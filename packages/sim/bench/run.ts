/**
 * `pnpm bench` for @quorate/sim: election timing of real `RaftNode`s on virtual time with
 * the default timeouts (50 ms heartbeat, 150 ms election), and the simulator's own speed.
 *
 *   pnpm --filter @quorate/sim bench [-- --seeds 60]
 */
import { parseArgs } from 'node:util';
import { pct, runSeeds } from '../src/run.js';
import { runElections } from './elections.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const { values } = parseArgs({ args: argv, options: { seeds: { type: 'string', default: '60' } } });

console.log(
  '## Election timing (simulator, virtual time, default timeouts: 50 ms heartbeat, 150 ms election)\n',
);
const el = await runElections(Number(values.seeds));
const row = (name: string, xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `| ${name} | ${s.length} | ${s[0]!.toFixed(0)} | ${pct(s, 50).toFixed(0)} | ${pct(s, 90).toFixed(0)} | ${pct(s, 99).toFixed(0)} | ${s[s.length - 1]!.toFixed(0)} |`;
};
console.log('| from → to | samples | min ms | p50 | p90 | p99 | max |');
console.log('|---|---|---|---|---|---|---|');
console.log(row('cold start → first leader', el.firstLeader));
console.log(row('leader crash → new leader', el.failover));
console.log(row('leader crash → next acknowledged write', el.failoverWrite));

console.log('\n## Simulator speed (default faults, 2,000 steps = 20 s of virtual time per seed)\n');
const s = await runSeeds(1, 50, {});
console.log(
  `${s.seeds} seeds in ${(s.elapsedMs / 1000).toFixed(1)} s: ${((s.seeds * 1000) / s.elapsedMs).toFixed(1)} seeds/s, ${s.violations} violations`,
);
