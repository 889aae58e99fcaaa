import { chmodSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EntryType, type HardState } from '@quorate/raft';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { FORMAT_VERSION, isStorageError, type LmdbStorage, StorageErrorCode } from '../src/index.js';
import { openStore, tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dir(): string {
  const d = tempDir();
  cleanups.push(d.remove);
  return d.path;
}

async function store(path: string, extra = {}): Promise<LmdbStorage> {
  const s = await openStore(path, extra);
  cleanups.push(() => s.close());
  return s;
}

const hs = (term: number, vote: string | null, commit = 0): HardState => ({ term, vote, commit });
const ent = (index: number, term: number) => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(`v${index}`),
});

/** A store with a few entries and a vote, closed. */
async function populated(path: string): Promise<void> {
  const s = await openStore(path);
  await s.persist({ snapshot: null, entries: [1, 2, 3].map((i) => ent(i, 1)), hardState: hs(1, 'n1', 2) });
  await s.close();
}

async function refusal(
  p: Promise<unknown>,
): Promise<{ code: string; path: string | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    if (!isStorageError(err)) throw err;
    return { code: err.code, path: err.path, message: err.message };
  }
  throw new Error('expected the open to be refused');
}

describe('opening a data directory', () => {
  it('records the format, cluster and node id, and reopens with exactly the committed state', async () => {
    const path = dir();
    await populated(path);
    const s = await store(path);
    expect(s.meta).toMatchObject({ format: FORMAT_VERSION, clusterId: 'c1', nodeId: 'n1' });
    expect(s.hardState()).toEqual(hs(1, 'n1', 2));
    expect([s.firstIndex(), s.lastIndex(), s.term(3)]).toEqual([1, 3, 1]);
  });

  it('keeps its files inside the directory even when its name has an extension', async () => {
    const path = join(dir(), 'node1.data');
    await populated(path);
    expect(statSync(join(path, 'data.mdb')).isFile()).toBe(true);
    expect((await store(path)).lastIndex()).toBe(3);
  });

  it('refuses a directory of another cluster or another node, and leaves it as it was', async () => {
    const path = dir();
    await populated(path);
    const before = readFileSync(join(path, 'data.mdb'));
    const cluster = await refusal(openStore(path, { clusterId: 'other' }));
    expect(cluster.code).toBe(StorageErrorCode.ForeignCluster);
    expect(cluster.path).toBe(path);
    expect(cluster.message).toContain("belongs to cluster 'c1'");
    const node = await refusal(openStore(path, { nodeId: 'n2' }));
    expect(node.code).toBe(StorageErrorCode.ForeignNode);
    expect(node.message).toContain(path);
    expect(readFileSync(join(path, 'data.mdb')).equals(before)).toBe(true);
    // The lock was released by the refused opens: the right identity still opens it.
    expect((await store(path)).lastIndex()).toBe(3);
  });

  it('refuses a directory written in a newer format', async () => {
    const path = dir();
    await populated(path);
    const env = open({ path, maxDbs: 4 });
    const kv = env.openDB<unknown, string>({ name: 'state', encoding: 'msgpack' });
    await kv.put('meta', { ...(kv.get('meta') as object), format: FORMAT_VERSION + 1 });
    await env.close();
    const r = await refusal(openStore(path));
    expect(r.code).toBe(StorageErrorCode.FormatTooNew);
    expect(r.message).toContain(`format ${FORMAT_VERSION + 1}`);
    expect(r.path).toBe(path);
  });

  it('refuses a meta record that cannot be read, and a log with a damaged entry', async () => {
    const path = dir();
    await populated(path);
    const env = open({ path, maxDbs: 4 });
    const kv = env.openDB<unknown, string>({ name: 'state', encoding: 'msgpack' });
    await kv.put('meta', 'not a meta record');
    await env.close();
    expect((await refusal(openStore(path))).code).toBe(StorageErrorCode.Corrupt);

    const path2 = dir();
    await populated(path2);
    const env2 = open({ path: path2, maxDbs: 4 });
    const log = env2.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
    const v = Buffer.from(log.getBinary(3)!);
    v.writeUInt8(v.readUInt8(v.length - 1) ^ 0xff, v.length - 1); // flipped payload bits
    await log.put(3, v);
    await env2.close();
    const r = await refusal(openStore(path2));
    expect(r.code).toBe(StorageErrorCode.Corrupt);
    expect(r.message).toContain('entry 3 fails its checksum');
  });

  it('refuses a file that is not LMDB, and a truncated one, without crashing the process', async () => {
    const path = dir();
    writeFileSync(join(path, 'data.mdb'), Buffer.alloc(64 * 1024, 0x5a));
    const garbage = await refusal(openStore(path));
    expect(garbage.code).toBe(StorageErrorCode.Corrupt);
    expect(garbage.message).toContain('data.mdb');

    const path2 = dir();
    const s = await openStore(path2);
    const big = new Uint8Array(64 * 1024);
    await s.persist({
      snapshot: null,
      entries: Array.from({ length: 40 }, (_, i) => ({ ...ent(i + 1, 1), data: big })),
      hardState: hs(1, null),
    });
    await s.close();
    const file = join(path2, 'data.mdb');
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const truncated = await refusal(openStore(path2));
    expect(truncated.code).toBe(StorageErrorCode.Corrupt);
    expect(truncated.message).toContain('truncated');
    // Never reset: the damaged file is still there, the same size.
    expect(statSync(file).size).toBeGreaterThan(0);
  });

  it('refuses a directory that cannot be created or written', async () => {
    const path = dir();
    writeFileSync(join(path, 'file'), 'x');
    const r = await refusal(openStore(join(path, 'file', 'data')));
    expect(r.code).toBe(StorageErrorCode.ReadOnly);
    expect(r.message).toContain(join(path, 'file', 'data'));
  });

  it.skipIf(process.getuid?.() === 0)('refuses a read-only directory (not as root)', async () => {
    const path = dir();
    await populated(path);
    chmodSync(path, 0o500);
    cleanups.push(() => chmodSync(path, 0o700));
    expect((await refusal(openStore(path))).code).toBe(StorageErrorCode.ReadOnly);
  });

  it('a second store on the same directory in this process is refused until the first closes', async () => {
    const path = dir();
    const first = await openStore(path);
    const r = await refusal(openStore(path));
    expect(r.code).toBe(StorageErrorCode.Locked);
    await first.close();
    expect((await store(path)).lastIndex()).toBe(0);
  });

  it('takes over a lock file left by a dead process', async () => {
    const path = dir();
    await populated(path);
    // pid 2^22 + 1 is above Linux's pid_max limit: no such process can exist.
    writeFileSync(join(path, 'quorate.lock'), JSON.stringify({ pid: 4194305, start: null, token: 'dead' }));
    expect((await store(path)).lastIndex()).toBe(3);
  });

  it('a closed store refuses reads and writes with a Closed error', async () => {
    const s = await openStore(dir());
    await s.close();
    expect(() => s.entries(1, 1)).not.toThrow(); // an empty range touches nothing
    await expect(s.persist({ snapshot: null, entries: [ent(1, 1)], hardState: null })).rejects.toMatchObject({
      code: StorageErrorCode.Closed,
    });
  });
});
