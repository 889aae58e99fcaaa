/**
 * The Grafana dashboard is well-formed and every query in it is valid PromQL: each one,
 * with Grafana's variables filled in, becomes a recording rule that `promtool check rules`
 * parses.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { stringify } from 'yaml';
import { dashboardFile } from '../src/index.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string }[];
}
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};

it('has unique panel ids, panels inside the 24-column grid, and its variables', () => {
  const ids = dashboard.panels.map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const p of dashboard.panels) expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
  expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job']);
  const queries = dashboard.panels.filter((p) => p.type !== 'row');
  expect(queries.length).toBeGreaterThanOrEqual(20);
  for (const p of queries) expect(p.targets?.length, p.title).toBeGreaterThan(0);
});

it('every query parses as PromQL (promtool check rules)', () => {
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const rules = exprs.map((expr, i) => ({
    record: `dashboard:query_${i}`,
    expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*'),
  }));
  const dir = mkdtempSync(join(tmpdir(), 'quorate-dashboard-'));
  try {
    writeFileSync(join(dir, 'queries.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = spawnSync('promtool', ['check', 'rules', 'queries.yaml'], { cwd: dir, encoding: 'utf8' });
    expect(r.error, 'promtool must be installed (Debian package prometheus)').toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(r.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
