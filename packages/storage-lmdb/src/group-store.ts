/**
 * `LmdbGroupStore`: the logs, hard states and snapshots of many Raft groups in one LMDB
 * environment, for `@quorate/multiraft`. Each group gets a `LogStorage` view
 * (`store.group(id)`, with its `SnapshotStore` as `.snapshots`) that behaves as an
 * `LmdbStorage` of its own; what they share is the environment, so the writes of every
 * group queued in one event-loop turn become **one** LMDB commit and one fsync. A host of
 * a thousand groups whose ready batches persist together pays for one durable write, not a
 * thousand (`storageStats()` counts batches and commits).
 *
 * Key layout:
 * - database `glog`: key = [group, index], value = the entry as `codec.ts` lays it out;
 * - database `gstate` (msgpack): `meta` ({@link StoreMeta} with `groups: true`), and per
 *   group `g/<id>/hard`, `g/<id>/base`, `g/<id>/snap` and its snapshot record `g/<id>/snapshot`;
 * - database `gsnap`: key = [snapshot id, chunk number]; ids are unique across groups.
 *
 * A directory of a single-group `LmdbStorage` is refused, and `LmdbStorage` refuses this one.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  CompactedError,
  type Entry,
  emptyConfState,
  emptyHardState,
  type GroupId,
  type HardState,
  type InitialState,
  type LogStorage,
  MAX_GROUP_ID,
  type PersistBatch,
  type SnapshotMeta,
  UnavailableError,
} from '@quorate/raft';
import { type Database, open, type RootDatabase } from 'lmdb';
import { HeldHardState, readEntries, SWEEP_KEYS, Sweeper } from './batch.js';
import {
  encodeEntry,
  isHardState,
  isPoint,
  isSnapshotMeta,
  plainHardState,
  plainMeta,
  verifiedTerm,
} from './codec.js';
import { StorageError, StorageErrorCode } from './errors.js';
import { FORMAT_VERSION, LMDB_LOG_FORMAT, type StoreMeta } from './lmdb-storage.js';
import { DirLock } from './lock.js';
import { checkDataFile } from './preflight.js';
import { LmdbSnapshotStore } from './snapshot-store.js';

export interface LmdbGroupStoreOptions {
  /** The data directory of this host (every group); created if missing. */
  dir: string;
  clusterId: string;
  nodeId: string;
  /** Skip every fsync (benchmarks only: a machine crash can then break Raft's safety). */
  unsafeNoSync?: boolean;
  /** Bytes per stored snapshot chunk (default 1 MiB). */
  snapshotChunkBytes?: number;
}

type GroupMeta = StoreMeta & { readonly groups: true };

interface LogState {
  readonly base: { readonly index: number; readonly term: number };
  readonly last: number;
  readonly hard: HardState;
  readonly snap: SnapshotMeta;
}

const DBS = ['glog', 'gstate', 'gsnap'] as const;
const noop = () => {};
const key = (g: GroupId, what: string) => `g/${g}/${what}`;

export class LmdbGroupStore {
  readonly dir: string;
  readonly meta: GroupMeta;
  /** @internal */ readonly log: Database<Buffer, [number, number]>;
  /** @internal */ readonly kv: Database<unknown, string>;
  /** @internal */ readonly chunks: Database<Buffer, [number, number]>;
  /** @internal */ readonly noSync: boolean;
  private readonly views = new Map<GroupId, LmdbGroupLog>();
  private nextSnapshotId: number;
  private closing: Promise<void> | null = null;
  /** @internal */ failure: StorageError | null = null;
  // Counters: persisted batches of every group, and the LMDB commits that carried them.
  private batches = 0;
  private commits = 0;
  private lastTxn = -1;

  private constructor(
    private readonly env: RootDatabase,
    private readonly lock: DirLock,
    dir: string,
    meta: GroupMeta,
    private readonly opts: LmdbGroupStoreOptions,
  ) {
    this.dir = dir;
    this.meta = meta;
    this.noSync = opts.unsafeNoSync === true;
    this.log = env.openDB<Buffer, [number, number]>({ name: 'glog', encoding: 'binary' });
    this.kv = env.openDB<unknown, string>({ name: 'gstate', encoding: 'msgpack' });
    this.chunks = env.openDB<Buffer, [number, number]>({ name: 'gsnap', encoding: 'binary' });
    let maxId = 0;
    for (const k of this.chunks.getKeys({ reverse: true, limit: 1 })) maxId = k[0];
    for (const { value } of this.kv.getRange({})) {
      const id = (value as { id?: unknown } | undefined)?.id;
      if (typeof id === 'number' && id > maxId) maxId = id;
    }
    this.nextSnapshotId = maxId + 1;
  }

  /** Open (or create) the store in `opts.dir`; refuses what `LmdbStorage.open` refuses. */
  static async open(opts: LmdbGroupStoreOptions): Promise<LmdbGroupStore> {
    for (const k of ['dir', 'clusterId', 'nodeId'] as const) {
      if (typeof opts[k] !== 'string' || opts[k].length === 0) {
        throw new StorageError(
          StorageErrorCode.InvalidArgument,
          `LmdbGroupStore.open: ${k} must be a non-empty string`,
        );
      }
    }
    const dir = resolve(opts.dir);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new StorageError(
        StorageErrorCode.ReadOnly,
        `${dir} cannot be created: ${(err as Error).message}`,
        {
          cause: err,
          path: dir,
        },
      );
    }
    const lock = DirLock.acquire(dir);
    let env: RootDatabase | undefined;
    try {
      checkDataFile(dir);
      env = open({
        path: dir,
        noSubdir: false,
        maxDbs: DBS.length + 1,
        overlappingSync: false,
        noSync: opts.unsafeNoSync === true,
      });
      const names = [...env.getKeys()];
      const foreign = names.filter((k) => !(DBS as readonly unknown[]).includes(k));
      if (foreign.length > 0) {
        throw new StorageError(
          StorageErrorCode.Corrupt,
          `${dir} is not a multi-group store (it has ${foreign.slice(0, 3).map(String).join(', ')}; a single-group LmdbStorage directory?). Choose another data directory`,
          { path: dir },
        );
      }
      const kv = env.openDB<unknown, string>({ name: 'gstate', encoding: 'msgpack' });
      let meta = kv.get('meta') as Partial<GroupMeta> | undefined;
      if (meta === undefined) {
        const created: GroupMeta = {
          format: LMDB_LOG_FORMAT,
          clusterId: opts.clusterId,
          nodeId: opts.nodeId,
          createdAt: new Date().toISOString(),
          groups: true,
        };
        env.transactionSync(() => kv.put('meta', created));
        meta = created;
      }
      if ((meta.format ?? 0) > FORMAT_VERSION) {
        throw new StorageError(
          StorageErrorCode.FormatTooNew,
          `${dir} was written in storage format ${meta.format}`,
          { path: dir },
        );
      }
      if (meta.clusterId !== opts.clusterId) {
        throw new StorageError(
          StorageErrorCode.ForeignCluster,
          `${dir} belongs to cluster '${meta.clusterId}', not '${opts.clusterId}'`,
          {
            path: dir,
          },
        );
      }
      if (meta.nodeId !== opts.nodeId) {
        throw new StorageError(
          StorageErrorCode.ForeignNode,
          `${dir} belongs to node '${meta.nodeId}', not '${opts.nodeId}'`,
          { path: dir },
        );
      }
      return new LmdbGroupStore(env, lock, dir, meta as GroupMeta, opts);
    } catch (err) {
      await env?.close().catch(noop);
      lock.release();
      throw err;
    }
  }

  /** The `LogStorage` of `group` (created empty on first use); one view per group. */
  group(group: GroupId): LmdbGroupLog {
    if (!Number.isInteger(group) || group < 0 || group > MAX_GROUP_ID) {
      throw new StorageError(
        StorageErrorCode.InvalidArgument,
        `group ids are integers in [0, ${MAX_GROUP_ID}] (got ${group})`,
      );
    }
    this.checkUsable(true);
    let v = this.views.get(group);
    if (!v || v.closed) {
      v = new LmdbGroupLog(this, group, this.opts.snapshotChunkBytes);
      this.views.set(group, v);
    }
    return v;
  }

  /** The groups that have state in this store. */
  groups(): GroupId[] {
    const out = new Set<GroupId>();
    for (const k of this.kv.getKeys({ start: 'g/', end: 'g0' })) {
      const m = /^g\/(\d+)\/hard$/.exec(String(k));
      if (m) out.add(Number(m[1]));
    }
    return [...out].sort((a, b) => a - b);
  }

  /**
   * `batches`: persisted ready batches of every group; `commits`: the fsynced LMDB
   * commits that carried them (0 with `unsafeNoSync`). `batches / commits` is how many
   * groups' writes shared one durable commit.
   */
  storageStats(): { batches: number; commits: number } {
    return { batches: this.batches, commits: this.commits };
  }

  /** @internal A batch of some group was written in LMDB write transaction `txn`. */
  counted(txn: number): void {
    this.batches++;
    if (!this.noSync && txn !== this.lastTxn) {
      this.commits++;
      this.lastTxn = txn;
    }
  }

  /** @internal */
  nextId(): number {
    return this.nextSnapshotId++;
  }

  /** @internal */
  checkUsable(forOpen = false): StorageError | null {
    const e =
      this.failure ??
      (this.closing
        ? new StorageError(StorageErrorCode.Closed, `the store at ${this.dir} is closed`, { path: this.dir })
        : null);
    if (e && forOpen) throw e;
    return e;
  }

  /** Close every group's view (their deferred hard states are written), then LMDB. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.views.values()].map((v) => v.closeView()));
      await this.env.close().catch(noop);
      this.lock.release();
    })();
    return this.closing;
  }
}

/**
 * One group's `LogStorage` in an `LmdbGroupStore`: the same contract and behaviour as
 * `LmdbStorage` (one child transaction per batch, durable in call order, commit-only
 * batches deferred), over the group's keys. `close()` ends the view, not the store.
 */
export class LmdbGroupLog implements LogStorage {
  readonly snapshots: LmdbSnapshotStore;
  closed = false;
  private state: LogState;
  private txnState: LogState;
  /** The hard state to write; one that only moves the commit index waits for the next durable write. */
  private readonly hard: HeldHardState;
  private tail: Promise<void> = Promise.resolve();
  private closing: Promise<void> | null = null;

  /** @internal */
  constructor(
    private readonly store: LmdbGroupStore,
    readonly group: GroupId,
    chunkBytes?: number,
  ) {
    this.state = this.load();
    this.txnState = this.state;
    this.hard = new HeldHardState(this.state.hard);
    this.snapshots = new LmdbSnapshotStore(
      store.kv,
      store.chunks,
      store.dir,
      () => this.usable(),
      chunkBytes,
      {
        recordKey: key(group, 'snapshot'),
        nextId: () => store.nextId(),
      },
    );
  }

  private load(): LogState {
    const { kv, log } = this.store;
    const g = this.group;
    const hard = kv.get(key(g, 'hard')) ?? plainHardState(emptyHardState);
    const base = kv.get(key(g, 'base')) ?? { index: 0, term: 0 };
    const snap = kv.get(key(g, 'snap')) ?? plainMeta({ index: 0, term: 0, conf: emptyConfState });
    if (!isHardState(hard) || !isPoint(base) || !isSnapshotMeta(snap))
      throw this.corrupt('an unreadable state record');
    let last = base.index;
    for (const k of log.getKeys({
      start: [g + 1] as unknown as [number, number],
      end: [g, 0],
      reverse: true,
      limit: 1,
    })) {
      if (k[0] === g) last = Math.max(last, k[1]);
    }
    return { base, last, hard: plainHardState(hard), snap: plainMeta(snap) };
  }

  initialState(): InitialState {
    return { hardState: this.state.hard, conf: this.state.snap.conf };
  }
  firstIndex(): number {
    return this.state.base.index + 1;
  }
  lastIndex(): number {
    return this.state.last;
  }
  snapshot(): SnapshotMeta {
    return this.state.snap;
  }

  term(index: number): number {
    const s = this.state;
    if (index === s.base.index) return s.base.term;
    if (index < s.base.index) throw new CompactedError(index, s.base.index + 1);
    if (index > s.last) throw new UnavailableError(index, s.last);
    return this.termAt(index, this.store.log.getBinaryFast([this.group, index]));
  }

  private termAt(index: number, value: Uint8Array | undefined): number {
    const t = value === undefined ? `entry ${index} is missing` : verifiedTerm(index, value);
    if (typeof t === 'string') throw this.corrupt(t);
    return t;
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    const s = this.state;
    if (lo <= s.base.index) throw new CompactedError(lo, s.base.index + 1);
    if (hi > s.last + 1) throw new UnavailableError(hi - 1, s.last);
    const out: Entry[] = [];
    if (lo >= hi) return out;
    const rows = this.store.log
      .getRange({ start: [this.group, lo], end: [this.group, hi] })
      .map(({ key: k, value }) => ({ index: k[1], value }));
    return readEntries(rows, lo, hi, maxBytes, (why) => this.corrupt(why));
  }

  persist(batch: PersistBatch): Promise<void> {
    const bad = this.usable();
    if (bad) return Promise.reject(bad);
    const { snapshot, entries } = batch;
    const held = this.hard.hold(batch);
    if (held) {
      // Only the commit index moved: it rides with the next durable write (or close).
      return this.settleInOrder(Promise.resolve(), () => {
        this.state = { ...this.state, hard: held };
      });
    }
    const hard = this.hard.forWrite(batch);
    const stored = entries.map((e) => ({ index: e.index, value: encodeEntry(e) }));
    const snap = snapshot ? plainMeta(snapshot) : null;
    const done = this.write((s) => this.applyBatch(s, snap, stored, hard), true);
    if (snap) void done.then(() => this.sweep(), noop);
    return done;
  }

  private applyBatch(
    s: LogState,
    snap: SnapshotMeta | null,
    entries: { index: number; value: Buffer }[],
    hard: HardState | null,
  ): LogState {
    const { log, kv } = this.store;
    const g = this.group;
    let { base, last } = s;
    let snapMeta = s.snap;
    if (snap) {
      // Entries past the snapshot go now; those up to it are below the new base and are
      // swept once this write is durable.
      this.removeRange(snap.index + 1, Number.MAX_SAFE_INTEGER);
      base = { index: snap.index, term: snap.term };
      last = snap.index;
      snapMeta = snap;
      kv.put(key(g, 'base'), base);
      kv.put(key(g, 'snap'), snap);
    }
    if (entries.length > 0) {
      const from = entries[0]!.index;
      if (from <= base.index)
        throw this.invalid(`cannot append at ${from}: the log starts at ${base.index + 1}`);
      if (from > last + 1) throw this.invalid(`cannot append at ${from}: the log ends at ${last} (a gap)`);
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== from + i)
          throw this.invalid(`entries are not contiguous at ${entries[i]!.index}`);
      }
      for (let i = from; i <= last; i++) log.remove([g, i]);
      for (const e of entries) log.put([g, e.index], e.value);
      last = entries[entries.length - 1]!.index;
    }
    if (hard) kv.put(key(g, 'hard'), hard);
    return { base, last, hard: hard ?? s.hard, snap: snapMeta };
  }

  compact(index: number, snapshot: SnapshotMeta): Promise<void> {
    const bad = this.usable();
    if (bad) return Promise.reject(bad);
    if (snapshot.index < index) {
      return Promise.reject(
        this.invalid(`cannot compact to ${index}: the snapshot covers only up to ${snapshot.index}`),
      );
    }
    const snap = plainMeta(snapshot);
    const done = this.write((s) => {
      let base = s.base;
      if (index > base.index) {
        if (index > s.last) throw this.invalid(`cannot compact to ${index}: the log ends at ${s.last}`);
        base = { index, term: this.termAt(index, this.store.log.getBinaryFast([this.group, index])) };
        this.store.kv.put(key(this.group, 'base'), base);
      }
      this.store.kv.put(key(this.group, 'snap'), snap);
      return { ...s, base, snap };
    }, false);
    // Compacted entries go in later transactions, once no read can reach them.
    void done.then(() => this.sweep(), noop);
    return done;
  }

  /** Delete entries at or before the compaction point, in bounded steps. */
  private sweep(): void {
    this.sweeper.request();
  }

  private readonly sweeper = new Sweeper(() => {
    if (this.closing || this.usable()) return null;
    let more = false;
    return this.write((s) => {
      more = this.removeRange(0, s.base.index + 1, SWEEP_KEYS);
      return s;
    }, false).then(() => more);
  });

  /** Remove this group's keys in [from, to), at most `max`; true if `max` were removed (some may remain). */
  private removeRange(from: number, to: number, max = Number.POSITIVE_INFINITY): boolean {
    const log = this.store.log;
    let removed = 0;
    while (removed < max) {
      const limit = Math.min(4096, max - removed);
      const keys = [...log.getKeys({ start: [this.group, from], end: [this.group, to], limit })];
      for (const k of keys) log.remove(k);
      removed += keys.length;
      if (keys.length < limit) return false;
    }
    return true;
  }

  /** One child transaction, batched by LMDB with every other group's of this turn. */
  private write(fn: (s: LogState) => LogState, counted: boolean): Promise<void> {
    let next: LogState | undefined;
    let txnId = -1;
    const log = this.store.log;
    const txn = log
      .childTransaction(() => {
        txnId = log.getWriteTxnId();
        next = fn(this.txnState);
        this.txnState = next;
      })
      .then(
        () => undefined,
        (err: unknown) => {
          if (err instanceof StorageError) throw err;
          this.store.failure ??= new StorageError(
            StorageErrorCode.WriteFailed,
            `write to ${this.store.dir} failed; the store is stopped: ${(err as Error).message}`,
            { cause: err, path: this.store.dir },
          );
          throw this.store.failure;
        },
      );
    return this.settleInOrder(txn, () => {
      if (next) this.state = next;
      if (counted) this.store.counted(txnId);
    });
  }

  private settleInOrder(op: Promise<void>, onDone: () => void): Promise<void> {
    const result = this.tail
      .then(() => op)
      .then(() => {
        const bad = this.store.failure;
        if (bad) throw bad;
        onDone();
      });
    this.tail = result.then(noop, noop);
    return result;
  }

  /** Ends this view (the store stays open): the deferred hard state is written first. */
  close(): Promise<void> {
    return this.closeView();
  }

  /** @internal */
  closeView(): Promise<void> {
    this.closing ??= (async () => {
      const h = this.store.failure ? null : this.hard.take();
      if (h) {
        await this.write((s) => {
          this.store.kv.put(key(this.group, 'hard'), h);
          return { ...s, hard: h };
        }, false).catch(noop);
      }
      await this.tail;
      await this.snapshots.closeWriters();
      this.closed = true;
    })();
    return this.closing;
  }

  private usable(): StorageError | null {
    if (this.closing)
      return new StorageError(StorageErrorCode.Closed, `group ${this.group} of ${this.store.dir} is closed`);
    return this.store.checkUsable();
  }

  private invalid(what: string): StorageError {
    return new StorageError(
      StorageErrorCode.InvalidArgument,
      `${this.store.dir} group ${this.group}: ${what}`,
      {
        path: this.store.dir,
      },
    );
  }

  private corrupt(what: string): StorageError {
    return new StorageError(
      StorageErrorCode.Corrupt,
      `${this.store.dir} group ${this.group} is damaged: ${what}`,
      {
        path: this.store.dir,
      },
    );
  }
}
