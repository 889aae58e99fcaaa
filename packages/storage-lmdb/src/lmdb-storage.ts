import { accessSync, constants, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CompactedError,
  type Entry,
  emptyConfState,
  emptyHardState,
  type HardState,
  type InitialState,
  type LogStorage,
  type PersistBatch,
  type SnapshotMeta,
  UnavailableError,
} from '@quorate/raft';
import { type Database, open, type RootDatabase } from 'lmdb';
import { HeldHardState, InOrder, readEntries, SWEEP_KEYS, Sweeper } from './batch.js';
import {
  decodeEntry,
  encodeEntry,
  isHardState,
  isPoint,
  isSnapshotMeta,
  plainHardState,
  plainMeta,
  verifiedTerm,
} from './codec.js';
import { StorageError, StorageErrorCode } from './errors.js';
import { DirLock, otherLiveReaders } from './lock.js';
import { checkDataFile } from './preflight.js';
import { LmdbSnapshotStore, SNAPSHOT_RECORD } from './snapshot-store.js';
import { Wal } from './wal.js';

/**
 * The newest on-disk format this version reads. Format 1 keeps the log in LMDB; format 2
 * (what a new store is created in, unless `log: 'lmdb'`) keeps it in a write-ahead log
 * beside LMDB, which then holds the store's record and its snapshots.
 */
export const FORMAT_VERSION = 2;
/** The format of a store whose log is in LMDB (and of `LmdbGroupStore`). */
export const LMDB_LOG_FORMAT = 1;
/** The format of a store whose log is in the write-ahead log. */
export const WAL_FORMAT = 2;

export interface LmdbStorageOptions {
  /** The data directory; created if missing. One node, one directory. */
  dir: string;
  /** Recorded on creation; a directory of another cluster is refused. */
  clusterId: string;
  /** Recorded on creation; a directory of another node is refused. */
  nodeId: string;
  /**
   * Skip every fsync. A crash of the machine (not only of the process) can then lose
   * acknowledged writes and votes, which breaks Raft's safety. For benchmarks only.
   */
  unsafeNoSync?: boolean;
  /** Bytes per stored snapshot chunk (default 1 MiB). */
  snapshotChunkBytes?: number;
  /**
   * Where a new store keeps its log (an existing store keeps the layout it was created with):
   * - `'wal'` (default): a write-ahead log of segment files in `<dir>/wal`, one `O_DSYNC`
   *   write (one device flush) per batch of writes;
   * - `'lmdb'`: in LMDB, one fsynced transaction per batch (two flushes: the pages, then
   *   the meta page). The layout of stores made by versions before the write-ahead log.
   */
  log?: 'wal' | 'lmdb';
  /** Write-ahead log: bytes per segment file (default 64 MiB). */
  walSegmentBytes?: number;
  /** Write-ahead log: bytes of recent entries kept decoded in memory (default 64 MiB). */
  walCacheBytes?: number;
}

/** The record written at creation and checked at every open. */
export interface StoreMeta {
  readonly format: number;
  readonly clusterId: string;
  readonly nodeId: string;
  readonly createdAt: string;
}

/**
 * Key layout, in one LMDB environment (one file, one transaction spans all of it):
 * - database `log`: key = entry index (a number), value = the entry as `codec.ts` lays it out.
 * - database `state` (msgpack): `meta` ({@link StoreMeta}), `hard` (the hard state),
 *   `base` (index and term of the compaction point: the log starts after it),
 *   `snap` (the snapshot the log was last compacted to), and the snapshot store's record.
 * - database `snapdata`: key = [snapshot id, chunk number], value = CRC-32 + chunk bytes.
 */
const DBS = ['log', 'state', 'snapdata'] as const;

interface LogState {
  readonly base: { readonly index: number; readonly term: number };
  readonly last: number;
  readonly hard: HardState;
  readonly snap: SnapshotMeta;
}

const noop = () => {};
const freshSnap: SnapshotMeta = { index: 0, term: 0, conf: emptyConfState };

/**
 * A durable `LogStorage`, with a `SnapshotStore` over LMDB (`storage.snapshots`).
 *
 * The log and hard state live in one of two layouts, fixed when the store is created:
 * - **write-ahead log** (format 2, the default; `wal.ts`): each `persist` is one run of
 *   records appended with one `O_DSYNC` write; reads come from an in-memory index, recent
 *   entries decoded, older ones read back from their segment;
 * - **LMDB** (format 1, `log: 'lmdb'`): each `persist` is one LMDB transaction (snapshot,
 *   then suffix truncation and entries, then hard state), fsynced before it resolves;
 *   reads are synchronous LMDB reads (memory-mapped), ranges iterated with a cursor.
 *
 * In both, overlapping calls are written in call order and those queued together share
 * one durable write; batches with `mustSync: false` (only the commit index moved) are not
 * written on their own: the new hard state rides with the next durable write or
 * `close()`. A crash can lose it, which the contract allows; term and vote are never deferred.
 */
export class LmdbStorage implements LogStorage {
  readonly dir: string;
  readonly meta: StoreMeta;
  /** The snapshot store in this directory. */
  readonly snapshots: LmdbSnapshotStore;

  /** What reads see: the state as of the last resolved write. */
  private state: LogState;
  /** The state as of the last write transaction that ran (ahead of `state` while in flight). */
  private txnState: LogState;
  /** The hard state to write; one that only moves the commit index waits for the next durable write. */
  private readonly hard: HeldHardState;
  /** Settles queued operations in call order. */
  private readonly inOrder = new InOrder(() => this.failure);
  private failure: StorageError | null = null;
  private closing: Promise<void> | null = null;
  private readonly noSync: boolean;
  /** Counters of `storageStats()`: persisted batches, the fsynced commits that carried them, their entry bytes. */
  private writes = 0;
  private syncs = 0;
  private bytesWritten = 0;
  /** The LMDB transaction of the last batch counted in `syncs` (batches grouped into one commit share it). */
  private lastSyncedTxn = -1;

  private constructor(
    private readonly env: RootDatabase,
    private readonly log: Database<Buffer, number>,
    private readonly kv: Database<unknown, string>,
    chunks: Database<Buffer, [number, number]>,
    private readonly lock: DirLock,
    dir: string,
    meta: StoreMeta,
    state: LogState,
    opts: LmdbStorageOptions,
    private readonly wal: Wal | null,
  ) {
    this.dir = dir;
    this.meta = meta;
    this.state = state;
    this.txnState = state;
    this.hard = new HeldHardState(state.hard);
    this.noSync = opts.unsafeNoSync === true;
    this.snapshots = new LmdbSnapshotStore(
      kv,
      chunks,
      dir,
      () => this.checkUsable(),
      opts.snapshotChunkBytes,
    );
  }

  /**
   * Open (or create) the store in `opts.dir`. Refuses, with a {@link StorageError} naming
   * the directory: a directory locked by a live process, written by a newer format, of
   * another cluster or node, damaged, or not writable. It never resets or overwrites one.
   */
  static async open(opts: LmdbStorageOptions): Promise<LmdbStorage> {
    for (const k of ['dir', 'clusterId', 'nodeId'] as const) {
      if (typeof opts[k] !== 'string' || opts[k].length === 0) {
        throw new StorageError(
          StorageErrorCode.InvalidArgument,
          `LmdbStorage.open: ${k} must be a non-empty string`,
        );
      }
    }
    const dir = resolve(opts.dir);
    prepareDir(dir);
    const lock = DirLock.acquire(dir);
    let env: RootDatabase | undefined;
    try {
      checkDataFile(dir);
      try {
        env = open({
          path: dir,
          // A directory holding data.mdb and lock.mdb, whatever its name (lmdb takes a
          // path with an extension, `node.data` say, for a single file otherwise).
          noSubdir: false,
          maxDbs: DBS.length + 1,
          // Our commits resolve only once fsynced (LMDB's classic commit), not at the
          // separate, later flush that overlapping sync would need us to track.
          overlappingSync: false,
          noSync: opts.unsafeNoSync === true,
        });
      } catch (err) {
        throw asOpenError(dir, err);
      }
      const root = env;
      const { log, kv, chunks, meta, state } = loadOrCreate(dir, root, opts);
      // Belt and braces for the lock file: any other live process in LMDB's reader table.
      const others = otherLiveReaders(String(root.readerList()));
      if (others.length > 0) {
        throw new StorageError(
          StorageErrorCode.Locked,
          `${dir} is also open in process ${others.join(', ')}; two nodes must never share a data directory`,
          { path: dir },
        );
      }
      cleanUp(root, log, chunks, kv, state);
      const wal = meta.format === WAL_FORMAT ? openWal(dir, root, kv, state, opts) : null;
      return new LmdbStorage(root, log, kv, chunks, lock, dir, meta, state, opts, wal);
    } catch (err) {
      await env?.close().catch(noop);
      lock.release();
      throw err;
    }
  }

  // -------------------------------------------------------------------- reads

  /** As of the last resolved write. */
  private get cur(): LogState {
    return this.wal ? this.wal.current() : this.state;
  }

  initialState(): InitialState {
    const s = this.cur;
    return { hardState: s.hard, conf: s.snap.conf };
  }

  firstIndex(): number {
    return this.cur.base.index + 1;
  }

  lastIndex(): number {
    return this.cur.last;
  }

  /** The whole hard state, as of the last resolved `persist`. */
  hardState(): HardState {
    return this.cur.hard;
  }

  snapshot(): SnapshotMeta {
    return this.cur.snap;
  }

  /** Where the log is kept: `'wal'` or `'lmdb'` (decided when the store was created). */
  get logLayout(): 'wal' | 'lmdb' {
    return this.wal ? 'wal' : 'lmdb';
  }

  term(index: number): number {
    if (this.wal) {
      this.checkOpen();
      return this.wal.term(index);
    }
    const s = this.state;
    if (index === s.base.index) return s.base.term;
    if (index < s.base.index) throw new CompactedError(index, s.base.index + 1);
    if (index > s.last) throw new UnavailableError(index, s.last);
    this.checkOpen();
    return this.termAt(index, this.log.getBinaryFast(index));
  }

  /** The term of the entry read at `index`, its CRC-32 verified: a damaged entry throws, never answers. */
  private termAt(index: number, value: Uint8Array | undefined): number {
    const t = value === undefined ? `entry ${index} is missing` : verifiedTerm(index, value);
    if (typeof t === 'string') throw this.corrupt(t);
    return t;
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (this.wal) {
      if (lo < hi) this.checkOpen(); // an empty range touches nothing
      return this.wal.entries(lo, hi, maxBytes);
    }
    const s = this.state;
    if (lo <= s.base.index) throw new CompactedError(lo, s.base.index + 1);
    if (hi > s.last + 1) throw new UnavailableError(hi - 1, s.last);
    const out: Entry[] = [];
    if (lo >= hi) return out;
    this.checkOpen();
    // A cursor over [lo, hi): lazily read, left as soon as the byte budget is spent.
    const rows = this.log.getRange({ start: lo, end: hi }).map(({ key, value }) => ({ index: key, value }));
    return readEntries(rows, lo, hi, maxBytes, (why) => this.corrupt(why));
  }

  // -------------------------------------------------------------------- writes

  persist(batch: PersistBatch): Promise<void> {
    const bad = this.checkUsable();
    if (bad) return Promise.reject(bad);
    if (this.wal) return this.wal.persist(batch);
    const { snapshot, entries } = batch;
    const held = this.hard.hold(batch);
    if (held) {
      // Only the commit index moved: keep it for the next durable write.
      return this.settleInOrder(Promise.resolve(), () => {
        this.state = { ...this.state, hard: held };
      });
    }
    const hard = this.hard.forWrite(batch);
    const stored = entries.map((e) => ({ index: e.index, value: encodeEntry(e) }));
    const snap = snapshot ? plainMeta(snapshot) : null;
    let bytes = 0;
    for (const e of stored) bytes += e.value.byteLength;
    const done = this.write((s) => this.applyBatch(s, snap, stored, hard), bytes);
    if (snap) void done.then(() => this.sweep(), noop);
    return done;
  }

  /** The write transaction of one batch; runs inside LMDB's write lock, in call order. */
  private applyBatch(
    s: LogState,
    snap: SnapshotMeta | null,
    entries: { index: number; value: Buffer }[],
    hard: HardState | null,
  ): LogState {
    let { base, last } = s;
    let snapMeta = s.snap;
    if (snap) {
      // Entries past the snapshot go now; those up to it are below the new base, where no
      // read reaches, and are swept once this write is durable.
      this.removeLogRange(snap.index + 1, Number.POSITIVE_INFINITY);
      base = { index: snap.index, term: snap.term };
      last = snap.index;
      snapMeta = snap;
      this.kv.put('base', base);
      this.kv.put('snap', snap);
    }
    if (entries.length > 0) {
      const from = entries[0]!.index;
      if (from <= base.index) {
        throw this.invalid(`cannot append at ${from}: the log starts at ${base.index + 1}`);
      }
      if (from > last + 1) throw this.invalid(`cannot append at ${from}: the log ends at ${last} (a gap)`);
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== from + i) {
          throw this.invalid(`entries are not contiguous: ${entries[i]!.index} follows ${from + i - 1}`);
        }
      }
      for (let i = from; i <= last; i++) this.log.remove(i); // a conflicting suffix goes
      for (const e of entries) this.log.put(e.index, e.value);
      last = entries[entries.length - 1]!.index;
    }
    if (hard) this.kv.put('hard', hard);
    return { base, last, hard: hard ?? s.hard, snap: snapMeta };
  }

  compact(index: number, snapshot: SnapshotMeta): Promise<void> {
    const bad = this.checkUsable();
    if (bad) return Promise.reject(bad);
    if (snapshot.index < index) {
      return Promise.reject(
        this.invalid(`cannot compact to ${index}: the snapshot covers only up to ${snapshot.index}`),
      );
    }
    if (this.wal) return this.wal.compact(index, snapshot);
    const snap = plainMeta(snapshot);
    const done = this.write((s) => {
      let base = s.base;
      if (index > base.index) {
        if (index > s.last) throw this.invalid(`cannot compact to ${index}: the log ends at ${s.last}`);
        base = { index, term: this.termAt(index, this.log.getBinaryFast(index)) };
        this.kv.put('base', base);
      }
      this.kv.put('snap', snap);
      return { ...s, base, snap };
    });
    // The compacted entries are deleted by a later transaction, once reads no longer
    // reach them: until this one resolves, the core may still read what it compacts.
    void done.then(
      () => this.sweep(),
      () => {},
    );
    return done;
  }

  /** Delete entries at or before the compaction point (left by `compact` or a snapshot), in bounded steps. */
  private sweep(): void {
    this.sweeper.request();
  }

  private readonly sweeper = new Sweeper(() => {
    if (this.closing || this.failure) return null;
    let more = false;
    return this.write((s) => {
      more = this.removeLogRange(Number.NEGATIVE_INFINITY, s.base.index + 1, SWEEP_KEYS);
      return s;
    }).then(() => more);
  });

  /**
   * Remove keys in [from, to) in the current write transaction, a bounded batch of keys at
   * a time; at most `max` of them. True if `max` were removed (some may remain).
   */
  private removeLogRange(from: number, to: number, max = Number.POSITIVE_INFINITY): boolean {
    let removed = 0;
    while (removed < max) {
      const limit = Math.min(4096, max - removed);
      const keys = [...this.log.getKeys({ start: from, end: to, limit })];
      for (const k of keys) this.log.remove(k);
      removed += keys.length;
      if (keys.length < limit) return false;
    }
    return true;
  }

  /**
   * Queue one write transaction. `fn` runs inside LMDB's write lock on the state left by
   * the previous transaction; if it throws, its child transaction rolls back and nothing
   * is written. The returned promise settles after every earlier call's, once durable.
   * `batchBytes` is given for a persisted batch: it is counted in `storageStats()` then.
   */
  private write(fn: (s: LogState) => LogState, batchBytes?: number): Promise<void> {
    let next: LogState | undefined;
    // The LMDB transaction the child ran in: calls grouped into one commit share it.
    let txnId = -1;
    const txn = this.log
      .childTransaction(() => {
        txnId = this.log.getWriteTxnId();
        next = fn(this.txnState);
        this.txnState = next;
      })
      .then(
        () => undefined,
        (err: unknown) => {
          if (err instanceof StorageError && err.code === StorageErrorCode.InvalidArgument) throw err;
          if (err instanceof StorageError && err.code === StorageErrorCode.Corrupt) throw err;
          // The commit failed: what is on disk is unknown, the store stops.
          this.failure ??= new StorageError(
            StorageErrorCode.WriteFailed,
            `write to ${this.dir} failed; the store is stopped: ${(err as Error).message}`,
            { cause: err, path: this.dir },
          );
          throw this.failure;
        },
      );
    return this.settleInOrder(txn, () => {
      if (next) this.state = next;
      if (batchBytes === undefined) return;
      this.writes++;
      this.bytesWritten += batchBytes;
      // Calls settle in call order, so the batches of one commit are counted one after another.
      if (!this.noSync && txnId !== this.lastSyncedTxn) {
        this.syncs++;
        this.lastSyncedTxn = txnId;
      }
    });
  }

  private settleInOrder(op: Promise<void>, onDone: () => void): Promise<void> {
    return this.inOrder.settle(op, onDone);
  }

  /**
   * Counters for metrics (the `StorageStatsSource` shape of `@quorate/metrics`), counted
   * once durable:
   * - `writes`: persisted batches (`persist` calls written to LMDB; a deferred
   *   `mustSync: false` batch is not one);
   * - `syncs`: fsynced LMDB commits that carried them. LMDB groups the batches queued
   *   together into one commit with one fsync, so `syncs <= writes` and
   *   `writes / syncs` is the grouping; 0 with `unsafeNoSync`;
   * - `bytesWritten`: the stored bytes of their entries (header + payload).
   *
   * Compaction, its sweep and snapshot chunks are not counted.
   */
  storageStats(): { writes: number; syncs: number; bytesWritten: number } {
    if (this.wal)
      return { writes: this.wal.writes, syncs: this.wal.syncs, bytesWritten: this.wal.bytesWritten };
    return { writes: this.writes, syncs: this.syncs, bytesWritten: this.bytesWritten };
  }

  /** Wait for every queued write, write a deferred hard state, close LMDB, release the lock. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.wal) {
        await this.wal.close().catch(noop);
        await this.snapshots.closeWriters();
        await this.env.close().catch(noop);
        this.lock.release();
        return;
      }
      const h = this.failure ? null : this.hard.take();
      if (h) {
        await this.write((s) => {
          this.kv.put('hard', h);
          return { ...s, hard: h };
        }).catch(noop);
      }
      await this.inOrder.idle();
      await this.snapshots.closeWriters();
      await this.env.close().catch(noop);
      this.lock.release();
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------- helpers

  private checkUsable(): StorageError | null {
    if (this.failure) return this.failure;
    if (this.closing) return new StorageError(StorageErrorCode.Closed, `the store at ${this.dir} is closed`);
    return null;
  }

  private checkOpen(): void {
    if (this.closing) throw new StorageError(StorageErrorCode.Closed, `the store at ${this.dir} is closed`);
  }

  private invalid(what: string): StorageError {
    return new StorageError(StorageErrorCode.InvalidArgument, `${this.dir}: ${what}`, { path: this.dir });
  }

  private corrupt(what: string): StorageError {
    return new StorageError(
      StorageErrorCode.Corrupt,
      `${this.dir} is damaged: ${what}. Restore the directory from a backup, or move it aside and let the node catch up from its peers`,
      { path: this.dir },
    );
  }
}

// ---------------------------------------------------------------------- opening

function prepareDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new StorageError(
      StorageErrorCode.ReadOnly,
      `${dir} cannot be created: ${(err as Error).message}. Choose a writable data directory`,
      { cause: err, path: dir },
    );
  }
  for (const p of [dir, join(dir, 'data.mdb'), join(dir, 'lock.mdb')]) {
    if (p !== dir && !existsSync(p)) continue;
    try {
      accessSync(p, constants.R_OK | constants.W_OK);
    } catch (err) {
      throw new StorageError(
        StorageErrorCode.ReadOnly,
        `${p} is not writable (${(err as NodeJS.ErrnoException).code}); the store needs to write its data directory ${dir}. Fix its owner or permissions`,
        { cause: err, path: dir },
      );
    }
  }
}

function asOpenError(dir: string, err: unknown): StorageError {
  const msg = (err as Error).message ?? String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM' || /permission denied|read-only/i.test(msg)) {
    return new StorageError(StorageErrorCode.ReadOnly, `${dir} cannot be opened for writing: ${msg}`, {
      cause: err,
      path: dir,
    });
  }
  return new StorageError(
    StorageErrorCode.Corrupt,
    `${dir} cannot be opened as an LMDB store: ${msg}. Restore it from a backup, or move it aside and let the node catch up from its peers`,
    { cause: err, path: dir },
  );
}

interface Databases {
  log: Database<Buffer, number>;
  kv: Database<unknown, string>;
  chunks: Database<Buffer, [number, number]>;
}

/**
 * Open the store's databases and load its state, or create them in an empty environment.
 * LMDB creates a named database when it is opened, so an environment that is not a
 * quorate store (another application's) is recognised from the names in its main
 * database first and refused before anything is opened or written in it; opening a
 * database that exists writes nothing.
 */
function loadOrCreate(
  dir: string,
  root: RootDatabase,
  opts: LmdbStorageOptions,
): Databases & { meta: StoreMeta; state: LogState } {
  const corrupt = (what: string) =>
    new StorageError(
      StorageErrorCode.Corrupt,
      `${dir} ${what}. Restore it from a backup, or move it aside and let the node catch up from its peers`,
      { path: dir },
    );
  const notOurs = (what: string, cause?: unknown) =>
    new StorageError(
      StorageErrorCode.Corrupt,
      `${dir} holds an LMDB environment that is not a quorate store (${what}); it was left as it was. Choose another data directory`,
      { cause, path: dir },
    );
  let names: unknown[];
  try {
    names = [...root.getKeys()];
  } catch (err) {
    throw notOurs(`its main database cannot be read: ${(err as Error).message}`, err);
  }
  const foreign = names.filter((k) => !(DBS as readonly unknown[]).includes(k));
  if (foreign.length > 0) {
    const shown = foreign.slice(0, 3).map(String).join(', ');
    throw notOurs(`it has ${shown}${foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''}`);
  }
  const present = new Set(names);
  const openLog = () => root.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
  const openKv = () => root.openDB<unknown, string>({ name: 'state', encoding: 'msgpack' });
  const openChunks = () => root.openDB<Buffer, [number, number]>({ name: 'snapdata', encoding: 'binary' });
  let log = present.has('log') ? openLog() : undefined;
  let kv = present.has('state') ? openKv() : undefined;
  let chunks = present.has('snapdata') ? openChunks() : undefined;
  const read = (key: string): unknown => {
    try {
      return kv?.get(key);
    } catch (err) {
      throw new StorageError(StorageErrorCode.Corrupt, `${dir}: the record '${key}' cannot be decoded`, {
        cause: err,
        path: dir,
      });
    }
  };
  let meta = read('meta');
  if (meta === undefined) {
    // A new store, or one whose first open was cut short: what exists of it must be empty.
    const count = (db: { getKeysCount(): number } | undefined) => db?.getKeysCount() ?? 0;
    const empty = count(log) === 0 && count(kv) === 0 && count(chunks) === 0;
    if (!empty) throw corrupt('has data but no meta record (format, cluster and node id)');
    log ??= openLog();
    kv ??= openKv();
    chunks ??= openChunks();
    const created: StoreMeta = {
      format: opts.log === 'lmdb' ? LMDB_LOG_FORMAT : WAL_FORMAT,
      clusterId: opts.clusterId,
      nodeId: opts.nodeId,
      createdAt: new Date().toISOString(),
    };
    const state = kv;
    root.transactionSync(() => {
      state.put('meta', created);
      state.put('hard', plainHardState(emptyHardState));
      state.put('base', { index: 0, term: 0 });
      state.put('snap', plainMeta(freshSnap));
    });
    meta = created;
  }
  if (!log || !kv || !chunks) {
    throw corrupt(`has a meta record but no '${log ? 'snapdata' : 'log'}' database`);
  }
  const m = meta as Partial<StoreMeta>;
  if (typeof m !== 'object' || m === null || !Number.isSafeInteger(m.format) || (m.format as number) < 1) {
    throw corrupt('has an unreadable meta record');
  }
  if ((m.format as number) > FORMAT_VERSION) {
    throw new StorageError(
      StorageErrorCode.FormatTooNew,
      `${dir} was written in storage format ${m.format}, newer than format ${FORMAT_VERSION} that this version reads. Run a newer @quorate/storage-lmdb; never downgrade a data directory`,
      { path: dir },
    );
  }
  if (m.clusterId !== opts.clusterId) {
    throw new StorageError(
      StorageErrorCode.ForeignCluster,
      `${dir} belongs to cluster '${m.clusterId}', not '${opts.clusterId}'. Check the data directory and the cluster id`,
      { path: dir },
    );
  }
  if (m.nodeId !== opts.nodeId) {
    throw new StorageError(
      StorageErrorCode.ForeignNode,
      `${dir} belongs to node '${m.nodeId}', not '${opts.nodeId}'. Each node needs its own data directory`,
      { path: dir },
    );
  }
  const hard = read('hard');
  const base = read('base');
  const snap = read('snap');
  if (!isHardState(hard)) throw corrupt('has an unreadable hard state record');
  if (!isPoint(base)) throw corrupt('has an unreadable compaction record');
  if (!isSnapshotMeta(snap)) throw corrupt('has an unreadable snapshot record');
  // The log runs from base + 1 to its last key; entries at or before base await deletion.
  let last = base.index;
  for (const k of log.getKeys({ reverse: true, limit: 1 })) last = Math.max(last, k);
  const count = last > base.index ? log.getCount({ start: base.index + 1, end: last + 1 }) : 0;
  if (count !== last - base.index) {
    throw corrupt(`has holes in its log: ${count} entries between ${base.index + 1} and ${last}`);
  }
  for (const i of last > base.index ? [base.index + 1, last] : []) {
    const v = log.getBinary(i);
    const e = v === undefined ? `entry ${i} is missing` : decodeEntry(i, v);
    if (typeof e === 'string') throw corrupt(`has a damaged log: ${e}`);
  }
  return {
    log,
    kv,
    chunks,
    meta: m as StoreMeta,
    state: { base, last, hard: plainHardState(hard), snap: plainMeta(snap) },
  };
}

/**
 * Open the write-ahead log of a format-2 store. Its first open creates it (from the
 * initial state LMDB was created with) and then records in LMDB that it exists: a store
 * whose log has gone missing afterwards is refused, never silently started empty.
 */
function openWal(
  dir: string,
  root: RootDatabase,
  kv: Database<unknown, string>,
  initial: LogState,
  opts: LmdbStorageOptions,
): Wal {
  const made = kv.get('wal') === true;
  if (made && !hasSegments(join(dir, 'wal'))) {
    throw new StorageError(
      StorageErrorCode.Corrupt,
      `${dir} is damaged: its write-ahead log (${join(dir, 'wal')}) is missing. Restore the directory from a backup, or move it aside and let the node catch up from its peers`,
      { path: dir },
    );
  }
  const wal = Wal.open(
    dir,
    {
      noSync: opts.unsafeNoSync === true,
      ...(opts.walSegmentBytes !== undefined ? { segmentBytes: opts.walSegmentBytes } : {}),
      ...(opts.walCacheBytes !== undefined ? { cacheBytes: opts.walCacheBytes } : {}),
    },
    initial,
  );
  if (!made) root.transactionSync(() => kv.put('wal', true));
  return wal;
}

function hasSegments(walDir: string): boolean {
  try {
    return readdirSync(walDir).some((n) => n.endsWith('.wal'));
  } catch {
    return false;
  }
}

/** Finish what a crash may have interrupted: compacted entries and unfinished snapshots. */
function cleanUp(
  root: RootDatabase,
  log: Database<Buffer, number>,
  chunks: Database<Buffer, [number, number]>,
  kv: Database<unknown, string>,
  state: LogState,
): void {
  const record = kv.get(SNAPSHOT_RECORD) as { id?: number } | undefined;
  const keep = typeof record?.id === 'number' ? record.id : -1;
  const staleLog = log.getKeysCount({ end: state.base.index + 1 }) > 0;
  let staleChunks = false;
  for (const k of chunks.getKeys({})) {
    if (k[0] !== keep) {
      staleChunks = true;
      break;
    }
  }
  if (!staleLog && !staleChunks) return;
  root.transactionSync(() => {
    for (const k of [...log.getKeys({ end: state.base.index + 1 })]) log.remove(k);
    for (const k of [...chunks.getKeys({})]) if (k[0] !== keep) chunks.remove(k);
  });
}
