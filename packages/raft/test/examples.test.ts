import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('the README example runs and prints what it promises', () => {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(import.meta.dirname, '../examples/three-nodes.ts')],
    { encoding: 'utf8', cwd: join(import.meta.dirname, '..'), timeout: 30_000 },
  );
  expect(out).toMatch(/^leader: n\d, total after \+5: 5$/m);
  expect(out).toMatch(/^new leader: n\d, total after \+2: 7$/m);
  expect(out).toMatch(/^n\d reads 7$/m);
});

it("the README's core example (@quorate/raft/core, no runtime) elects itself and applies a write", () => {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(import.meta.dirname, '../examples/core.ts')],
    { encoding: 'utf8', cwd: join(import.meta.dirname, '..'), timeout: 30_000 },
  );
  expect(out.trim()).toBe("leader [ 'hello' ]");
});
