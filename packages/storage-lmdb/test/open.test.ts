import { chmodSync, cpSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EntryType, type HardState } from '@quorate/raft';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FORMAT_VERSION,
  isStorageError,
  LmdbGroupStore,
  LmdbStorage,
  StorageErrorCode,
} from '../src/index.js';
import { walkDataFile } from '../src/preflight.js';
import { Child, killAll } from './child.js';
import { openStore, tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const isRoot = process.getuid?.() === 0;

/**
 * Root writes anywhere because it holds CAP_DAC_OVERRIDE. A child run under this
 * command keeps root's uid (so it still reads a checkout that only root may enter, such
 * as a mode-700 temporary directory or /root) but loses the capabilities that bypass
 * file permissions, so a directory of mode 0500 is as read-only to it as to any user.
 */
const WITHOUT_OVERRIDE = [
  'setpriv',
  '--inh-caps=-dac_override,-dac_read_search,-fowner',
  '--bounding-set=-dac_override,-dac_read_search,-fowner',
  '--',
];

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
async function populated(path: string, log: 'wal' | 'lmdb' = 'wal'): Promise<void> {
  const s = await openStore(path, { log });
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
    await populated(path2, 'lmdb');
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

  it("refuses another application's LMDB environment without modifying it", async () => {
    // One with a named database, one with keys in its main database.
    const named = dir();
    const env = open({ path: named, maxDbs: 4 });
    await env.openDB<unknown, string>({ name: 'users', encoding: 'msgpack' }).put('alice', { admin: true });
    await env.close();
    const plain = dir();
    const env2 = open({ path: plain });
    await env2.put('config', { port: 8080 });
    await env2.close();

    for (const [path, what] of [
      [named, 'users'],
      [plain, 'config'],
    ] as const) {
      const file = join(path, 'data.mdb');
      const bytes = readFileSync(file);
      const { mtimeMs } = statSync(file);
      const listing = readdirSync(path).sort();
      await new Promise((r) => setTimeout(r, 20)); // a write now would show in the mtime
      const r = await refusal(openStore(path));
      expect(readFileSync(file).equals(bytes), `${what}: data.mdb was modified`).toBe(true);
      expect(statSync(file).mtimeMs).toBe(mtimeMs);
      expect(readdirSync(path).sort()).toEqual(listing); // no lock file left behind
      expect(r.code).toBe(StorageErrorCode.Corrupt);
      expect(r.path).toBe(path);
      expect(r.message).toContain(`${path} holds an LMDB environment that is not a quorate store`);
      expect(r.message).toContain(what);
    }
    // Its databases are still its own: none of quorate's was created.
    const check = open({ path: named, maxDbs: 4, readOnly: true });
    expect([...check.getKeys()]).toEqual(['users']);
    await check.close();
  });

  it('creates its databases only in an empty environment, never beside data without a meta record', async () => {
    // A first open cut short after creating an empty `log`: a new store.
    const cut = dir();
    const env = open({ path: cut, maxDbs: 4 });
    env.openDB({ name: 'log', encoding: 'binary' });
    await env.close();
    const s = await store(cut);
    expect([s.meta.clusterId, s.lastIndex()]).toEqual(['c1', 0]);

    // A `log` with data but no `state`: refused, and `state` is not created.
    const orphan = dir();
    const env2 = open({ path: orphan, maxDbs: 4 });
    await env2.openDB<Buffer, number>({ name: 'log', encoding: 'binary' }).put(1, Buffer.from('x'));
    await env2.close();
    const bytes = readFileSync(join(orphan, 'data.mdb'));
    const r = await refusal(openStore(orphan));
    expect(readFileSync(join(orphan, 'data.mdb')).equals(bytes), 'data.mdb was modified').toBe(true);
    expect(r.code).toBe(StorageErrorCode.Corrupt);
    expect(r.message).toContain('has data but no meta record');
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

  it('opens a file shorter than its last page number when the pages past its end are free ones', async () => {
    // LMDB counts pages dirtied and freed in one transaction (deleting a run of keys does
    // it) in the last page number but never writes them: such a file is healthy. The
    // first-wave store refused it as truncated after the sweep that follows a compaction.
    const path = dir();
    const s = await openStore(path, { log: 'lmdb' });
    await s.persist({
      snapshot: null,
      entries: Array.from({ length: 1000 }, (_, i) => ({ ...ent(i + 1, 1), data: new Uint8Array(60) })),
      hardState: hs(1, 'n1', 1000),
    });
    await s.close();
    // A compaction and its sweep in one transaction each, as the store made them.
    const env = open({ path, maxDbs: 8 });
    const log = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
    const state = env.openDB<unknown, string>({ name: 'state', encoding: 'msgpack' });
    await log.childTransaction(() => state.put('base', { index: 990, term: 1 }));
    await log.childTransaction(() => {
      for (const k of [...log.getKeys({ end: 991 })]) log.remove(k);
    });
    await env.close();
    const file = join(path, 'data.mdb');
    const bytes = readFileSync(file);
    const psize = bytes.readUInt32LE(48);
    const newest = [0, psize]
      .map((at) => ({ last: Number(bytes.readBigUInt64LE(at + 144)), txn: bytes.readBigUInt64LE(at + 152) }))
      .reduce((a, b) => (b.txn > a.txn ? b : a));
    // The case under test: the file really is shorter than its last page number says.
    expect(bytes.length, 'LMDB wrote every page this time: the case is not reproduced').toBeLessThan(
      (newest.last + 1) * psize,
    );
    expect(walkDataFile(path)).toBeNull();
    // A copy cut after its two meta pages, where the pages the trees use are gone:
    // refused by the same walk, and the message names a missing page. (Cut in half, it
    // would open: every page the trees use now lies in the first half.)
    const copy = dir();
    cpSync(path, copy, { recursive: true });
    truncateSync(join(copy, 'data.mdb'), 2 * psize);
    const cut = await refusal(openStore(copy));
    expect(cut.code).toBe(StorageErrorCode.Corrupt);
    expect(cut.message).toMatch(
      /is truncated \(\d+ bytes of the \d+ .*; page \d+ is past the end of the file: a page of database /,
    );

    const again = await store(path);
    expect(again.firstIndex()).toBe(991);
    expect(again.entries(991, 1001).map((e) => e.index)).toEqual(
      Array.from({ length: 10 }, (_, i) => 991 + i),
    );
  });

  it('reads the page layout of every kind of store it makes (the walk behind the truncation check)', async () => {
    // Each database's pages, walked from its root, must add up to the counts in its
    // record: the walk only excuses a short file, so it must read LMDB's layout exactly.
    const lmdbLog = dir();
    const a = await openStore(lmdbLog, { log: 'lmdb' });
    const big = new Uint8Array(20_000).fill(1); // overflow pages
    for (let i = 0; i < 20; i++) {
      await a.persist({
        snapshot: null,
        entries: Array.from({ length: 500 }, (_, j) => ({
          ...ent(i * 500 + j + 1, 1),
          data: j % 50 ? new Uint8Array(40) : big,
        })),
        hardState: i === 0 ? hs(1, 'n1') : null,
      });
    }
    await a.compact(6000, {
      index: 6000,
      term: 1,
      conf: { voters: ['n1'], learners: [], votersOutgoing: [] },
    });
    await a.close();
    expect(walkDataFile(lmdbLog)).toBeNull();

    const wal = dir();
    const b = await openStore(wal, { snapshotChunkBytes: 64 * 1024 });
    await b.persist({ snapshot: null, entries: [1, 2, 3].map((i) => ent(i, 1)), hardState: hs(1, 'n1', 3) });
    for (let n = 1; n <= 3; n++) {
      const w = await b.snapshots.create({
        index: n,
        term: 1,
        conf: { voters: ['n1'], learners: [], votersOutgoing: [] },
      });
      await w.write(new Uint8Array(1_000_000).fill(n));
      await w.commit();
    }
    await b.close();
    expect(walkDataFile(wal)).toBeNull();

    const grouped = dir();
    const g = await LmdbGroupStore.open({ dir: grouped, clusterId: 'c1', nodeId: 'n1' });
    for (let k = 0; k < 50; k++) {
      await g.group(k).persist({
        snapshot: null,
        entries: Array.from({ length: 200 }, (_, i) => ent(i + 1, 1)),
        hardState: hs(1, 'n1'),
      });
    }
    await g.close();
    expect(walkDataFile(grouped)).toBeNull();
  });

  it('refuses a directory that cannot be created or written', async () => {
    const path = dir();
    writeFileSync(join(path, 'file'), 'x');
    const r = await refusal(openStore(join(path, 'file', 'data')));
    expect(r.code).toBe(StorageErrorCode.ReadOnly);
    expect(r.message).toContain(join(path, 'file', 'data'));
  });

  it('refuses a read-only directory (as root: from a child without the override capabilities)', async () => {
    const path = dir();
    if (!isRoot) {
      await populated(path);
      chmodSync(path, 0o500);
      cleanups.push(() => chmodSync(path, 0o700));
      expect((await refusal(openStore(path))).code).toBe(StorageErrorCode.ReadOnly);
      return;
    }
    // The identity the child opens with (see fixtures/crash-child.ts).
    const s = await LmdbStorage.open({ dir: path, clusterId: 'crash', nodeId: 'n1' });
    await s.close();
    chmodSync(path, 0o500);
    cleanups.push(() => chmodSync(path, 0o700));
    // Root may write anywhere, so the open is tried by a child that keeps root's uid (it
    // reads the checkout, wherever it lives) without the capabilities that bypass file
    // permissions: for it, the mode-0500 directory is read-only.
    const before = readdirSync(path).sort();
    const data = readFileSync(join(path, 'data.mdb'));
    const child = new Child('try', path, WITHOUT_OVERRIDE);
    await child.exited;
    const line = child.lines.find((l) => l.startsWith('refused ') || l === 'opened');
    expect(line, `the child printed no outcome; its stderr:\n${child.errors}`).toBeDefined();
    expect(line).toContain(`refused ${StorageErrorCode.ReadOnly} `);
    expect(line).toContain(`${path} is not writable`);
    // Refused before anything was written: no lock file left, the data untouched.
    expect(readdirSync(path).sort()).toEqual(before);
    expect(readFileSync(join(path, 'data.mdb')).equals(data)).toBe(true);
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
