import {
  closeSync,
  constants,
  existsSync,
  fsync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
  writev,
} from 'node:fs';
import { join } from 'node:path';
import {
  CompactedError,
  type Entry,
  type EntryType,
  entrySize,
  type HardState,
  type PersistBatch,
  type SnapshotMeta,
  UnavailableError,
} from '@quorate/raft';
import { HeldHardState, InOrder } from './batch.js';
import { crc32, isHardState, isPoint, isSnapshotMeta, plainHardState, plainMeta } from './codec.js';
import { StorageError, StorageErrorCode } from './errors.js';

/**
 * The write-ahead log: the Raft log and hard state of one store as records appended to
 * segment files, each write made durable by one `O_DSYNC` write (one device flush, where
 * an LMDB commit needs two: its pages, then its meta page).
 *
 * Files: `<dir>/wal/<16 hex digits>.wal`, numbered in order. A record is
 *
 *   0..3  length of the body (u32 LE)
 *   4..7  CRC-32 of the body
 *   8..   body: a type byte, then
 *         entry (1):   entry type (u8), index (f64 LE), term (f64 LE), payload
 *         hard (2), snap (3), compact (4), head (5): JSON
 *         commit (6): nothing more; it ends the records of one write
 *
 * - `hard` is a new hard state; `snap` replaces the log by a snapshot (the log restarts
 *   after it); `compact` moves the compaction point; `head` opens every segment with the
 *   hard state, compaction point and snapshot as of its creation, so that older segments
 *   can be deleted once every entry in them is compacted.
 * - Replay reads the records in order; an entry at or before the last index truncates the
 *   log there first (a conflicting suffix). Zeros end a segment (space written ahead of
 *   the log, so that a write never grows the file). A write's records count only once its
 *   commit record is read, so a batch is replayed whole or not at all. A record that runs
 *   past the file or has a sector of zeros ends the last segment (a write a crash
 *   interrupted, never acknowledged: what follows the last whole write is wiped with
 *   zeros); any other bad record is damage, and the store refuses to open.
 * - The log is indexed in memory (term and place of each entry); recent entries are kept
 *   decoded, older ones are read back from their segment (synchronously: the page cache
 *   serves them, as LMDB's map would).
 */

const HEADER = 8;
const ENTRY_BODY = 18;
const T_ENTRY = 1;
const T_HARD = 2;
const T_SNAP = 3;
const T_COMPACT = 4;
const T_HEAD = 5;
/** Ends the records of one write (a batch, a compaction): replay takes them all or none. */
const T_COMMIT = 6;
/** The last record of every write: its type byte alone. */
const COMMIT = (() => {
  const b = Buffer.allocUnsafe(HEADER + 1);
  b.writeUInt32LE(1, 0);
  b[HEADER] = T_COMMIT;
  b.writeUInt32LE(crc32(b.subarray(HEADER)), 4);
  return b;
})();
/** A torn write leaves whole sectors of zeros (the space it wrote into was zeroed first). */
const SECTOR = 512;
const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;
/** Zeros are written ahead of the log in stretches of 256 KiB, doubling up to 8 MiB. */
const ALLOCATE_MIN = 256 * 1024;
const ALLOCATE_MAX = 8 * 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);

export interface WalState {
  readonly base: { readonly index: number; readonly term: number };
  readonly last: number;
  readonly hard: HardState;
  readonly snap: SnapshotMeta;
}

export interface WalOptions {
  /** Skip the `O_DSYNC` flag and the directory fsyncs (benchmarks only). */
  noSync: boolean;
  /** A segment is closed once it holds this many bytes (default 64 MiB). */
  segmentBytes?: number;
  /** Decoded entries kept in memory, in payload bytes (default 64 MiB; older ones are read back). */
  cacheBytes?: number;
}

interface Segment {
  readonly seq: number;
  readonly path: string;
  /** The highest entry index written in it (0 for none): deletable once compacted past. */
  maxIndex: number;
  /** A read descriptor, opened on first use. */
  fd: number | null;
}

/** One batch of encoded records, placed in a segment when it is queued. */
interface Queued {
  readonly seg: Segment;
  readonly pos: number;
  readonly buf: Buffer;
  /** This write opens `seg` (a new file: its directory entry must be made durable). */
  readonly opens: boolean;
  /** A persisted batch (counted in `syncs`), not a compaction or a close. */
  readonly counts: boolean;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

const noop = () => {};

export class Wal {
  /** As of the last resolved write: what reads see. */
  private state: WalState;
  /** As of the last queued write. */
  private next: WalState;
  private readonly hard: HeldHardState;
  private readonly segments: Segment[];
  /** Where the next queued record goes. */
  private writeSeg: Segment;
  private writePos: number;
  private writeFd: number;
  private writeFdSeg: Segment;
  private readonly segmentBytes: number;
  private readonly cacheBytes: number;

  // The index, for entries from `first` on: position p holds index first + p.
  private first: number;
  private readonly terms: number[] = [];
  private readonly segOf: Segment[] = [];
  private readonly offs: number[] = [];
  private readonly lens: number[] = [];
  private readonly cache: (Entry | undefined)[] = [];
  private cached = 0;
  private cacheFrom = 0;

  /** Bytes of the current segment known to be on disk (zeros where nothing is written yet). */
  private allocated: number;
  private allocating: Promise<void> | null = null;
  private queue: Queued[] = [];
  private flushing = false;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | null = null;
  private failure: StorageError | null = null;
  /** Settles queued operations in call order. */
  private readonly inOrder = new InOrder(() => this.failure);

  /** Persisted batches written (a held-back commit-only batch is not one). */
  writes = 0;
  /** `O_DSYNC` writes that carried them (batches queued together share one). */
  syncs = 0;
  /** Bytes of their entry records (record header, entry header, payload). */
  bytesWritten = 0;

  private constructor(
    private readonly dir: string,
    private readonly opts: WalOptions,
    replayed: Replayed,
  ) {
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.state = replayed.state;
    this.next = replayed.state;
    this.hard = new HeldHardState(replayed.state.hard);
    this.segments = replayed.segments;
    this.writeSeg = this.segments[this.segments.length - 1]!;
    this.writePos = replayed.end;
    this.writeFdSeg = this.writeSeg;
    this.writeFd = openSync(this.writeSeg.path, this.writeFlags(false));
    this.allocated = replayed.size;
    this.first = replayed.state.base.index + 1;
    for (const e of replayed.index) {
      this.terms.push(e.term);
      this.segOf.push(e.seg);
      this.offs.push(e.off);
      this.lens.push(e.len);
      this.cache.push(undefined);
    }
  }

  /**
   * Open the log in `dir` (its `wal` folder), replaying it; a missing folder starts a new
   * log with `initial` as its first head. Damage is a {@link StorageError} `Corrupt`.
   */
  static open(dir: string, opts: WalOptions, initial: WalState): Wal {
    const walDir = join(dir, 'wal');
    if (!existsSync(walDir)) mkdirSync(walDir, { recursive: true });
    if (!readdirSync(walDir).some((n) => SEGMENT_NAME.test(n))) {
      // The first segment appears whole or not at all: written aside, then renamed.
      const tmp = join(walDir, 'first.tmp');
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
      try {
        writeAllSync(fd, encodeJson(T_HEAD, headOf(initial)), 0);
        if (!opts.noSync) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, segmentPath(walDir, 1));
      if (!opts.noSync) syncDir(walDir);
    }
    return new Wal(dir, opts, replay(dir, walDir));
  }

  // ------------------------------------------------------------------ reads

  current(): WalState {
    return this.state;
  }

  term(index: number): number {
    const s = this.state;
    if (index === s.base.index) return s.base.term;
    if (index < s.base.index) throw new CompactedError(index, s.base.index + 1);
    if (index > s.last) throw new UnavailableError(index, s.last);
    const t = this.terms[index - this.first];
    if (t === undefined) throw this.corrupt(`entry ${index} is missing from the index`);
    return t;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const s = this.state;
    if (lo <= s.base.index) throw new CompactedError(lo, s.base.index + 1);
    if (hi > s.last + 1) throw new UnavailableError(hi - 1, s.last);
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const p = i - this.first;
      const e = this.cache[p] ?? this.readRun(p, hi - this.first, maxBytes - size, out.length === 0);
      if (!e) break;
      if (Array.isArray(e)) {
        for (const x of e) {
          size += entrySize(x);
          if (size > maxBytes && out.length > 0) return out;
          out.push(x);
        }
        i += e.length - 1;
        continue;
      }
      size += entrySize(e);
      if (size > maxBytes && out.length > 0) return out;
      out.push(e);
    }
    return out;
  }

  /**
   * Read entries from position `p` up to `end` from their segment: the run of them stored
   * one after another in one file (one read), about `budget` bytes (at least one).
   */
  private readRun(p: number, end: number, budget: number, atLeastOne: boolean): Entry[] | null {
    const seg = this.segOf[p];
    if (!seg) throw this.corrupt(`entry ${this.first + p} is missing from the index`);
    let q = p + 1;
    let bytes = HEADER + this.lens[p]!;
    while (
      q < end &&
      this.segOf[q] === seg &&
      this.offs[q] === this.offs[q - 1]! + HEADER + this.lens[q - 1]! &&
      this.cache[q] === undefined &&
      bytes < budget
    ) {
      bytes += HEADER + this.lens[q]!;
      q++;
    }
    if (!atLeastOne && budget <= 0) return null;
    const buf = Buffer.allocUnsafe(bytes);
    const got = readSync(this.readFd(seg), buf, 0, bytes, this.offs[p]!);
    if (got !== bytes)
      throw this.corrupt(`${seg.path} is shorter than its index says (entry ${this.first + p})`);
    const out: Entry[] = [];
    let at = 0;
    for (let k = p; k < q; k++) {
      const index = this.first + k;
      const len = this.lens[k]!;
      const body = buf.subarray(at + HEADER, at + HEADER + len);
      if (crc32(body) !== buf.readUInt32LE(at + 4) || body[0] !== T_ENTRY) {
        throw this.corrupt(`entry ${index} in ${seg.path} fails its checksum`);
      }
      const e = decodeEntryBody(body);
      if (e.index !== index || e.term !== this.terms[k]) {
        throw this.corrupt(`entry ${index} in ${seg.path} is not the entry the index names`);
      }
      out.push(e);
      at += HEADER + len;
    }
    return out;
  }

  private readFd(seg: Segment): number {
    if (seg.fd === null) {
      try {
        seg.fd = openSync(seg.path, 'r');
      } catch (err) {
        throw this.corrupt(`${seg.path} cannot be read: ${(err as Error).message}`);
      }
    }
    return seg.fd;
  }

  // ------------------------------------------------------------------ writes

  /** Queue a batch; resolves once durable, in call order. */
  persist(batch: PersistBatch): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const held = this.hard.hold(batch);
    if (held) {
      return this.settle(Promise.resolve(), () => {
        this.state = { ...this.state, hard: held };
      });
    }
    const hard = this.hard.forWrite(batch);
    let s = this.next;
    const parts: Buffer[] = [];
    if (batch.snapshot) {
      const snap = plainMeta(batch.snapshot);
      parts.push(encodeJson(T_SNAP, snap));
      s = { base: { index: snap.index, term: snap.term }, last: snap.index, hard: s.hard, snap };
    }
    const { entries } = batch;
    if (entries.length > 0) {
      const from = entries[0]!.index;
      if (from <= s.base.index) {
        return Promise.reject(
          this.invalid(`cannot append at ${from}: the log starts at ${s.base.index + 1}`),
        );
      }
      if (from > s.last + 1) {
        return Promise.reject(this.invalid(`cannot append at ${from}: the log ends at ${s.last} (a gap)`));
      }
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== from + i) {
          return Promise.reject(
            this.invalid(`entries are not contiguous: ${entries[i]!.index} follows ${from + i - 1}`),
          );
        }
      }
      s = { ...s, last: entries[entries.length - 1]!.index };
    }
    if (hard) {
      parts.push(encodeJson(T_HARD, hard));
      s = { ...s, hard };
    }
    // One buffer for the whole batch: entries first, then the hard state (a crash between
    // them cannot happen: the write is one record stream, replayed up to its last whole record).
    let size = COMMIT.length;
    for (const p of parts) size += p.length;
    for (const e of entries) size += HEADER + ENTRY_BODY + e.data.byteLength;
    const { seg, pos, opens, head } = this.place(size);
    const buf = Buffer.allocUnsafe(size + (head ? head.length : 0));
    let at = 0;
    if (head) {
      head.copy(buf, 0);
      at = head.length;
    }
    // The snapshot record comes before the entries it precedes.
    let pi = 0;
    if (batch.snapshot) at = copyPart(buf, parts[pi++]!, at);
    const entryAt: number[] = [];
    for (const e of entries) {
      entryAt.push(at);
      at = encodeEntryRecord(buf, at, e);
    }
    while (pi < parts.length) at = copyPart(buf, parts[pi++]!, at);
    at = copyPart(buf, COMMIT, at);

    this.next = s;
    let bytes = 0;
    for (const e of entries) bytes += HEADER + ENTRY_BODY + e.data.byteLength;
    const done = this.enqueue(seg, pos, buf, opens, true);
    const target = s;
    if (entries.length > 0) seg.maxIndex = Math.max(seg.maxIndex, target.last);
    return this.settle(done, () => {
      // The index follows the resolved writes, in order: reads see what is durable.
      if (batch.snapshot) this.resetIndex(target.base.index + 1);
      if (entries.length > 0) {
        this.truncateIndex(entries[0]!.index);
        for (let k = 0; k < entries.length; k++) {
          const e = entries[k]!;
          this.terms.push(e.term);
          this.segOf.push(seg);
          this.offs.push(pos + entryAt[k]!);
          this.lens.push(ENTRY_BODY + e.data.byteLength);
          // Kept as a view of this batch's own record buffer, never the caller's bytes: a
          // caller's payload may be a small view of a large buffer (an encoder's shared
          // one, a network read), which the cache would otherwise keep whole.
          const at = entryAt[k]! + HEADER + ENTRY_BODY;
          this.cache.push({
            index: e.index,
            term: e.term,
            type: e.type,
            data: buf.subarray(at, at + e.data.byteLength),
          });
          this.cached += e.data.byteLength;
        }
      }
      this.state = this.foldHeld(target);
      this.writes++;
      this.bytesWritten += bytes;
      this.evict();
      // A snapshot from the leader replaced the log: the segments before it hold nothing needed.
      if (batch.snapshot) this.deleteCompacted();
    });
  }

  /** Move the compaction point to `index` (kept: `term(index)`), recording `snap`. */
  compact(index: number, snapshot: SnapshotMeta): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const s = this.next;
    let base = s.base;
    if (index > base.index) {
      if (index > s.last)
        return Promise.reject(this.invalid(`cannot compact to ${index}: the log ends at ${s.last}`));
      const t = this.terms[index - this.first];
      if (t === undefined) return Promise.reject(this.corrupt(`entry ${index} is missing from the index`));
      base = { index, term: t };
    }
    const snap = plainMeta(snapshot);
    const rec = Buffer.concat([encodeJson(T_COMPACT, { base, snap }), COMMIT]);
    const { seg, pos, opens, head } = this.place(rec.length);
    const buf = head ? Buffer.concat([head, rec]) : rec;
    const next: WalState = { ...s, base, snap };
    this.next = next;
    const done = this.enqueue(seg, pos, buf, opens);
    return this.settle(done, () => {
      this.state = this.foldHeld({ ...this.state, base: next.base, snap: next.snap });
      this.dropBefore(next.base.index + 1);
      this.deleteCompacted();
    });
  }

  /** Wait for every queued write, write a held-back hard state, close the files. */
  async close(): Promise<void> {
    const h = this.failure ? null : this.hard.take();
    if (h) {
      const rec = Buffer.concat([encodeJson(T_HARD, h), COMMIT]);
      const { seg, pos, opens, head } = this.place(rec.length);
      this.next = { ...this.next, hard: h };
      const done = this.enqueue(seg, pos, head ? Buffer.concat([head, rec]) : rec, opens);
      await this.settle(done, () => {
        this.state = { ...this.state, hard: h };
      }).catch(noop);
    }
    await this.inOrder.idle();
    await this.idle;
    for (const seg of this.segments) {
      if (seg.fd !== null) closeSync(seg.fd);
      seg.fd = null;
    }
    closeSync(this.writeFd);
  }

  /** The state `s` with a hard state held back since it was queued (only the commit moved). */
  private foldHeld(s: WalState): WalState {
    const cur = this.state.hard;
    return cur.term === s.hard.term && cur.vote === s.hard.vote && cur.commit > s.hard.commit
      ? { ...s, hard: cur }
      : s;
  }

  /**
   * Where `size` bytes of records go: the current segment, or a new one (opened by a head
   * record, returned to be written first) once the current one is full.
   */
  private place(size: number): { seg: Segment; pos: number; opens: boolean; head: Buffer | null } {
    if (this.writePos > 0 && this.writePos + size > this.segmentBytes) {
      const prev = this.writeSeg;
      const seg: Segment = {
        seq: prev.seq + 1,
        path: segmentPath(join(this.dir, 'wal'), prev.seq + 1),
        maxIndex: 0,
        fd: null,
      };
      // Entries at or after the first index are still in the log: a new segment's head
      // says where the log starts, and the older segments keep what it does not hold.
      const head = encodeJson(T_HEAD, headOf(this.next));
      this.segments.push(seg);
      this.writeSeg = seg;
      this.writePos = head.length + size;
      return { seg, pos: 0, opens: true, head };
    }
    const pos = this.writePos;
    this.writePos += size;
    return { seg: this.writeSeg, pos, opens: false, head: null };
  }

  private enqueue(seg: Segment, pos: number, buf: Buffer, opens: boolean, counts = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ seg, pos, buf, opens, counts, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Write what is queued, in order: one `O_DSYNC` write per run of records in one segment. */
  private async flush(): Promise<void> {
    this.flushing = true;
    this.idle = new Promise((r) => {
      this.idleResolve = r;
    });
    let run: Queued[] = [];
    try {
      while (this.queue.length > 0) {
        const q = this.queue;
        let n = 1;
        // Records queued together in one segment, back to back: one write.
        while (n < q.length && q[n]!.seg === q[0]!.seg && !q[n]!.opens) n++;
        run = q.splice(0, n);
        const first = run[0]!;
        if (first.opens) await this.openSegment(first.seg);
        if (this.failure) throw this.failure;
        let end = first.pos;
        for (const r of run) end += r.buf.length;
        // Written only over zeros already on disk: a write that grows the file would make
        // the flush commit the file system's journal too.
        if (end > this.allocated) await this.allocate(end);
        await writevAt(
          this.writeFd,
          run.map((r) => r.buf),
          first.pos,
        );
        this.preallocate(end);
        if (first.opens && !this.opts.noSync) await syncDirAsync(join(this.dir, 'wal'));
        if (!this.opts.noSync && run.some((r) => r.counts)) this.syncs++;
        for (const r of run) r.resolve();
        run = [];
      }
    } catch (err) {
      this.failure ??= new StorageError(
        StorageErrorCode.WriteFailed,
        `write to ${join(this.dir, 'wal')} failed; the store is stopped: ${(err as Error).message}`,
        { cause: err, path: this.dir },
      );
      for (const r of [...run, ...this.queue.splice(0)]) r.reject(this.failure);
    } finally {
      this.flushing = false;
      this.idleResolve?.();
    }
  }

  private async openSegment(seg: Segment): Promise<void> {
    // The old segment's zeros are written (or abandoned) before its descriptor goes.
    if (this.allocating) await this.allocating;
    const fd = openSync(seg.path, this.writeFlags(true));
    const old = this.writeFd;
    this.writeFd = fd;
    this.writeFdSeg = seg;
    this.allocated = 0;
    closeSync(old);
  }

  /** Make sure bytes up to `end` of the current segment are zeros on disk (waits for them). */
  private async allocate(end: number): Promise<void> {
    while (end > this.allocated) {
      if (!this.allocating) this.allocating = this.extend(end);
      await this.allocating;
    }
  }

  /** Zero the next stretch of the segment ahead of the writes, in the background. */
  private preallocate(end: number): void {
    if (this.allocating || this.allocated >= this.segmentBytes) return;
    if (this.allocated - end > Math.min(this.allocated, ALLOCATE_MAX) / 2) return;
    this.allocating = this.extend(end);
    // A failure here is met again by the next write that needs the space.
    this.allocating.catch(noop);
  }

  /**
   * Write zeros from the allocated end: as much again as is allocated (256 KiB to 8 MiB at
   * a time), up to the segment size, and at least to `end`. Through the `O_DSYNC`
   * descriptor: durable, size included, when it resolves. Writes below the allocated end
   * go on meanwhile; none reaches the stretch being zeroed (they wait for it).
   */
  private extend(end: number): Promise<void> {
    const fd = this.writeFd;
    const seg = this.writeFdSeg;
    const from = this.allocated;
    const step = Math.max(ALLOCATE_MIN, Math.min(ALLOCATE_MAX, from));
    const to = Math.max(end, Math.min(this.segmentBytes, from + step));
    const run = async () => {
      try {
        for (let at = from; at < to; at += ZEROS.length) {
          await writevAt(fd, [ZEROS.subarray(0, Math.min(ZEROS.length, to - at))], at);
        }
        if (this.writeFdSeg === seg) this.allocated = Math.max(this.allocated, to);
      } finally {
        this.allocating = null;
      }
    };
    return run();
  }

  private writeFlags(create: boolean): number {
    let f = constants.O_WRONLY;
    if (create) f |= constants.O_CREAT | constants.O_EXCL;
    if (!this.opts.noSync) f |= constants.O_DSYNC;
    return f;
  }

  private settle(op: Promise<void>, onDone: () => void): Promise<void> {
    return this.inOrder.settle(op, onDone);
  }

  // ------------------------------------------------------------------ the index

  private resetIndex(first: number): void {
    this.first = first;
    this.terms.length = 0;
    this.segOf.length = 0;
    this.offs.length = 0;
    this.lens.length = 0;
    this.cache.length = 0;
    this.cached = 0;
    this.cacheFrom = 0;
  }

  /** Drop positions from index `from` on (a conflicting suffix). */
  private truncateIndex(from: number): void {
    const p = from - this.first;
    if (p >= this.terms.length) return;
    for (let k = p; k < this.cache.length; k++) {
      const e = this.cache[k];
      if (e) this.cached -= e.data.byteLength;
    }
    this.terms.length = p;
    this.segOf.length = p;
    this.offs.length = p;
    this.lens.length = p;
    this.cache.length = p;
    if (this.cacheFrom > p) this.cacheFrom = p;
  }

  /** Drop positions before index `first` (compacted). */
  private dropBefore(first: number): void {
    const n = first - this.first;
    if (n <= 0) return;
    for (let k = 0; k < Math.min(n, this.cache.length); k++) {
      const e = this.cache[k];
      if (e) this.cached -= e.data.byteLength;
    }
    this.terms.splice(0, n);
    this.segOf.splice(0, n);
    this.offs.splice(0, n);
    this.lens.splice(0, n);
    this.cache.splice(0, n);
    this.cacheFrom = Math.max(0, this.cacheFrom - n);
    this.first = first;
  }

  /** Forget decoded entries, oldest first, past the cache budget (only durable ones). */
  private evict(): void {
    const durable = this.state.last - this.first;
    while (this.cached > this.cacheBytes && this.cacheFrom <= durable && this.cacheFrom < this.cache.length) {
      const e = this.cache[this.cacheFrom];
      if (e) {
        this.cached -= e.data.byteLength;
        this.cache[this.cacheFrom] = undefined;
      }
      this.cacheFrom++;
    }
  }

  /** Delete the oldest segments once every entry in them is compacted (never the current one). */
  private deleteCompacted(): void {
    const base = this.state.base.index;
    while (this.segments.length > 1) {
      const seg = this.segments[0]!;
      if (seg === this.writeSeg || seg === this.writeFdSeg || seg.maxIndex > base) break;
      // Entries still indexed there (none should be) keep it.
      if (this.segOf.length > 0 && this.segOf[0] === seg) break;
      this.segments.shift();
      if (seg.fd !== null) closeSync(seg.fd);
      seg.fd = null;
      try {
        unlinkSync(seg.path);
      } catch {
        // Gone already, or not removable now: replay skips what it holds either way.
      }
    }
  }

  private invalid(what: string): StorageError {
    return new StorageError(StorageErrorCode.InvalidArgument, `${this.dir}: ${what}`, { path: this.dir });
  }

  private corrupt(what: string): StorageError {
    return corruptError(this.dir, what);
  }
}

// ---------------------------------------------------------------------- records

function encodeEntryRecord(buf: Buffer, at: number, e: Entry): number {
  const len = ENTRY_BODY + e.data.byteLength;
  const b = at + HEADER;
  buf.writeUInt32LE(len, at);
  buf[b] = T_ENTRY;
  buf[b + 1] = e.type;
  buf.writeDoubleLE(e.index, b + 2);
  buf.writeDoubleLE(e.term, b + 10);
  buf.set(e.data, b + ENTRY_BODY);
  buf.writeUInt32LE(crc32(buf.subarray(b, b + len)), at + 4);
  return b + len;
}

function decodeEntryBody(body: Buffer): Entry {
  return {
    index: body.readDoubleLE(2),
    term: body.readDoubleLE(10),
    type: body[1]! as EntryType,
    // A copy: the caller owns it, and the read buffer may hold other entries.
    data: Uint8Array.prototype.slice.call(body, ENTRY_BODY),
  };
}

function encodeJson(type: number, value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const buf = Buffer.allocUnsafe(HEADER + 1 + json.length);
  buf.writeUInt32LE(1 + json.length, 0);
  buf[HEADER] = type;
  json.copy(buf, HEADER + 1);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 4);
  return buf;
}

function copyPart(buf: Buffer, part: Buffer, at: number): number {
  part.copy(buf, at);
  return at + part.length;
}

function headOf(s: WalState): unknown {
  return {
    hard: plainHardState(s.hard),
    base: { index: s.base.index, term: s.base.term },
    snap: plainMeta(s.snap),
  };
}

// ---------------------------------------------------------------------- replay

interface IndexedEntry {
  index: number;
  term: number;
  seg: Segment;
  off: number;
  len: number;
}

interface Replayed {
  state: WalState;
  segments: Segment[];
  index: IndexedEntry[];
  /** The end of the last whole record in the last segment. */
  end: number;
  /** The size of the last segment's file (zeros after `end`). */
  size: number;
}

type Rec =
  | { t: typeof T_COMMIT }
  | { t: typeof T_ENTRY; e: IndexedEntry }
  | { t: typeof T_HARD; hard: HardState }
  | { t: typeof T_SNAP; snap: SnapshotMeta }
  | {
      t: typeof T_COMPACT | typeof T_HEAD;
      base: { index: number; term: number };
      snap: SnapshotMeta;
      hard?: HardState;
    };

function replay(dir: string, walDir: string): Replayed {
  const names = readdirSync(walDir)
    .map((n) => SEGMENT_NAME.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number.parseInt(m[1]!, 16))
    .sort((a, b) => a - b);
  if (names.length === 0) throw corruptError(dir, `${walDir} holds no log segment`);
  for (let i = 1; i < names.length; i++) {
    if (names[i] !== names[i - 1]! + 1) {
      throw corruptError(dir, `log segment ${names[i - 1]! + 1} is missing from ${walDir}`);
    }
  }
  const segments: Segment[] = names.map((seq) => ({
    seq,
    path: segmentPath(walDir, seq),
    maxIndex: 0,
    fd: null,
  }));
  const recs: Rec[] = [];
  let end = 0;
  let size = 0;
  for (let k = 0; k < segments.length; k++) {
    const seg = segments[k]!;
    const isLast = k === segments.length - 1;
    const data = readFileSync(seg.path);
    let at = 0;
    let firstRec = true;
    /** The records of the write being read, kept once its commit record is read. */
    let pending: Rec[] = [];
    let pendingMax = 0;
    /** Where the last whole write ends. */
    let committed = 0;
    for (;;) {
      if (at === data.length) break;
      // Zeros: the space written ahead of the log, not used yet. The segment ends here.
      if (data.length - at >= HEADER && data.readUInt32LE(at) === 0 && data.readUInt32LE(at + 4) === 0) {
        if (!isLast && !allZero(data, at)) {
          throw corruptError(dir, `${seg.path} is damaged at byte ${at}: records after a zeroed stretch`);
        }
        break;
      }
      const why = recordProblem(data, at);
      if (why) {
        // The last write, cut short by a crash, was never acknowledged: it ends the log.
        // It left whole sectors of zeros, or ran past the end of the file; a bad record
        // without either is damage.
        if (isLast && tornAt(data, at)) break;
        throw corruptError(dir, `${seg.path} is damaged at byte ${at}: ${why}`);
      }
      const len = data.readUInt32LE(at);
      const body = data.subarray(at + HEADER, at + HEADER + len);
      const r = parseRecord(body, seg, at);
      if (typeof r === 'string') throw corruptError(dir, `${seg.path} at byte ${at}: ${r}`);
      if (firstRec && r.t !== T_HEAD)
        throw corruptError(dir, `${seg.path} does not start with a head record`);
      at += HEADER + len;
      if (r.t === T_HEAD) {
        // A segment's head stands on its own: the state before the write it opens.
        if (!firstRec) throw corruptError(dir, `${seg.path} has a head record after its start`);
        firstRec = false;
        recs.push(r);
        committed = at;
      } else if (r.t === T_COMMIT) {
        for (const x of pending) recs.push(x);
        seg.maxIndex = Math.max(seg.maxIndex, pendingMax);
        pending = [];
        pendingMax = 0;
        committed = at;
      } else {
        if (r.t === T_ENTRY) pendingMax = Math.max(pendingMax, r.e.index);
        pending.push(r);
      }
    }
    if (pending.length > 0 && !isLast) {
      throw corruptError(dir, `${seg.path} ends inside a write (records without their commit record)`);
    }
    if (firstRec) {
      if (isLast && k > 0) {
        // A new segment whose first write a crash cut short: nothing in it was acknowledged.
        unlinkSync(seg.path);
        segments.pop();
        const prev = readFileSync(segments[k - 1]!.path);
        size = prev.length;
        end = endOfRecords(prev);
        break;
      }
      throw corruptError(dir, `${seg.path} has no head record`);
    }
    if (isLast) {
      // Records after the last whole write (an interrupted one) are dropped, and wiped.
      end = committed;
      size = data.length;
      if (!allZero(data, end)) {
        // Wipe the interrupted write, durably, before anything is appended in its place:
        // a record of it left further on must never be read as one written later.
        const fd = openSync(seg.path, 'r+');
        try {
          writeAllSync(fd, Buffer.alloc(data.length - end), end);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    }
  }
  // Pass 1: where the log starts (the last compaction point, snapshot or head).
  let base = { index: 0, term: 0 };
  let snap: SnapshotMeta | null = null;
  let hard: HardState | null = null;
  for (const r of recs) {
    if (r.t === T_SNAP) {
      base = { index: r.snap.index, term: r.snap.term };
      snap = r.snap;
    } else if (r.t === T_COMPACT || r.t === T_HEAD) {
      base = r.base;
      snap = r.snap;
      if (r.hard) hard = r.hard;
    } else if (r.t === T_HARD) hard = r.hard;
  }
  if (!snap || !hard) throw corruptError(dir, `${walDir} has no head record`);
  // Pass 2: the entries after it, a later entry at an earlier index truncating the log.
  const index: IndexedEntry[] = [];
  const first = base.index + 1;
  for (const r of recs) {
    if (r.t === T_SNAP) {
      index.length = 0;
      continue;
    }
    if (r.t !== T_ENTRY) continue;
    const i = r.e.index;
    if (i < first) continue;
    const p = i - first;
    if (p > index.length) {
      throw corruptError(dir, `its log has a gap: entry ${i} follows ${first + index.length - 1}`);
    }
    index.length = p;
    index.push(r.e);
  }
  const last = base.index + index.length;
  return { state: { base, last, hard, snap }, segments, index, end, size };
}

function allZero(data: Buffer, from: number): boolean {
  return allZeroRange(data, from, data.length);
}

/** Where the whole records of a (complete, checked) segment end: its zeros start there. */
function endOfRecords(data: Buffer): number {
  let at = 0;
  while (data.length - at >= HEADER) {
    const len = data.readUInt32LE(at);
    if (len === 0) break;
    at += HEADER + len;
  }
  return at;
}

function recordProblem(data: Buffer, at: number): string | null {
  if (data.length - at < HEADER) return 'a record header cut short';
  const len = data.readUInt32LE(at);
  if (len === 0) return 'an empty record';
  if (len > data.length - at - HEADER) return 'a record cut short';
  const body = data.subarray(at + HEADER, at + HEADER + len);
  if (crc32(body) !== data.readUInt32LE(at + 4)) return 'a record fails its checksum';
  return null;
}

/**
 * Whether the bad record at `at` is a write a crash cut short: its length runs past the
 * end of the file, or its bytes in some 512-byte sector are all zeros (a sector the write
 * never reached: every write lands on space zeroed beforehand, and a sector is written
 * whole or not at all). A bad record without either is damage.
 */
function tornAt(data: Buffer, at: number): boolean {
  if (data.length - at < HEADER) return true;
  const end = at + HEADER + data.readUInt32LE(at);
  if (end > data.length) return true;
  for (let from = at; from < end; ) {
    const to = Math.min(end, (Math.floor(from / SECTOR) + 1) * SECTOR);
    if (allZeroRange(data, from, to)) return true;
    from = to;
  }
  return false;
}

function allZeroRange(data: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (data[i] !== 0) return false;
  return true;
}

function parseRecord(body: Buffer, seg: Segment, at: number): Rec | string {
  const t = body[0];
  if (t === T_ENTRY) {
    if (body.length < ENTRY_BODY) return 'an entry record shorter than its header';
    const index = body.readDoubleLE(2);
    const term = body.readDoubleLE(10);
    if (!Number.isSafeInteger(index) || index < 1 || !Number.isSafeInteger(term) || term < 0) {
      return 'an entry record with an impossible index or term';
    }
    return { t: T_ENTRY, e: { index, term, seg, off: at, len: body.length } };
  }
  if (t === T_COMMIT) return body.length === 1 ? { t: T_COMMIT } : 'a commit record with a body';
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(body.subarray(1).toString('utf8')) as Record<string, unknown>;
  } catch {
    return `an unreadable record of type ${t}`;
  }
  if (t === T_HARD) return isHardState(v) ? { t, hard: plainHardState(v) } : 'an unreadable hard state';
  if (t === T_SNAP) return isSnapshotMeta(v) ? { t, snap: plainMeta(v) } : 'an unreadable snapshot record';
  if (t === T_COMPACT || t === T_HEAD) {
    if (!isPoint(v.base) || !isSnapshotMeta(v.snap)) return 'an unreadable compaction record';
    if (t === T_HEAD && !isHardState(v.hard)) return 'an unreadable head record';
    return {
      t,
      base: { index: v.base.index, term: v.base.term },
      snap: plainMeta(v.snap),
      ...(t === T_HEAD ? { hard: plainHardState(v.hard as HardState) } : {}),
    };
  }
  return `a record of unknown type ${t}`;
}

// ---------------------------------------------------------------------- files

function segmentPath(walDir: string, seq: number): string {
  return join(walDir, `${seq.toString(16).padStart(16, '0')}.wal`);
}

function writeAllSync(fd: number, buf: Buffer, pos: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, pos + done);
}

/** Write `bufs` at `pos`, whole (a short write continues where it stopped). */
async function writevAt(fd: number, bufs: Buffer[], pos: number): Promise<void> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let written = await new Promise<number>((resolve, reject) =>
    writev(fd, bufs, pos, (err, n) => (err ? reject(err) : resolve(n))),
  );
  if (written === total) return;
  const all = Buffer.concat(bufs);
  while (written < total) {
    const rest = all.subarray(written);
    written += await new Promise<number>((resolve, reject) =>
      writev(fd, [rest], pos + written, (err, n) => (err ? reject(err) : resolve(n))),
    );
  }
}

function syncDir(d: string): void {
  const fd = openSync(d, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDirAsync(d: string): Promise<void> {
  const fd = openSync(d, 'r');
  return new Promise<void>((resolve, reject) =>
    fsync(fd, (err) => {
      closeSync(fd);
      if (err) reject(err);
      else resolve();
    }),
  );
}

function corruptError(dir: string, what: string): StorageError {
  return new StorageError(
    StorageErrorCode.Corrupt,
    `${dir} is damaged: ${what}. Restore the directory from a backup, or move it aside and let the node catch up from its peers`,
    { path: dir },
  );
}
