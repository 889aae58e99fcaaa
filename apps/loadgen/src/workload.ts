/**
 * What the virtual clients do: which operation, on which key, with which value.
 * Deterministic given a seed, so a run's shape can be repeated.
 */
export type Mode = 'put' | 'get' | 'mixed' | 'cas' | 'lease' | 'txn';
/**
 * `transfer`: a two-key transaction (if the first key still holds what this load generator
 * last saw, write both keys, else read both); `readBoth`: an atomic read of two keys.
 * Both are recorded as `txn` in the history.
 */
export type OpKind = 'put' | 'get' | 'cas' | 'acquire' | 'renew' | 'release' | 'transfer' | 'readBoth';

export interface WorkloadOptions {
  mode: Mode;
  /** Share of reads in `mixed`, `cas` and `txn` modes. */
  readRatio: number;
  keys: number;
  /** Zipf exponent; 0 means uniform. */
  zipf: number;
  valueSize: number;
  seed: number;
}

/** A small, fast seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Key names shared with the etcd anchor's load script: key-0000000 .. key-(K-1). */
export function keyName(i: number): string {
  return `key-${String(i).padStart(7, '0')}`;
}

/** Cumulative Zipf weights, shared by every client with the same (n, s): 8 bytes a key. */
const zipfTables = new Map<string, { cdf: Float64Array; sum: number }>();

function zipfTable(n: number, s: number): { cdf: Float64Array; sum: number } {
  const id = `${n}:${s}`;
  let t = zipfTables.get(id);
  if (!t) {
    const cdf = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      sum += 1 / (i + 1) ** s;
      cdf[i] = sum;
    }
    t = { cdf, sum };
    zipfTables.set(id, t);
  }
  return t;
}

/** Zipf(s) over [0, n): precomputed cumulative weights, sampled by binary search. */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  if (s <= 0) return () => Math.floor(random() * n);
  const { cdf, sum } = zipfTable(n, s);
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export class Workload {
  private readonly random: () => number;
  private readonly pickKey: () => number;
  private counter = 0;

  constructor(
    readonly opts: WorkloadOptions,
    clientIndex: number,
  ) {
    this.random = rng(opts.seed * 7919 + clientIndex + 1);
    this.pickKey = zipfSampler(opts.keys, opts.zipf, this.random);
  }

  key(): string {
    return keyName(this.pickKey());
  }

  /** The next operation kind for this client. */
  next(): OpKind {
    switch (this.opts.mode) {
      case 'put':
        return 'put';
      case 'get':
        return 'get';
      case 'mixed':
        return this.random() < this.opts.readRatio ? 'get' : 'put';
      case 'cas': {
        const r = this.random();
        if (r < this.opts.readRatio) return 'get';
        return r < this.opts.readRatio + (1 - this.opts.readRatio) / 2 ? 'put' : 'cas';
      }
      case 'lease':
        return 'acquire';
      case 'txn': {
        // Reads: half atomic two-key reads, half single gets; writes: mostly transfers.
        const r = this.random();
        if (r < this.opts.readRatio) return r < this.opts.readRatio / 2 ? 'readBoth' : 'get';
        return this.random() < 0.75 ? 'transfer' : 'put';
      }
    }
  }

  /** A second key, different from `first` (needs at least two keys). */
  otherKey(first: string): string {
    for (;;) {
      const k = this.key();
      if (k !== first) return k;
      if (this.opts.keys < 2) throw new Error('two keys are needed');
      // A skewed choice may keep drawing the same key: fall back to a uniform one.
      const u = keyName(Math.floor(this.random() * this.opts.keys));
      if (u !== first) return u;
    }
  }

  /**
   * A value unique to this client and operation (so a history can tell writes apart),
   * padded to the configured size.
   */
  value(client: number): string {
    const tag = `${client}.${++this.counter}`;
    return this.opts.valueSize > tag.length ? tag.padEnd(this.opts.valueSize, '.') : tag;
  }

  /** A value the key may hold, for cas: one of this client's recent values or a fresh one. */
  random01(): number {
    return this.random();
  }
}
