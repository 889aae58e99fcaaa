import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ConfigIssue } from '../src/index.js';
import { ConfigError, type LoadOptions, loadConfig } from '../src/index.js';

/** A temporary directory removed on dispose. */
export function tempDir(): { dir: string; write(name: string, text: string): string } & Disposable {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-config-'));
  return {
    dir,
    write(name, text) {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Load and expect a ConfigError; returns its issues. */
export async function issuesOf(opts: LoadOptions): Promise<readonly ConfigIssue[]> {
  try {
    await loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected the configuration to be rejected');
}

/** The only issue with `rule`, asserting there is exactly one. */
export function one(issues: readonly ConfigIssue[], rule: string): ConfigIssue {
  const hits = issues.filter((i) => i.rule === rule);
  expect(hits, JSON.stringify(issues, null, 1)).toHaveLength(1);
  return hits[0]!;
}
