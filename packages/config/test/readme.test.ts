import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { updateReadme } from '../src/index.js';

const dir = join(import.meta.dirname, '..');
const readme = readFileSync(join(dir, 'README.md'), 'utf8');

it('the settings table in the README is current (run `pnpm gen-readme`)', () => {
  expect(readme).toBe(updateReadme(readme));
  expect(readme).toMatch(
    /\| `raft\.heartbeatIntervalMs` +\| `QUORATE_RAFT_HEARTBEAT_INTERVAL_MS` +\| `--raft\.heartbeat-interval-ms` +\| number +\| `50` +\|/,
  );
});

it('the README shows examples/start.ts as it is', () => {
  const example = readFileSync(join(dir, 'examples', 'start.ts'), 'utf8');
  expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
});
