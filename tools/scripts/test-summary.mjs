#!/usr/bin/env node
// Adds up the per-package vitest summaries of a `pnpm test` log and prints one plain
// closing line, `tests: N passed, N failed, N skipped`, so a reader of CI's output (or a
// tool that reads closing lines) sees the total without scrolling through each package.
import { readFileSync } from 'node:fs';

const ESC = String.fromCharCode(27);
const text = readFileSync(process.argv[2], 'utf8').replaceAll(new RegExp(`${ESC}\\[[0-9;]*m`, 'g'), '');
let passed = 0;
let failed = 0;
let skipped = 0;
let packages = 0;
for (const line of text.split('\n')) {
  // vitest: "      Tests  93 passed | 18 skipped (111)" or "Tests  1 failed | 2 passed (3)"
  const m = /^\S*:?\s+Tests\s+(.*)\(\d+\)\s*$/.exec(line);
  if (!m) continue;
  packages++;
  for (const [, n, kind] of m[1].matchAll(/(\d+) (passed|failed|skipped|todo)/g)) {
    if (kind === 'passed') passed += Number(n);
    else if (kind === 'failed') failed += Number(n);
    else skipped += Number(n);
  }
}
console.log(`\n${packages} test suites`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
