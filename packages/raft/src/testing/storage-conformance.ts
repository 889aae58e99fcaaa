/**
 * One conformance suite for every `LogStorage` + `SnapshotStore` implementation: the
 * in-memory ones here, the LMDB ones in `@quorate/storage-lmdb`, any embedder's own.
 *
 * Framework-agnostic: each case is `{ name, run(factory) }` and throws on failure, so a
 * vitest file runs them with `for (const c of storageConformanceCases) it(c.name, () =>
 * c.run(factory))`, and any other runner can do the same.
 */
import type { LogStorage, PersistBatch, SnapshotStore } from '../contracts/storage.js';
import { bootstrapEntries } from '../core/confchange.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  entrySize,
  type HardState,
  type SnapshotMeta,
} from '../types.js';

/** A store under test: the log and hard state, and the snapshot store beside it. */
export interface StorageHandle {
  readonly storage: LogStorage;
  readonly snapshots: SnapshotStore;
}

export interface StorageFactory {
  /** A fresh, empty store. */
  create(): Promise<StorageHandle> | StorageHandle;
  /**
   * The same store as a restarted process finds it. Called after `handle.storage.close()`
   * has resolved.
   */
  reopen(handle: StorageHandle): Promise<StorageHandle> | StorageHandle;
  /** Release what `create` made (temp directories); the store is already closed. */
  dispose?(handle: StorageHandle): Promise<void> | void;
}

export interface StorageConformanceCase {
  readonly name: string;
  run(factory: StorageFactory): Promise<void>;
}

// ------------------------------------------------------------------ tiny assertions

export class ConformanceFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceFailure';
  }
}

function ok(cond: unknown, what: string): asserts cond {
  if (!cond) throw new ConformanceFailure(what);
}

const plain = (x: unknown): unknown =>
  x instanceof Uint8Array
    ? `bytes:${Array.from(x, (b) => b.toString(16).padStart(2, '0')).join('')}`
    : Array.isArray(x)
      ? x.map(plain)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.entries(x)
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([k, v]) => [k, plain(v)]),
          )
        : x;

function eq(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(plain(actual));
  const e = JSON.stringify(plain(expected));
  if (a !== e) throw new ConformanceFailure(`${what}: expected ${e}, got ${a}`);
}

function throws(fn: () => unknown, what: string, code?: string): void {
  try {
    fn();
  } catch (err) {
    if (code !== undefined && (err as { code?: unknown }).code !== code) {
      throw new ConformanceFailure(`${what}: expected code ${code}, got ${(err as Error).message}`);
    }
    return;
  }
  throw new ConformanceFailure(`${what}: expected an error, none was thrown`);
}

async function rejects(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch {
    return;
  }
  throw new ConformanceFailure(`${what}: expected a rejection`);
}

// ------------------------------------------------------------------ fixtures

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

const enc = new TextEncoder();
const ent = (index: number, term: number, data = `e${index}t${term}`): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: enc.encode(data),
});
const range = (lo: number, hi: number, term: number, size?: number): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) =>
    size === undefined
      ? ent(lo + i, term)
      : { ...ent(lo + i, term), data: new Uint8Array(size).fill(lo + i) },
  );
const batch = (entries: Entry[], hardState: HardState | null = null, mustSync = true): PersistBatch => ({
  snapshot: null,
  entries,
  hardState,
  mustSync,
});
const conf3: ConfState = { voters: ['a', 'b', 'c'], learners: ['d'], votersOutgoing: [] };
const meta = (index: number, term: number, conf: ConfState = conf3): SnapshotMeta => ({ index, term, conf });

/** Run `body` on a fresh store, closing and disposing whatever handle it ends with. */
async function withStore(
  factory: StorageFactory,
  body: (h: StorageHandle, reopen: () => Promise<StorageHandle>) => Promise<void>,
): Promise<void> {
  let h = await factory.create();
  const reopen = async () => {
    await h.storage.close();
    h = await factory.reopen(h);
    return h;
  };
  try {
    await body(h, reopen);
  } finally {
    await h.storage.close().catch(() => {});
    await factory.dispose?.(h);
  }
}

function readAll(s: LogStorage): Entry[] {
  return s.entries(s.firstIndex(), s.lastIndex() + 1);
}

async function readSnapshot(store: SnapshotStore, m: SnapshotMeta): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of store.read(m)) parts.push(c.slice());
  return concat(parts);
}

async function writeSnapshot(store: SnapshotStore, m: SnapshotMeta, data: Uint8Array, piece = 1000) {
  const w = await store.create(m);
  for (let i = 0; i < data.byteLength; i += piece) await w.write(data.subarray(i, i + piece));
  await w.commit();
}

const pattern = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
};

// ------------------------------------------------------------------ the cases

export const storageConformanceCases: readonly StorageConformanceCase[] = [
  {
    name: 'a fresh store is empty: log from 1, term(0) = 0, no snapshot, empty hard state',
    run: (f) =>
      withStore(f, async ({ storage: s, snapshots }) => {
        eq(s.firstIndex(), 1, 'firstIndex');
        eq(s.lastIndex(), 0, 'lastIndex');
        eq(s.term(0), 0, 'term(0)');
        eq(s.entries(1, 1), [], 'entries(1, 1)');
        eq(s.snapshot().index, 0, 'snapshot index');
        eq(s.snapshot().term, 0, 'snapshot term');
        eq(s.initialState().hardState, { term: 0, vote: null, commit: 0 }, 'hard state');
        eq(s.initialState().conf, { voters: [], learners: [], votersOutgoing: [] }, 'conf');
        throws(() => s.term(1), 'term(1) of an empty log', 'UNAVAILABLE');
        throws(() => s.entries(1, 2), 'entries(1, 2) of an empty log', 'UNAVAILABLE');
        eq(snapshots.latest(), null, 'latest snapshot');
      }),
  },
  {
    name: 'appended entries read back by index, term and range, with the hard state',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        const es = [...range(1, 3, 1), ...range(4, 6, 2)];
        await s.persist(batch(es, { term: 2, vote: 'b', commit: 3 }));
        eq(s.lastIndex(), 6, 'lastIndex');
        eq(readAll(s), es, 'all entries');
        eq(s.entries(2, 5), es.slice(1, 4), 'entries(2, 5)');
        eq(
          [0, 1, 2, 3, 4, 5, 6].map((i) => s.term(i)),
          [0, 1, 1, 1, 2, 2, 2],
          'terms',
        );
        eq(s.initialState().hardState, { term: 2, vote: 'b', commit: 3 }, 'hard state');
        throws(() => s.term(7), 'term past the end', 'UNAVAILABLE');
        throws(() => s.entries(5, 8), 'entries past the end', 'UNAVAILABLE');
        const conf = { ...ent(7, 2), type: EntryType.ConfChange, data: new Uint8Array([1, 2, 3]) };
        await s.persist(batch([conf]));
        eq(s.entries(7, 8), [conf], 'a conf-change entry keeps its type and bytes');
        const empty = { ...ent(8, 2), data: new Uint8Array(0) };
        await s.persist(batch([empty]));
        eq(s.entries(8, 9), [empty], 'an empty entry (a no-op)');
      }),
  },
  {
    name: 'entries() stops at maxBytes but always returns at least one entry',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        const es = range(1, 20, 1, 100);
        await s.persist(batch(es));
        const one = entrySize(es[0]!);
        eq(s.entries(1, 21, 0).length, 1, 'maxBytes 0 still gives one entry');
        eq(s.entries(1, 21, one).length, 1, 'exactly one entry of budget');
        eq(s.entries(1, 21, one * 3).length, 3, 'three entries of budget');
        eq(s.entries(1, 21, one * 3 + one - 1).length, 3, 'not a partial fourth');
        eq(s.entries(5, 21, one * 100).length, 16, 'a budget larger than the range');
        eq(s.entries(5, 8, one * 2), es.slice(4, 6), 'the right entries');
      }),
  },
  {
    name: 'a conflicting suffix is replaced; a gap or a compacted start is refused and changes nothing',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        await s.persist(batch(range(1, 6, 1)));
        await s.persist(batch(range(4, 5, 2)));
        eq(s.lastIndex(), 5, 'lastIndex after truncation');
        eq(
          [3, 4, 5].map((i) => s.term(i)),
          [1, 2, 2],
          'terms after truncation',
        );
        throws(() => s.term(6), 'the truncated entry is gone', 'UNAVAILABLE');
        await s.persist(batch(range(6, 8, 2)));
        eq(s.lastIndex(), 8, 'appending after truncation');
        await rejects(s.persist(batch(range(10, 11, 2))), 'a gap');
        eq(s.lastIndex(), 8, 'lastIndex after a refused gap');
        await s.compact(4, meta(5, 2));
        await rejects(s.persist(batch(range(3, 9, 3))), 'an append before the first index');
        eq(readAll(s), [...range(5, 5, 2), ...range(6, 8, 2)], 'entries after refusals');
        await s.persist(batch(range(5, 5, 3)));
        eq(s.lastIndex(), 5, 'truncation at the first index');
        eq(s.term(5), 3, 'the replaced first entry');
        eq(s.term(4), 2, 'the compaction point keeps its term');
      }),
  },
  {
    name: 'compact keeps a margin: entries between the compaction point and the snapshot stay',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        await s.persist(batch([...range(1, 5, 1), ...range(6, 10, 2)]));
        await s.compact(4, meta(8, 2));
        eq(s.firstIndex(), 5, 'firstIndex');
        eq(s.lastIndex(), 10, 'lastIndex');
        eq(s.term(4), 1, 'term at the compaction point');
        eq(s.snapshot(), meta(8, 2), 'snapshot()');
        eq(readAll(s), [...range(5, 5, 1), ...range(6, 10, 2)], 'the margin and the rest');
        throws(() => s.term(3), 'term before the compaction point', 'COMPACTED');
        throws(() => s.entries(4, 6), 'entries from a compacted index', 'COMPACTED');
        await rejects(s.compact(9, meta(8, 2)), 'compacting past the snapshot');
        await rejects(s.compact(11, meta(12, 2)), 'compacting past the log');
        await s.compact(2, meta(9, 2));
        eq(s.firstIndex(), 5, 'compacting below the first index only records the snapshot');
        eq(s.snapshot().index, 9, 'the newer snapshot is recorded');
        await s.compact(10, meta(10, 2));
        eq(s.firstIndex(), 11, 'compacting everything');
        eq(s.lastIndex(), 10, 'an empty log after full compaction');
        eq(s.term(10), 2, 'term at the compaction point');
        eq(s.entries(11, 11), [], 'an empty range at the end');
        await s.persist(batch(range(11, 12, 3)));
        eq(readAll(s), range(11, 12, 3), 'appending after full compaction');
      }),
  },
  {
    name: 'a persisted snapshot replaces the log, which restarts after it',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        await s.persist(batch(range(1, 5, 1), { term: 1, vote: 'a', commit: 2 }));
        const m = meta(20, 3);
        await s.persist({ snapshot: m, entries: [], hardState: { term: 3, vote: null, commit: 20 } });
        eq(s.firstIndex(), 21, 'firstIndex');
        eq(s.lastIndex(), 20, 'lastIndex');
        eq(s.term(20), 3, 'term at the snapshot');
        eq(s.snapshot(), m, 'snapshot()');
        eq(s.initialState().conf, conf3, 'conf from the snapshot');
        throws(() => s.term(5), 'an old entry', 'COMPACTED');
        await s.persist({ snapshot: meta(30, 4), entries: range(31, 32, 4), hardState: null });
        eq(readAll(s), range(31, 32, 4), 'snapshot and entries in one batch');
        eq(s.term(30), 4, 'the later snapshot');
      }),
  },
  {
    name: 'overlapping persists resolve in call order and all land',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        const order: number[] = [];
        const calls: Promise<void>[] = [];
        for (let i = 1; i <= 60; i++) {
          const hs = i % 7 === 0 ? { term: 1 + Math.floor(i / 20), vote: 'a', commit: i - 3 } : null;
          calls.push(s.persist(batch([ent(i, 1 + Math.floor(i / 20))], hs)).then(() => void order.push(i)));
          if (i % 10 === 0) {
            // A commit-only batch in between, as the core sends when only the commit moved.
            const hs2 = { term: 1 + Math.floor(i / 20), vote: 'a', commit: i - 1 };
            calls.push(s.persist(batch([], hs2, false)).then(() => void order.push(i + 0.5)));
          }
        }
        await Promise.all(calls);
        eq(
          order,
          [...order].sort((a, b) => a - b),
          'resolution order',
        );
        eq(order.length, 66, 'every call resolved');
        eq(s.lastIndex(), 60, 'lastIndex');
        eq(
          readAll(s).map((e) => e.index),
          range(1, 60, 1).map((e) => e.index),
          'every entry',
        );
        eq(s.initialState().hardState, { term: 4, vote: 'a', commit: 59 }, 'the last hard state wins');
      }),
  },
  {
    name: 'reads answer in the middle of overlapping writes, within the resolved bounds',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        await s.persist(batch(range(1, 10, 1)));
        const pending = [s.compact(5, meta(5, 1)), s.persist(batch(range(11, 12, 1)))];
        // Whatever bounds the store reports now, every index inside them answers.
        for (let i = s.firstIndex() - 1; i <= s.lastIndex(); i++) s.term(i);
        await Promise.all(pending);
        eq(s.firstIndex(), 6, 'firstIndex');
        eq(s.lastIndex(), 12, 'lastIndex');
        eq(readAll(s).length, 7, 'entries');
      }),
  },
  {
    name: 'a founding member stores its bootstrap entries through a normal persist',
    run: (f) =>
      withStore(f, async ({ storage: s }, reopen) => {
        const b = bootstrapEntries({ voters: ['n1', 'n2', 'n3'], learners: ['n4'], votersOutgoing: [] });
        await s.persist({ snapshot: null, entries: b.entries, hardState: b.hardState, mustSync: true });
        eq(readAll(s), b.entries, 'bootstrap entries');
        eq(s.initialState().hardState, b.hardState, 'bootstrap hard state');
        const s2 = (await reopen()).storage;
        eq(readAll(s2), b.entries, 'bootstrap entries after a restart');
        eq(s2.initialState().hardState, b.hardState, 'bootstrap hard state after a restart');
        ok(
          s2.entries(1, 2)[0]!.type === EntryType.ConfChange,
          'the bootstrap entries are membership changes',
        );
      }),
  },
  {
    name: 'the hard state: replaced whole, kept when null, never lost across a clean restart',
    run: (f) =>
      withStore(f, async ({ storage: s }, reopen) => {
        await s.persist(batch([], { term: 5, vote: 'c', commit: 0 }));
        eq(s.initialState().hardState, { term: 5, vote: 'c', commit: 0 }, 'a vote');
        await s.persist(batch(range(1, 2, 5)));
        eq(s.initialState().hardState, { term: 5, vote: 'c', commit: 0 }, 'null keeps the hard state');
        await s.persist(batch([], { term: 5, vote: 'c', commit: 2 }, false));
        eq(s.initialState().hardState.commit, 2, 'a commit-only batch is visible once resolved');
        const s2 = (await reopen()).storage;
        eq(s2.initialState().hardState, { term: 5, vote: 'c', commit: 2 }, 'after a clean restart');
        await s2.persist(batch([], { term: 6, vote: null, commit: 2 }));
        eq(s2.initialState().hardState, { term: 6, vote: null, commit: 2 }, 'a new term clears the vote');
      }),
  },
  {
    name: 'everything survives a restart: entries, compaction point, snapshot meta, hard state',
    run: (f) =>
      withStore(f, async ({ storage: s }, reopen) => {
        await s.persist(batch([...range(1, 8, 1), ...range(9, 12, 2)], { term: 2, vote: 'a', commit: 10 }));
        await s.compact(6, meta(9, 2));
        await s.persist(batch(range(11, 13, 3), { term: 3, vote: 'b', commit: 10 }));
        const before = {
          first: s.firstIndex(),
          last: s.lastIndex(),
          entries: readAll(s),
          terms: [6, 7, 13].map((i) => s.term(i)),
          snap: s.snapshot(),
          init: s.initialState(),
        };
        const s2 = (await reopen()).storage;
        eq(
          {
            first: s2.firstIndex(),
            last: s2.lastIndex(),
            entries: readAll(s2),
            terms: [6, 7, 13].map((i) => s2.term(i)),
            snap: s2.snapshot(),
            init: s2.initialState(),
          },
          before,
          'the store after a restart',
        );
        throws(() => s2.term(5), 'compacted stays compacted', 'COMPACTED');
      }),
  },
  {
    name: 'returned arrays belong to the caller',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        await s.persist(batch(range(1, 3, 1)));
        const got = s.entries(1, 4);
        got.pop();
        got.push(ent(9, 9));
        eq(s.entries(1, 4), range(1, 3, 1), 'the store is unchanged');
      }),
  },
  {
    name: 'a closed store refuses writes',
    run: (f) =>
      withStore(f, async ({ storage: s }) => {
        await s.persist(batch(range(1, 1, 1)));
        await s.close();
        await rejects(s.persist(batch(range(2, 2, 1))), 'persist after close');
        await rejects(s.compact(1, meta(1, 1)), 'compact after close');
      }),
  },
  {
    name: 'snapshot store: nothing is visible before commit; commit replaces the previous atomically',
    run: (f) =>
      withStore(f, async ({ snapshots: st }) => {
        eq(st.latest(), null, 'no snapshot yet');
        const a = pattern(5000, 1);
        await writeSnapshot(st, meta(10, 1), a);
        eq(st.latest(), meta(10, 1), 'latest after the first commit');
        eq(await readSnapshot(st, meta(10, 1)), a, 'its data');
        const w = await st.create(meta(20, 2));
        await w.write(pattern(3000, 2));
        eq(st.latest(), meta(10, 1), 'an uncommitted snapshot is invisible');
        eq(await readSnapshot(st, meta(10, 1)), a, 'the previous data while another is written');
        await w.abort();
        eq(st.latest(), meta(10, 1), 'an aborted snapshot leaves the previous one');
        await rejects(w.write(new Uint8Array(1)), 'a write after abort');
        const b = pattern(7000, 3);
        await writeSnapshot(st, meta(30, 3), b, 333);
        eq(st.latest(), meta(30, 3), 'latest after the second commit');
        eq(await readSnapshot(st, meta(30, 3)), b, 'the second data');
        await rejects(readSnapshot(st, meta(10, 1)), 'reading a replaced snapshot');
        const empty = await st.create(meta(31, 3));
        await empty.commit();
        eq(await readSnapshot(st, meta(31, 3)), new Uint8Array(0), 'an empty snapshot');
      }),
  },
  {
    name: 'snapshot store: multi-MB data streams in chunks and survives a restart',
    run: (f) =>
      withStore(f, async (_h, reopen) => {
        const data = pattern(3 * 1024 * 1024 + 17, 7);
        await writeSnapshot(_h.snapshots, meta(100, 4), data, 64 * 1024);
        const w = await _h.snapshots.create(meta(200, 5));
        await w.write(pattern(100_000, 8));
        // The process stops with this writer open: it must not become the latest.
        const h2 = await reopen();
        eq(h2.snapshots.latest(), meta(100, 4), 'latest after a restart');
        let chunks = 0;
        let max = 0;
        const parts: Uint8Array[] = [];
        for await (const c of h2.snapshots.read(meta(100, 4))) {
          chunks++;
          max = Math.max(max, c.byteLength);
          parts.push(c.slice());
        }
        eq(concat(parts), data, 'the data after a restart');
        ok(chunks >= 1, 'at least one chunk');
      }),
  },
];
