/**
 * A published package may import only what its manifest makes users install: its
 * `dependencies` and `peerDependencies`. A package imported but listed only as a dev
 * dependency works in the workspace and in an install of every package together, and
 * breaks for a user who installs that one package (as the container image does).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { publicPackages } from './packages.js';

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) yield p;
  }
}

const bare = (spec: string) =>
  spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;

it('every published package imports only what it depends on', () => {
  const missing: string[] = [];
  for (const p of publicPackages()) {
    const m = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    const allowed = new Set([
      p.name,
      ...Object.keys(m.dependencies ?? {}),
      ...Object.keys(m.peerDependencies ?? {}),
    ]);
    for (const f of sources(join(p.dir, 'src'))) {
      const text = readFileSync(f, 'utf8');
      for (const x of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const spec = x[1]!;
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        // Type-only imports vanish from the emitted JavaScript.
        if (/^\s*(?:import|export)\s+type\s/.test(x[0])) continue;
        if (!allowed.has(bare(spec))) missing.push(`${p.name}: ${f.slice(p.dir.length + 1)} imports ${spec}`);
      }
    }
  }
  expect(missing).toEqual([]);
});
