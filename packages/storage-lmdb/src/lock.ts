import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError, StorageErrorCode } from './errors.js';

/**
 * One writer per data directory. LMDB itself lets many processes share an environment,
 * which would let two Raft nodes with the same identity write one log: so we take our own
 * exclusive lock.
 *
 * The lock is a file, `quorate.lock`, holding the owner's pid, its start time (from
 * /proc, so a recycled pid is not mistaken for the owner) and a random token. It is
 * created whole and atomically: written under a unique name, then hard-linked into
 * place, which fails if the lock exists. A lock whose owner is gone (a SIGKILL, a power
 * cut) is taken over: renamed aside, checked to still be the dead owner's, then
 * removed. The directory is never opened on a live owner's lock.
 *
 * What a file lock cannot close — two processes taking over the same stale lock at the
 * same instant — is caught after LMDB opens, by the environment's reader table (see
 * `otherLiveReaders`).
 */
export const LOCK_FILE = 'quorate.lock';

/** Directories held by stores of this process (a second open here is refused too). */
const heldHere = new Set<string>();

interface Owner {
  pid: number;
  start: string | null;
  token: string;
}

export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); fields after the parenthesised command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ownerAlive(o: Owner): boolean {
  if (!isAlive(o.pid)) return false;
  if (o.start === null) return true;
  const now = processStart(o.pid);
  return now === null || now === o.start;
}

function readOwner(file: string): Owner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<Owner>;
    if (typeof o.pid !== 'number' || typeof o.token !== 'string') return null;
    return { pid: o.pid, start: typeof o.start === 'string' ? o.start : null, token: o.token };
  } catch {
    return null;
  }
}

export class DirLock {
  private constructor(
    readonly dir: string,
    private readonly file: string,
    private readonly token: string,
  ) {}

  static acquire(dir: string): DirLock {
    const file = join(dir, LOCK_FILE);
    if (heldHere.has(dir)) {
      throw new StorageError(
        StorageErrorCode.Locked,
        `${dir} is already open in this process; close the other store first`,
        { path: dir },
      );
    }
    const me: Owner = {
      pid: process.pid,
      start: processStart(process.pid),
      token: randomBytes(8).toString('hex'),
    };
    const tmp = `${file}.${me.pid}.${me.token}`;
    writeFileSync(tmp, JSON.stringify(me));
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          linkSync(tmp, file);
          heldHere.add(dir);
          return new DirLock(dir, file, me.token);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const owner = readOwner(file);
        if (owner && ownerAlive(owner) && owner.pid !== process.pid) {
          throw new StorageError(
            StorageErrorCode.Locked,
            `${dir} is in use by process ${owner.pid} (lock file ${file}); stop that process first, two nodes must never share a data directory`,
            { path: dir },
          );
        }
        DirLock.takeOver(file, owner);
      }
      throw new StorageError(
        StorageErrorCode.Locked,
        `${dir}: could not take the lock ${file}; another process keeps taking it`,
        { path: dir },
      );
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
    }
  }

  /** Remove a dead owner's lock, unless someone replaced it meanwhile. */
  private static takeOver(file: string, dead: Owner | null): void {
    const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else removed it
      throw err;
    }
    const moved = readOwner(aside);
    if (moved && moved.token !== dead?.token && ownerAlive(moved)) {
      // We moved a live lock taken in the meantime: put it back and let the loop refuse.
      try {
        linkSync(aside, file);
      } catch {
        // a third process has the lock now; the loop sees it
      }
    }
    unlinkSync(aside);
  }

  release(): void {
    heldHere.delete(this.dir);
    const owner = readOwner(this.file);
    if (owner?.token === this.token) {
      try {
        unlinkSync(this.file);
      } catch {
        // gone already
      }
    }
  }
}

/**
 * Pids, other than ours, that hold a slot in the LMDB reader table and are alive. LMDB
 * records every process that has the environment open for reading there, so a second
 * process that slipped past the lock file shows up.
 */
export function otherLiveReaders(readerList: string): number[] {
  const pids = new Set<number>();
  for (const line of readerList.split('\n')) {
    const m = /^\s*(\d+)\s+[0-9a-f]+\s+/i.exec(line);
    if (m) pids.add(Number(m[1]));
  }
  pids.delete(process.pid);
  return [...pids].filter(isAlive);
}
