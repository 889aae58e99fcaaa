/** The alert rules load in Prometheus and fire when they should (promtool's rule unit tests). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const dir = join(import.meta.dirname, '..', 'prometheus');
const promtool = (...args: string[]) => {
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
  expect(r.error, 'promtool must be installed (Debian package prometheus)').toBeUndefined();
  return r;
};

it('promtool check rules accepts alerts.yaml', () => {
  const r = promtool('check', 'rules', 'alerts.yaml');
  expect(r.stdout).toContain('SUCCESS: 8 rules found');
  expect(r.status).toBe(0);
});

it('each alert fires on the series it is meant for, and not before its time (promtool test rules)', () => {
  const r = promtool('test', 'rules', 'alerts.test.yaml');
  expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
  expect(r.status).toBe(0);
});
