import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError, StorageErrorCode } from './errors.js';

/**
 * Checks `data.mdb` before LMDB maps it. LMDB trusts its file: a truncated one is mapped
 * past its end and the first read of a missing page kills the process with SIGBUS, which
 * no `try` can catch. So we read the two meta pages ourselves and refuse a file that is
 * not LMDB's, or that lacks a page its newest meta page's trees use.
 *
 * A file may be shorter than the last page number its meta page records, and healthy: a
 * page dirtied and freed in one transaction (deleting a run of keys does it) is counted
 * but never written, and sits in the free list. So a short file is not refused on its
 * length alone: the trees are walked from their roots (every named database, overflow
 * runs included), and only a page they use that lies past the end is a truncation.
 *
 * Layout read here (LMDB as built by the `lmdb` package, 64-bit): each meta page starts
 * with a 24-byte page header, then the magic (u32 at 24), the format version (u32 at 28),
 * the map address and size (2 x u64), two 48-byte database records (the first one's
 * leading u32 is the page size), the last used page number (u64 at 144) and the
 * transaction id (u64 at 152).
 */
const MAGIC = 0xbeefc0de;
const META = { magic: 24, pageSize: 48, lastPage: 144, txnId: 152, end: 160 };

interface MetaPage {
  /** Where in the file the meta page starts. */
  at: number;
  pageSize: number;
  lastPage: number;
  txnId: number;
}

function readMeta(buf: Buffer, at: number): MetaPage | null {
  if (buf.length < at + META.end) return null;
  if (buf.readUInt32LE(at + META.magic) !== MAGIC) return null;
  return {
    at,
    pageSize: buf.readUInt32LE(at + META.pageSize),
    lastPage: Number(buf.readBigUInt64LE(at + META.lastPage)),
    txnId: Number(buf.readBigUInt64LE(at + META.txnId)),
  };
}

export function checkDataFile(dir: string): void {
  const file = join(dir, 'data.mdb');
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a new store
    throw new StorageError(StorageErrorCode.Corrupt, `${file} cannot be read: ${(err as Error).message}`, {
      cause: err,
      path: dir,
    });
  }
  const corrupt = (what: string) =>
    new StorageError(
      StorageErrorCode.Corrupt,
      `${file} ${what}; the store cannot be opened. Restore the directory from a backup, or move it aside and let the node catch up from its peers`,
      { path: dir },
    );
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return; // created, never written: LMDB initialises it
    const head = Buffer.alloc(Math.min(size, 2 * 65536));
    readSync(fd, head, 0, head.length, 0);
    const first = readMeta(head, 0);
    if (!first) throw corrupt('is not an LMDB file (no meta page at its start)');
    const psize = first.pageSize;
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) {
      throw corrupt(`has an invalid page size (${psize})`);
    }
    if (size < 2 * psize) throw corrupt(`is truncated (${size} bytes, less than its two meta pages)`);
    const second = readMeta(head, psize);
    const metas = [first, second].filter((m): m is MetaPage => m !== null);
    const newest = metas.reduce((a, b) => (b.txnId > a.txnId ? b : a));
    const need = (newest.lastPage + 1) * psize;
    if (size < need) {
      const missing = firstMissingPage(fd, head, newest.at, psize, Math.floor(size / psize));
      if (missing !== null) {
        throw corrupt(`is truncated (${size} bytes of the ${need} its last transaction counts; ${missing})`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Page layout walked by {@link firstMissingPage} (LMDB as built by the `lmdb` package):
 * a 24-byte header (page number u64, txn id u64, pad u16, flags u16, then lower/upper
 * bounds u16 x 2, or an overflow run's page count u32); node offsets (u16, relative to the
 * end of the header) follow it. A node: lo u16, hi u16, flags u16, key size u16, key, data.
 * A branch node's child is lo | hi << 16 | flags << 32. A database record: 48 bytes, its
 * page counts at 8, 16 and 24 and its root at 40.
 */
const PAGE_HEADER = 24;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_LEAF2 = 0x20;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const DB_RECORD = 48;
const NO_PAGE = 0xffffffffffffffffn;

/**
 * The first page a tree of the meta page at `metaAt` uses that lies past the file's
 * `filePages` pages, described; or null if every page they use is there. A structure this
 * walk does not understand counts as missing, so a file is never accepted by mistake.
 */
function firstMissingPage(
  fd: number,
  head: Buffer,
  metaAt: number,
  psize: number,
  filePages: number,
): string | null {
  const page = Buffer.alloc(psize);
  // A damaged tree could lead the walk in circles: no healthy one visits a page twice.
  let visits = 0;
  /** The page, or why it cannot be used. */
  const read = (pgno: number): Buffer | string => {
    if (pgno >= filePages) return `page ${pgno} is past the end of the file`;
    if (++visits > filePages) return `page ${pgno} is reached twice (a damaged tree)`;
    if (readSync(fd, page, 0, psize, pgno * psize) !== psize) return `page ${pgno} cannot be read`;
    const named = Number(page.readBigUInt64LE(0));
    return named === pgno ? page : `page ${pgno} calls itself page ${named} (a damaged tree)`;
  };
  type Tally = { branch: number; leaf: number; overflow: number };
  let trouble: string | null = null;
  const walkDb = (db: Buffer, name: string): void => {
    const root = db.readBigUInt64LE(40);
    const want = {
      branch: Number(db.readBigUInt64LE(8)),
      leaf: Number(db.readBigUInt64LE(16)),
      overflow: Number(db.readBigUInt64LE(24)),
    };
    // Each database's own pages: a named one's are counted in its record, not the main one's.
    const seen: Tally = { branch: 0, leaf: 0, overflow: 0 };
    if (root !== NO_PAGE) walk(Number(root), name, 0, seen);
    if (trouble) return;
    for (const k of ['branch', 'leaf', 'overflow'] as const) {
      if (seen[k] !== want[k]) {
        trouble = `database ${name} has ${seen[k]} ${k} pages where its record counts ${want[k]}`;
        return;
      }
    }
  };
  const walk = (pgno: number, name: string, depth: number, seen: Tally): void => {
    if (trouble) return;
    if (depth > 64) {
      trouble = `database ${name} is deeper than any LMDB tree`;
      return;
    }
    const p = read(pgno);
    if (typeof p === 'string') {
      trouble = `${p}: a page of database ${name}`;
      return;
    }
    const flags = p.readUInt16LE(18);
    if (flags & P_LEAF2) {
      seen.leaf++;
      return;
    }
    const n = p.readUInt16LE(20) >> 1;
    const nodes: number[] = [];
    for (let i = 0; i < n; i++) nodes.push(PAGE_HEADER + p.readUInt16LE(PAGE_HEADER + 2 * i));
    if (flags & P_BRANCH) {
      seen.branch++;
      const children = nodes.map(
        (at) => p.readUInt16LE(at) + p.readUInt16LE(at + 2) * 0x10000 + p.readUInt16LE(at + 4) * 2 ** 32,
      );
      for (const c of children) walk(c, name, depth + 1, seen);
      return;
    }
    if (!(flags & P_LEAF)) {
      trouble = `page ${pgno} of database ${name} is neither a branch nor a leaf`;
      return;
    }
    seen.leaf++;
    // Copied out first: the walks below reuse the page buffer.
    type Ref = { big: number } | { db: Buffer; key: string } | null;
    const refs = nodes.map((at): Ref => {
      const nflags = p.readUInt16LE(at + 4);
      const ksize = p.readUInt16LE(at + 6);
      const data = at + 8 + ksize;
      if (nflags & F_BIGDATA) return { big: Number(p.readBigUInt64LE(data)) };
      if (nflags & F_SUBDATA) {
        // A named database's key ends with a NUL.
        const key = p.toString('utf8', at + 8, data).replace(/\0$/, '');
        return { db: Buffer.from(p.subarray(data, data + DB_RECORD)), key };
      }
      return null;
    });
    for (const r of refs) {
      if (trouble) return;
      if (r !== null && 'big' in r) {
        const o = read(r.big);
        if (typeof o === 'string' || !(o.readUInt16LE(18) & P_OVERFLOW)) {
          trouble = `${typeof o === 'string' ? o : `page ${r.big} is not an overflow page`}: a value of database ${name}`;
          return;
        }
        const pages = o.readUInt32LE(20);
        if (r.big + pages > filePages) {
          trouble = `overflow pages ${r.big}-${r.big + pages - 1} of database ${name} are not all there`;
          return;
        }
        seen.overflow += pages;
      } else if (r) {
        walkDb(r.db, name === 'main' ? `'${r.key}'` : `${name}/'${r.key}'`);
      }
    }
  };
  // The meta page's two records: the free list's, then the main database's.
  walkDb(head.subarray(metaAt + 48, metaAt + 48 + DB_RECORD), 'free');
  if (!trouble) walkDb(head.subarray(metaAt + 48 + DB_RECORD, metaAt + 48 + 2 * DB_RECORD), 'main');
  return trouble;
}

/**
 * Walks the trees of `data.mdb` in `dir` whatever its length, as a short file is walked:
 * null if every page they use is there and each database's page counts match its record.
 * For tests, which run it on healthy files to show the walk reads LMDB's layout right.
 */
export function walkDataFile(dir: string): string | null {
  const fd = openSync(join(dir, 'data.mdb'), 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 2 * 65536));
    readSync(fd, head, 0, head.length, 0);
    const first = readMeta(head, 0);
    if (!first) return 'no meta page';
    const second = readMeta(head, first.pageSize);
    const newest = [first, second]
      .filter((m): m is MetaPage => m !== null)
      .reduce((a, b) => (b.txnId > a.txnId ? b : a));
    return firstMissingPage(fd, head, newest.at, first.pageSize, Math.floor(size / first.pageSize));
  } finally {
    closeSync(fd);
  }
}
