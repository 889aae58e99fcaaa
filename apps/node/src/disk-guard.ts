/**
 * Watches the free space of the filesystem holding the data directory. Below the reserve
 * (`storage.reserveBytes`) the node is "full": it refuses client writes with
 * `STORAGE_FULL` (507) while it still has room for what Raft itself must write (votes,
 * entries a leader sends, lease expiry), and says so on `/health` so that a leader refuses
 * writes while any member is full (as etcd raises its NOSPACE alarm for the whole cluster).
 * Once space is freed it serves writes again, without a restart.
 */
import { statfs } from 'node:fs/promises';

export class DiskGuard {
  private timer: ReturnType<typeof setInterval> | null = null;
  private freeBytes: number | null = null;
  private reading = false;

  constructor(
    private readonly path: string,
    readonly reserveBytes: number,
    private readonly intervalMs = 250,
    private readonly onChange?: (full: boolean, freeBytes: number) => void,
  ) {}

  /** Free bytes at the last reading (null before the first). */
  get free(): number | null {
    return this.freeBytes;
  }

  get full(): boolean {
    return this.reserveBytes > 0 && this.freeBytes !== null && this.freeBytes < this.reserveBytes;
  }

  async start(): Promise<void> {
    await this.read();
    this.timer = setInterval(() => void this.read(), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const s = await statfs(this.path);
      const was = this.full;
      this.freeBytes = s.bavail * s.bsize;
      if (this.full !== was) this.onChange?.(this.full, this.freeBytes);
    } catch {
      // The directory vanished or cannot be read: the store's own writes will say why.
    } finally {
      this.reading = false;
    }
  }
}
