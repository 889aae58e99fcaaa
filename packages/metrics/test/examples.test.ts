import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { alertRulesFile, dashboardFile, RaftMetrics } from '../src/index.js';

const dir = join(import.meta.dirname, '..');

it('the README example runs, serves metrics over HTTP and shows one leader', () => {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(dir, 'examples', 'three-nodes.ts')],
    {
      encoding: 'utf8',
      cwd: dir,
      timeout: 60_000,
    },
  );
  const lines = out.trim().split('\n');
  expect(lines.filter((l) => /^quorate_raft_is_leader\{node="n\d"\} 1$/.test(l))).toHaveLength(1);
  expect(lines.filter((l) => /^quorate_raft_is_leader\{node="n\d"\} 0$/.test(l))).toHaveLength(2);
  expect(lines.filter((l) => /^quorate_raft_proposals_total\{node="n\d"\} 100$/.test(l))).toHaveLength(1);
});

it('the README shows examples/three-nodes.ts as it is', () => {
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  const example = readFileSync(join(dir, 'examples', 'three-nodes.ts'), 'utf8');
  expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
});

it('the README lists every metric the registry exports', async () => {
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  const m = new RaftMetrics({ prefix: '', processMetrics: false });
  const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
  expect(names.length).toBeGreaterThan(30);
  expect(
    names.filter((n) => !readme.includes(`\`${n}\``) && !new RegExp(`[\`, ]${n}[\`,]`).test(readme)),
  ).toEqual([]);
});

it('points to the dashboard and the alert rules it ships', () => {
  expect(JSON.parse(readFileSync(dashboardFile, 'utf8')).uid).toBe('quorate-raft');
  expect(readFileSync(alertRulesFile, 'utf8')).toContain('alert: QuorateNoLeader');
});
