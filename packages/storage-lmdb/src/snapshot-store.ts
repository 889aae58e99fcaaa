import type { SnapshotMeta, SnapshotStore, SnapshotWriter } from '@quorate/raft';
import type { Database } from 'lmdb';
import { crc32, isSnapshotMeta, plainMeta } from './codec.js';
import { StorageError, StorageErrorCode } from './errors.js';

/** The key, in the `state` database, of the latest committed snapshot's record. */
export const SNAPSHOT_RECORD = 'snapshot';

interface SnapshotRecord {
  /** Chunks live under keys [id, 0..chunks). Ids grow; a new writer never reuses one. */
  readonly id: number;
  readonly meta: SnapshotMeta;
  readonly chunks: number;
  readonly bytes: number;
}

const isRecord = (x: unknown): x is SnapshotRecord => {
  const r = x as Partial<SnapshotRecord> | undefined;
  return (
    typeof r === 'object' &&
    r !== null &&
    Number.isSafeInteger(r.id) &&
    Number.isSafeInteger(r.chunks) &&
    Number.isSafeInteger(r.bytes) &&
    isSnapshotMeta(r.meta)
  );
};

/**
 * Snapshots in the store's LMDB environment. A writer streams chunks (of
 * `chunkBytes`, each with a CRC-32) under a fresh id; nothing is visible until `commit`,
 * which in one durable transaction points the record at the new id and deletes the
 * previous snapshot's chunks. A crash mid-write leaves the previous snapshot as it was;
 * the orphaned chunks are deleted at the next open. A reader holds an LMDB read
 * transaction, so a snapshot replaced while it is being streamed stays readable to it.
 */
export class LmdbSnapshotStore implements SnapshotStore {
  private current: SnapshotRecord | null;
  private readonly writers = new Set<{ abort(): Promise<void> }>();

  /** Where this store's record lives in `kv`. */
  private readonly recordKey: string;
  /** Hands out chunk ids; shared by every store over the same chunk database. */
  private readonly allocate: () => number;

  /**
   * @internal Built by `LmdbStorage.open` (use `storage.snapshots`) and by `LmdbGroupStore`
   * (one per group: `scope` names the group's record and shares the id counter, since
   * every group's chunks live in one database).
   */
  constructor(
    private readonly kv: Database<unknown, string>,
    private readonly chunks: Database<Buffer, [number, number]>,
    private readonly dir: string,
    private readonly usable: () => StorageError | null,
    private readonly chunkBytes = 1 << 20,
    scope?: { recordKey: string; nextId: () => number },
  ) {
    this.recordKey = scope?.recordKey ?? SNAPSHOT_RECORD;
    const rec = kv.get(this.recordKey);
    if (rec !== undefined && !isRecord(rec)) {
      throw new StorageError(
        StorageErrorCode.Corrupt,
        `${dir} has an unreadable snapshot record. Restore it from a backup, or move it aside and let the node catch up from its peers`,
        { path: dir },
      );
    }
    this.current = rec ?? null;
    if (scope) this.allocate = scope.nextId;
    else {
      let maxId = this.current?.id ?? 0;
      for (const k of chunks.getKeys({ reverse: true, limit: 1 })) maxId = Math.max(maxId, k[0]);
      let next = maxId + 1;
      this.allocate = () => next++;
    }
    if (!(this.chunkBytes >= 1)) {
      throw new StorageError(
        StorageErrorCode.InvalidArgument,
        `snapshotChunkBytes must be positive (got ${chunkBytes})`,
      );
    }
  }

  latest(): SnapshotMeta | null {
    return this.current?.meta ?? null;
  }

  create(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const bad = this.usable();
    if (bad) return Promise.reject(bad);
    const id = this.allocate();
    const snapMeta = plainMeta(meta);
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let count = 0;
    let bytes = 0;
    let state: 'open' | 'committing' | 'done' = 'open';
    const closedError = () =>
      new StorageError(
        StorageErrorCode.InvalidArgument,
        `the snapshot writer (${meta.term}/${meta.index}) is closed`,
      );

    // Store `n` buffered bytes as the next chunk.
    const flush = async (n: number): Promise<void> => {
      const value = Buffer.allocUnsafe(4 + n);
      let at = 4;
      while (at < 4 + n) {
        const head = pending[0]!;
        const take = Math.min(head.byteLength, 4 + n - at);
        value.set(head.subarray(0, take), at);
        at += take;
        if (take === head.byteLength) pending.shift();
        else pending[0] = head.subarray(take);
      }
      pendingBytes -= n;
      value.writeUInt32LE(crc32(value.subarray(4)), 0);
      await this.chunks.put([id, count++], value);
      bytes += n;
    };
    const dropChunks = () =>
      this.chunks.transaction(() => {
        for (const k of [...this.chunks.getKeys({ start: [id, 0], end: [id + 1] })]) this.chunks.remove(k);
      });

    const writer = {
      write: async (chunk: Uint8Array): Promise<void> => {
        if (state !== 'open') throw closedError();
        const bad = this.usable();
        if (bad) throw bad;
        pending.push(chunk.slice());
        pendingBytes += chunk.byteLength;
        while (pendingBytes >= this.chunkBytes) await flush(this.chunkBytes);
      },
      commit: async (): Promise<void> => {
        if (state !== 'open') {
          if (state === 'done') return;
          throw closedError();
        }
        state = 'committing';
        try {
          const bad = this.usable();
          if (bad) throw bad;
          if (pendingBytes > 0) await flush(pendingBytes);
          const record: SnapshotRecord = { id, meta: snapMeta, chunks: count, bytes };
          await this.kv.childTransaction(() => {
            const prev = this.kv.get(this.recordKey) as SnapshotRecord | undefined;
            this.kv.put(this.recordKey, record);
            if (prev && prev.id !== id) {
              const end = [prev.id + 1] as unknown as [number, number];
              for (const k of [...this.chunks.getKeys({ start: [prev.id, 0], end })]) this.chunks.remove(k);
            }
          });
          this.current = record;
          state = 'done';
          this.writers.delete(writer);
        } catch (err) {
          state = 'open';
          throw err;
        }
      },
      abort: async (): Promise<void> => {
        if (state === 'done') return;
        state = 'done';
        this.writers.delete(writer);
        pending.length = 0;
        await dropChunks().catch(() => {});
      },
    };
    this.writers.add(writer);
    return Promise.resolve(writer);
  }

  async *read(meta: SnapshotMeta): AsyncIterable<Uint8Array> {
    const bad = this.usable();
    if (bad) throw bad;
    // One read transaction for the whole stream: a commit meanwhile does not disturb it.
    const transaction = this.kv.useReadTransaction();
    try {
      const rec = this.kv.get(this.recordKey, { transaction });
      if (!isRecord(rec) || rec.meta.index !== meta.index || rec.meta.term !== meta.term) {
        throw new StorageError(
          StorageErrorCode.SnapshotUnavailable,
          `snapshot ${meta.term}/${meta.index} is not the latest in ${this.dir} (${isRecord(rec) ? `${rec.meta.term}/${rec.meta.index}` : 'none'})`,
          { path: this.dir },
        );
      }
      let bytes = 0;
      for (let n = 0; n < rec.chunks; n++) {
        const v = this.chunks.get([rec.id, n], { transaction });
        if (!v || v.length < 4 || v.readUInt32LE(0) !== crc32(v.subarray(4))) {
          throw new StorageError(
            StorageErrorCode.Corrupt,
            `${this.dir}: chunk ${n} of snapshot ${meta.term}/${meta.index} is ${v ? 'damaged' : 'missing'}`,
            { path: this.dir },
          );
        }
        bytes += v.length - 4;
        yield v.subarray(4);
      }
      if (bytes !== rec.bytes) {
        throw new StorageError(
          StorageErrorCode.Corrupt,
          `${this.dir}: snapshot ${meta.term}/${meta.index} holds ${bytes} bytes, its record says ${rec.bytes}`,
          { path: this.dir },
        );
      }
    } finally {
      transaction.done();
    }
  }

  /** @internal Abort writers left open (on close). */
  async closeWriters(): Promise<void> {
    await Promise.all([...this.writers].map((w) => w.abort()));
  }
}
