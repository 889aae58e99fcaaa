import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError, StorageErrorCode } from './errors.js';

/**
 * Checks `data.mdb` before LMDB maps it. LMDB trusts its file: a truncated one is mapped
 * past its end and the first read of a missing page kills the process with SIGBUS, which
 * no `try` can catch. So we read the two meta pages ourselves and refuse a file that is
 * not LMDB's or is shorter than the pages its newest meta page claims.
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
  pageSize: number;
  lastPage: number;
  txnId: number;
}

function readMeta(buf: Buffer, at: number): MetaPage | null {
  if (buf.length < at + META.end) return null;
  if (buf.readUInt32LE(at + META.magic) !== MAGIC) return null;
  return {
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
      throw corrupt(`is truncated (${size} bytes; its last transaction uses ${need})`);
    }
  } finally {
    closeSync(fd);
  }
}
