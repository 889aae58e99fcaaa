/**
 * Damaged entries in the middle of a log kept in LMDB (`log: 'lmdb'`; the write-ahead
 * log's own damage is in wal.test.ts): open checks only the first and the last
 * entry (it does not scan the log), so every read that returns an entry or a term must
 * verify the CRC-32 of the entry it reads, and report a damaged one instead of answering.
 */
import { EntryType } from '@quorate/raft';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { isStorageError, type LmdbStorage, StorageErrorCode } from '../src/index.js';
import { openStore, tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ent = (index: number, term: number) => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(`value ${index}`),
});
const conf = { voters: ['n1'], learners: [], votersOutgoing: [] };

/** A closed store holding entries 1..6 of term 1, with `damage` applied to some of them on disk. */
async function damagedStore(damage: Record<number, (v: Buffer) => void>): Promise<string> {
  const d = tempDir();
  cleanups.push(d.remove);
  const s = await openStore(d.path, { log: 'lmdb' });
  await s.persist({
    snapshot: null,
    entries: [1, 2, 3, 4, 5, 6].map((i) => ent(i, 1)),
    hardState: { term: 1, vote: 'n1', commit: 6 },
  });
  await s.close();
  const env = open({ path: d.path, maxDbs: 4 });
  const log = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
  for (const [index, f] of Object.entries(damage)) {
    const v = Buffer.from(log.getBinary(Number(index))!);
    f(v);
    await log.put(Number(index), v);
  }
  await env.close();
  return d.path;
}

async function reopen(path: string): Promise<LmdbStorage> {
  const s = await openStore(path);
  cleanups.push(() => s.close());
  return s;
}

/** The term field of an entry rewritten in place, its CRC-32 left as it was. */
const termBecomes = (term: number) => (v: Buffer) => v.writeDoubleLE(term, 2);
/** The last payload byte flipped: the header (and its term) still reads fine. */
const payloadFlipped = (v: Buffer) => {
  v[v.length - 1]! ^= 0xff;
};

function corruption(f: () => unknown): { path: string | undefined; message: string } {
  try {
    f();
  } catch (err) {
    if (!isStorageError(err, StorageErrorCode.Corrupt)) throw err;
    return { path: err.path, message: err.message };
  }
  throw new Error('expected a STORAGE_CORRUPT error');
}

describe('a damaged entry in the middle of the log', () => {
  it('term(i) raises STORAGE_CORRUPT naming the directory and the index, never a wrong term', async () => {
    const path = await damagedStore({ 4: termBecomes(7), 3: payloadFlipped });
    const s = await reopen(path); // open checks entries 1 and 6 only: both are whole
    expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 6]);
    const t4 = corruption(() => s.term(4));
    expect(t4.path).toBe(path);
    expect(t4.message).toContain(path);
    expect(t4.message).toContain('entry 4 fails its checksum');
    // A damaged payload under an intact header is caught as well.
    expect(corruption(() => s.term(3)).message).toContain('entry 3 fails its checksum');
    // The whole entries around them still answer.
    expect([1, 2, 5, 6].map((i) => s.term(i))).toEqual([1, 1, 1, 1]);
  });

  it('entries() over it raises STORAGE_CORRUPT; ranges beside it read fine', async () => {
    const path = await damagedStore({ 4: termBecomes(7) });
    const s = await reopen(path);
    const r = corruption(() => s.entries(2, 6));
    expect(r.path).toBe(path);
    expect(r.message).toContain('entry 4 fails its checksum');
    expect(s.entries(1, 4).map((e) => e.term)).toEqual([1, 1, 1]);
    expect(s.entries(5, 7).map((e) => e.index)).toEqual([5, 6]);
  });

  it('compact() to it is refused with STORAGE_CORRUPT instead of recording a wrong term; the store goes on', async () => {
    const path = await damagedStore({ 4: termBecomes(7) });
    const s = await reopen(path);
    await expect(s.compact(4, { index: 4, term: 1, conf })).rejects.toMatchObject({
      code: StorageErrorCode.Corrupt,
      path,
      message: expect.stringContaining('entry 4 fails its checksum'),
    });
    expect(s.firstIndex()).toBe(1); // nothing was compacted
    await s.compact(5, { index: 5, term: 1, conf });
    expect([s.firstIndex(), s.term(5)]).toEqual([6, 1]);
    await s.persist({ snapshot: null, entries: [ent(7, 1)], hardState: null });
    expect(s.lastIndex()).toBe(7);
  });
});
