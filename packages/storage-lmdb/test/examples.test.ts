import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('the README example runs and prints what it promises', () => {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(import.meta.dirname, '../examples/quickstart.ts')],
    { encoding: 'utf8', cwd: join(import.meta.dirname, '..'), timeout: 30_000 },
  );
  expect(out).toBe(
    [
      'log 1..3, term(2) = 1',
      'after compaction: log 3..3, term(2) = 1',
      'second open refused: STORAGE_LOCKED',
      'reopened: term 1, vote n1, entry 3 = set x=3',
      'snapshot 2: {"x":2}',
      'n2 refused: STORAGE_FOREIGN_NODE',
      '',
    ].join('\n'),
  );
});
