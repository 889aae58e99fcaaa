/**
 * The append messages in flight to one follower: a bounded window, by count and by
 * bytes, so that a slow follower cannot make the leader buffer without limit. Each slot
 * remembers the last index a message carried; an acknowledgement frees every slot up to
 * the index it acknowledges.
 */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytesInFlight = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.indexes.length - this.head;
  }

  get bytes(): number {
    return this.bytesInFlight;
  }

  /** Record a message whose last entry has `index` and whose entries total `bytes`. */
  add(index: number, bytes: number): void {
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytesInFlight += bytes;
  }

  /** Free every message whose last index is `<= index`. */
  freeLE(index: number): void {
    const ix = this.indexes;
    let h = this.head;
    while (h < ix.length && ix[h]! <= index) {
      this.bytesInFlight -= this.sizes[h]!;
      h++;
    }
    if (h === ix.length) {
      this.reset();
      return;
    }
    this.head = h;
    // Drop the freed prefix now and then, so the arrays do not grow forever.
    if (h > 64 && h * 2 > ix.length) {
      ix.splice(0, h);
      this.sizes.splice(0, h);
      this.head = 0;
    }
  }

  /** Free the oldest message, whatever its index. */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.indexes[this.head]!);
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytesInFlight >= this.maxBytes);
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytesInFlight = 0;
  }
}
