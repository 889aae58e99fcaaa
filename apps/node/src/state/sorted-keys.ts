/**
 * A sorted set of strings for prefix listing: sorted chunks of bounded size, so inserts
 * and deletes cost O(chunk) instead of O(n) and a prefix scan starts with two binary
 * searches.
 */
const MAX_CHUNK = 512;

function lowerBound(a: readonly string[], x: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;

  /** Build from keys already in order, in O(n). */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const s = new SortedKeys();
    const half = MAX_CHUNK >> 1;
    for (let i = 0; i < keys.length; i += half) s.chunks.push(keys.slice(i, i + half));
    s.count = keys.length;
    return s;
  }

  get size(): number {
    return this.count;
  }

  /** Index of the chunk that holds (or would hold) `x`. */
  private chunkFor(x: string): number {
    const c = this.chunks;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (c[mid]![0]! <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  add(x: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([x]);
      this.count = 1;
      return;
    }
    const ci = this.chunkFor(x);
    const chunk = this.chunks[ci]!;
    const i = lowerBound(chunk, x);
    if (chunk[i] === x) return;
    chunk.splice(i, 0, x);
    this.count++;
    if (chunk.length > MAX_CHUNK) this.chunks.splice(ci + 1, 0, chunk.splice(MAX_CHUNK >> 1));
  }

  delete(x: string): void {
    if (this.chunks.length === 0) return;
    const ci = this.chunkFor(x);
    const chunk = this.chunks[ci]!;
    const i = lowerBound(chunk, x);
    if (chunk[i] !== x) return;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) this.chunks.splice(ci, 1);
  }

  /**
   * Keys starting with `prefix`, in order, at most `limit`, only those after `after`
   * when given (a cursor for the next page); `more` when some were left.
   */
  prefix(prefix: string, limit: number, after?: string): { keys: string[]; more: boolean } {
    const keys: string[] = [];
    if (this.chunks.length === 0) return { keys, more: false };
    const from = after !== undefined && after >= prefix ? `${after}\0` : prefix;
    let ci = this.chunkFor(from);
    let i = lowerBound(this.chunks[ci]!, from);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const chunk = this.chunks[ci]!;
      for (; i < chunk.length; i++) {
        const k = chunk[i]!;
        if (!k.startsWith(prefix)) return { keys, more: false };
        if (keys.length === limit) return { keys, more: true };
        keys.push(k);
      }
    }
    return { keys, more: false };
  }

  /** A copy of the keys in order, as chunks: flat array copies, cheap even for millions. */
  copyChunks(): string[][] {
    return this.chunks.map((c) => c.slice());
  }

  *[Symbol.iterator](): Iterator<string> {
    for (const c of this.chunks) yield* c;
  }
}
