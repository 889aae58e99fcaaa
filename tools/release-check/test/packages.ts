import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../../..');

export interface PublicPackage {
  name: string;
  dir: string;
  version: string;
  /** Subpaths of its exports map other than ./package.json. */
  entries: string[];
  /** Its binaries: name → script. */
  bin: Record<string, string>;
}

/** Every workspace package that is published (not private). */
export function publicPackages(): PublicPackage[] {
  const out: PublicPackage[] = [];
  for (const group of ['packages', 'apps']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(root, group));
    } catch {
      continue;
    }
    for (const d of names) {
      const dir = join(root, group, d);
      let pkg: {
        name: string;
        version: string;
        private?: boolean;
        exports?: Record<string, unknown>;
        bin?: Record<string, string>;
      };
      try {
        pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      if (pkg.private) continue;
      const entries = Object.keys(pkg.exports ?? { '.': {} }).filter((k) => k !== './package.json');
      out.push({ name: pkg.name, dir, version: pkg.version, entries, bin: pkg.bin ?? {} });
    }
  }
  return out;
}
