/**
 * `pnpm docs`: the API reference, generated from the types with TypeDoc, one section per
 * published package. It must build with no broken `{@link}` (TypeDoc's validation is an
 * error here), and every link inside the generated site must reach a file that exists.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { publicPackages, root } from './packages.js';

const out = mkdtempSync(join(tmpdir(), 'quorate-docs-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function* htmlFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* htmlFiles(p);
    else if (name.endsWith('.html')) yield p;
  }
}

it('builds one section per package, and no link in it is broken', () => {
  const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
  execFileSync(process.execPath, [typedoc, '--out', out], { cwd: root, stdio: 'pipe', timeout: 600_000 });
  const index = readFileSync(join(out, 'index.html'), 'utf8');
  for (const p of publicPackages()) {
    const page = `modules/${p.name.replace('@', '_').replace('/', '_')}.html`;
    expect(index, `the index links ${p.name}`).toContain(`href="${page}"`);
    expect(existsSync(join(out, page)), page).toBe(true);
  }
  const broken: string[] = [];
  let links = 0;
  for (const file of htmlFiles(out)) {
    const html = readFileSync(file, 'utf8');
    for (const m of html.matchAll(/(?:href|src)="([^"]+)"/g)) {
      const target = m[1]!;
      if (/^(https?:|mailto:|data:|#)/.test(target)) continue;
      links++;
      const path = decodeURIComponent(target.split('#')[0]!.split('?')[0]!);
      if (!existsSync(resolve(dirname(file), path)))
        broken.push(`${file.slice(out.length + 1)} -> ${target}`);
    }
  }
  expect(links).toBeGreaterThan(1000);
  expect([...new Set(broken)].slice(0, 20)).toEqual([]);
}, 600_000);
