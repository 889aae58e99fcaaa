/**
 * The write-ahead log (the default log layout) on real files: replay after reopening,
 * segments rotated and deleted once compacted, entries read back from their segment once
 * out of the in-memory cache, a write cut short by a crash cut off, and damage refused.
 * (Crashes of a real process are in crash.test.ts; the `LogStorage` contract in
 * conformance.test.ts; both run on this layout.)
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Entry, EntryType } from '@quorate/raft';
import { afterEach, describe, expect, it } from 'vitest';
import { isStorageError, type LmdbStorage, type LmdbStorageOptions, StorageErrorCode } from '../src/index.js';
import { openStore, tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dir(): string {
  const d = tempDir('quorate-wal-');
  cleanups.push(d.remove);
  return d.path;
}

async function open(path: string, extra: Partial<LmdbStorageOptions> = {}): Promise<LmdbStorage> {
  const s = await openStore(path, extra);
  cleanups.push(() => s.close());
  return s;
}

const ent = (index: number, term: number, bytes = 32): Entry => {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, type: EntryType.Normal, data };
};
const conf = { voters: ['n1'], learners: [], votersOutgoing: [] };
const segments = (path: string) =>
  readdirSync(join(path, 'wal'))
    .filter((n) => n.endsWith('.wal'))
    .sort();

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (!isStorageError(err)) throw err;
    return { code: err.code, message: err.message };
  }
  throw new Error('expected the open to be refused');
}

/** Entries 1..n of term 1, persisted in batches of `per`, with the commit index at n. */
async function fill(s: LmdbStorage, n: number, per = 10, bytes = 32): Promise<void> {
  for (let i = 1; i <= n; i += per) {
    const hi = Math.min(n, i + per - 1);
    const entries = Array.from({ length: hi - i + 1 }, (_, k) => ent(i + k, 1, bytes));
    await s.persist({ snapshot: null, entries, hardState: { term: 1, vote: 'n1', commit: hi } });
  }
}

describe('the write-ahead log', () => {
  it('is the layout of a new store; a store made with log: lmdb keeps its layout', async () => {
    const a = dir();
    const s = await open(a);
    expect(s.logLayout).toBe('wal');
    expect(segments(a)).toEqual(['0000000000000001.wal']);
    const b = dir();
    const l = await openStore(b, { log: 'lmdb' });
    await fill(l, 5);
    await l.close();
    const again = await open(b); // the default asks for a WAL: the existing layout wins
    expect(again.logLayout).toBe('lmdb');
    expect(again.entries(1, 6).map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
  });

  it('replays entries, truncations, the hard state, a snapshot and compaction after reopening', async () => {
    const path = dir();
    const s = await openStore(path);
    await fill(s, 20);
    // A conflicting suffix from a new leader: 16..20 of term 1 become 16..18 of term 2.
    await s.persist({
      snapshot: null,
      entries: [ent(16, 2), ent(17, 2), ent(18, 2)],
      hardState: { term: 2, vote: 'n2', commit: 15 },
    });
    await s.compact(5, { index: 10, term: 1, conf });
    // A commit-only hard state is held back and written at close.
    await s.persist({
      snapshot: null,
      entries: [],
      hardState: { term: 2, vote: 'n2', commit: 17 },
      mustSync: false,
    });
    const before = { first: s.firstIndex(), last: s.lastIndex(), hard: s.hardState(), snap: s.snapshot() };
    const terms = [5, 6, 15, 16, 18].map((i) => s.term(i));
    const data = s.entries(6, 19).map((e) => [e.index, e.term, Buffer.from(e.data).toString('hex')]);
    await s.close();

    const r = await open(path);
    expect({ first: r.firstIndex(), last: r.lastIndex(), hard: r.hardState(), snap: r.snapshot() }).toEqual(
      before,
    );
    expect(before).toMatchObject({ first: 6, last: 18, hard: { term: 2, vote: 'n2', commit: 17 } });
    expect([5, 6, 15, 16, 18].map((i) => r.term(i))).toEqual(terms);
    expect(terms).toEqual([1, 1, 1, 2, 2]);
    expect(r.entries(6, 19).map((e) => [e.index, e.term, Buffer.from(e.data).toString('hex')])).toEqual(data);

    // A snapshot from a leader replaces the log.
    await r.persist({
      snapshot: { index: 40, term: 3, conf },
      entries: [ent(41, 3)],
      hardState: { term: 3, vote: null, commit: 40 },
    });
    await r.close();
    const t = await open(path);
    expect([t.firstIndex(), t.lastIndex(), t.term(40), t.term(41)]).toEqual([41, 41, 3, 3]);
    expect(t.snapshot()).toEqual({ index: 40, term: 3, conf });
    expect(t.hardState()).toEqual({ term: 3, vote: null, commit: 40 });
  });

  it('rotates segments, deletes those whose entries are all compacted, and replays the rest', async () => {
    const path = dir();
    const s = await openStore(path, { walSegmentBytes: 4096, walCacheBytes: 1024 });
    await fill(s, 300, 10, 100);
    const made = segments(path);
    expect(made.length).toBeGreaterThan(5);
    for (const f of made.slice(0, -1))
      expect(statSync(join(path, 'wal', f)).size).toBeLessThanOrEqual(4096 + 1400);
    // Old entries are out of the cache: they are read back from their segments.
    expect(s.entries(1, 301).map((e) => e.index)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(Buffer.from(s.entries(7, 8)[0]!.data)).toEqual(Buffer.from(ent(7, 1, 100).data));
    // A byte budget still stops a read from disk early (at least one entry).
    expect(s.entries(1, 301, 500).length).toBe(4); // 124 bytes each by entrySize
    expect(s.entries(1, 301, 1).length).toBe(1);

    await s.compact(250, { index: 250, term: 1, conf });
    const left = segments(path);
    expect(left.length).toBeLessThan(made.length);
    expect(left[0]).not.toBe(made[0]);
    expect(s.entries(251, 301).map((e) => e.index)).toEqual(Array.from({ length: 50 }, (_, i) => i + 251));
    await fill2(s, 301, 310);
    await s.close();

    const r = await open(path, { walSegmentBytes: 4096 });
    expect([r.firstIndex(), r.lastIndex(), r.term(250)]).toEqual([251, 310, 1]);
    expect(r.entries(251, 311).map((e) => e.index)).toEqual(Array.from({ length: 60 }, (_, i) => i + 251));
    expect(r.hardState()).toEqual({ term: 1, vote: 'n1', commit: 310 });
  });

  it('cuts off a write a crash left unfinished at the end of the last segment, and appends after it', async () => {
    const path = dir();
    const s = await openStore(path);
    await fill(s, 10);
    await s.close();
    const [last] = segments(path).slice(-1);
    const file = join(path, 'wal', last!);
    const bytes = readFileSync(file);
    const end = endOfRecords(bytes);
    // Zeros follow the records (space written ahead of the log).
    expect(bytes.length).toBeGreaterThan(end);
    // A record cut short: a header that promises 1,200 bytes, of which only the first
    // sector's worth landed (the sectors after it are still zeros), and further on a
    // stray byte of the same interrupted write.
    const torn = Buffer.alloc(100, 0xab);
    torn.writeUInt32LE(1200, 0);
    torn.copy(bytes, end);
    bytes[end + 4000] = 0x5a;
    writeFileSync(file, bytes);

    const r = await openStore(path);
    expect([r.firstIndex(), r.lastIndex()]).toEqual([1, 10]);
    // Wiped before anything is appended in its place.
    const after = readFileSync(file);
    expect(after.subarray(end).every((b) => b === 0)).toBe(true);
    expect(after.subarray(0, end).equals(bytes.subarray(0, end))).toBe(true);
    await fill2(r, 11, 12);
    await r.close();
    const t = await open(path);
    expect(t.entries(1, 13).map((e) => e.index)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('takes a write whole or not at all: entries and hard state without their commit record are dropped together', async () => {
    const path = dir();
    const s = await openStore(path);
    await fill(s, 20, 10); // two writes: entries 1..10 (commit 10), then 11..20 (commit 20)
    await s.close();
    const file = join(path, 'wal', segments(path)[0]!);
    const bytes = readFileSync(file);
    const end = endOfRecords(bytes);
    // The second write's commit record (its last 9 bytes) never landed.
    bytes.fill(0, end - 9, end);
    writeFileSync(file, bytes);
    const r = await open(path);
    expect([r.lastIndex(), r.hardState()]).toEqual([10, { term: 1, vote: 'n1', commit: 10 }]);
    // Its records were wiped: appending again and reopening never brings them back.
    await fill2(r, 11, 12);
    await r.close();
    const t = await open(path);
    expect(t.lastIndex()).toBe(12);
    expect(t.entries(11, 13).map((e) => Buffer.from(e.data))).toEqual(
      [11, 12].map((i) => Buffer.from(ent(i, 1, 100).data)),
    );
  });

  it('removes a new segment whose first write a crash cut short', async () => {
    const path = dir();
    const s = await openStore(path, { walSegmentBytes: 2048 });
    await fill(s, 60, 10, 100);
    await s.close();
    const names = segments(path);
    const next = (Number.parseInt(names[names.length - 1]!.slice(0, 16), 16) + 1)
      .toString(16)
      .padStart(16, '0');
    writeFileSync(join(path, 'wal', `${next}.wal`), Buffer.alloc(0));
    const r = await open(path, { walSegmentBytes: 2048 });
    expect(r.lastIndex()).toBe(60);
    expect(segments(path)).toEqual(names);
  });

  it('refuses damage: a bad record before a whole one, a damaged older segment, a missing segment or log', async () => {
    // A flipped byte inside the last segment, with whole records after it.
    const a = dir();
    const s = await openStore(a);
    await fill(s, 10);
    await s.close();
    const fa = join(a, 'wal', segments(a)[0]!);
    const bytes = readFileSync(fa);
    bytes[endOfRecords(bytes) - 300]! ^= 0xff;
    writeFileSync(fa, bytes);
    const ra = await refusal(openStore(a));
    expect(ra.code).toBe(StorageErrorCode.Corrupt);
    expect(ra.message).toContain('is damaged at byte');

    // A flipped byte in an older segment.
    const b = dir();
    const t = await openStore(b, { walSegmentBytes: 2048 });
    await fill(t, 60, 10, 100);
    await t.close();
    const fb = join(b, 'wal', segments(b)[1]!);
    const bb = readFileSync(fb);
    bb[endOfRecords(bb) - 10]! ^= 0xff;
    writeFileSync(fb, bb);
    expect((await refusal(openStore(b))).code).toBe(StorageErrorCode.Corrupt);

    // A segment missing from the middle.
    const c = dir();
    const u = await openStore(c, { walSegmentBytes: 2048 });
    await fill(u, 60, 10, 100);
    await u.close();
    rmSync(join(c, 'wal', segments(c)[1]!));
    expect((await refusal(openStore(c))).message).toContain('is missing');

    // The whole log gone: refused, never started empty (votes and entries would be lost).
    const d = dir();
    const v = await openStore(d);
    await fill(v, 3);
    await v.close();
    rmSync(join(d, 'wal'), { recursive: true });
    const rd = await refusal(openStore(d));
    expect(rd.code).toBe(StorageErrorCode.Corrupt);
    expect(rd.message).toContain('write-ahead log');
  });

  it('a failed write stops the store: later writes are refused with WRITE_FAILED', async () => {
    const path = dir();
    const s = await open(path, { walSegmentBytes: 1024 });
    await fill(s, 5);
    // The directory of the log goes away: the next segment cannot be created.
    rmSync(join(path, 'wal'), { recursive: true });
    await expect(fill2(s, 6, 60)).rejects.toMatchObject({ code: StorageErrorCode.WriteFailed });
    await expect(fill2(s, 6, 7)).rejects.toMatchObject({ code: StorageErrorCode.WriteFailed });
  });
});

/** Where the records of a segment end (its zeros start): each is a u32 length, a CRC, the body. */
function endOfRecords(data: Buffer): number {
  let at = 0;
  while (data.length - at >= 8 && data.readUInt32LE(at) !== 0) at += 8 + data.readUInt32LE(at);
  return at;
}

async function fill2(s: LmdbStorage, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) {
    await s.persist({
      snapshot: null,
      entries: [ent(i, 1, 100)],
      hardState: { term: 1, vote: 'n1', commit: i },
    });
  }
}
