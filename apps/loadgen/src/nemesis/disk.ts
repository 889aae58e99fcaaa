/**
 * A node's data directory on a small filesystem of its own (a tmpfs of a fixed size),
 * which the nemesis fills with a ballast file until writes fail with ENOSPC, and frees
 * again. The node's own files are never touched.
 */
import { execFile } from 'node:child_process';
import { mkdir, open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class SmallDisk {
  readonly dataDir: string;
  private readonly ballast: string;
  private mounted = false;

  constructor(
    private readonly mountPoint: string,
    private readonly sizeMiB: number,
  ) {
    this.dataDir = join(mountPoint, 'data');
    this.ballast = join(mountPoint, 'ballast');
  }

  async mount(): Promise<void> {
    await mkdir(this.mountPoint, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${this.sizeMiB}m,mode=0700`, 'tmpfs', this.mountPoint]);
    this.mounted = true;
    await mkdir(this.dataDir, { recursive: true });
  }

  /** Bytes still free. */
  async free(): Promise<number> {
    const s = await statfs(this.mountPoint);
    return s.bavail * s.bsize;
  }

  /**
   * Fill the filesystem with the ballast until `keepBytes` are left (0: until the kernel
   * says ENOSPC).
   */
  async fill(keepBytes = 0): Promise<void> {
    const f = await open(this.ballast, 'a');
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    try {
      if (keepBytes > 0) {
        let left = (await this.free()) - keepBytes;
        while (left > 0) {
          const { bytesWritten } = await f.write(chunk, 0, Math.min(chunk.length, left));
          left -= bytesWritten;
        }
        return;
      }
      // Whole MiBs until the kernel says ENOSPC, then 4 KiB blocks for what is left.
      let block = chunk;
      for (;;) {
        try {
          await f.write(block);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          if (block.length === 4096) break;
          block = chunk.subarray(0, 4096);
        }
      }
    } finally {
      await f.close();
    }
  }

  /** Remove the ballast: the space is back. */
  async release(): Promise<void> {
    await rm(this.ballast, { force: true });
  }

  async unmount(force = false): Promise<void> {
    if (!this.mounted && !force) return;
    this.mounted = false;
    await run('umount', ['-l', this.mountPoint]).catch(() => {});
  }
}

/** Why a small filesystem cannot be mounted here, or null. */
export function diskUnavailable(): string | null {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a small filesystem needs root';
  return null;
}
