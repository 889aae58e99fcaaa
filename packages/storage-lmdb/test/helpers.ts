import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStorage, type LmdbStorageOptions } from '../src/index.js';

/** A temp directory removed when the scope ends (`using`), or by `remove()`. */
export function tempDir(prefix = 'quorate-lmdb-'): {
  path: string;
  remove(): void;
  [Symbol.dispose](): void;
} {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(path, { recursive: true, force: true });
  return { path, remove, [Symbol.dispose]: remove };
}

export const openStore = (dir: string, extra: Partial<LmdbStorageOptions> = {}): Promise<LmdbStorage> =>
  LmdbStorage.open({ dir, clusterId: 'c1', nodeId: 'n1', ...extra });
