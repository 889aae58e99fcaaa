/**
 * The replicated state the simulated clients use: a few string registers with put and
 * compare-and-set, snapshotted and restored whole. Entries carry one operation each, as
 * text (readable in traces and failure reports): `p:<op>:<key>=<value>` puts,
 * `c:<op>:<key>=<expected>><value>` sets `key` to `value` if it holds `expected`
 * (`~` for absent).
 */
import type { Entry, SnapshotMeta, StateMachine } from '@quorate/raft';

export interface KvResult {
  /** A put always; a CAS when the key held what it expected. */
  readonly ok: boolean;
  /** The log index the operation was applied at. */
  readonly index: number;
}

export type KvOp =
  | { readonly f: 'put'; readonly op: number; readonly key: string; readonly value: string }
  | {
      readonly f: 'cas';
      readonly op: number;
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
    };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeOp(o: KvOp): Uint8Array {
  return enc.encode(
    o.f === 'put' ? `p:${o.op}:${o.key}=${o.value}` : `c:${o.op}:${o.key}=${o.expected ?? '~'}>${o.value}`,
  );
}

export function decodeOp(data: Uint8Array): KvOp {
  const s = dec.decode(data);
  const c1 = s.indexOf(':', 2);
  const eq = s.indexOf('=', c1);
  const op = Number(s.slice(2, c1));
  const key = s.slice(c1 + 1, eq);
  const rest = s.slice(eq + 1);
  if (s[0] === 'p') return { f: 'put', op, key, value: rest };
  const gt = rest.indexOf('>');
  const expected = rest.slice(0, gt);
  return { f: 'cas', op, key, expected: expected === '~' ? null : expected, value: rest.slice(gt + 1) };
}

/** What the simulation checks as the state machine runs. */
export interface KvObserver {
  applied(e: Entry, previous: number, kv: SimKV): void;
  restored(meta: SnapshotMeta, kv: SimKV): void;
}

export class SimKV implements StateMachine<KvResult> {
  private map = new Map<string, string>();
  /** The last index applied or restored. */
  lastApplied = 0;

  constructor(private readonly observer: KvObserver) {}

  get(key: string): string | null {
    return this.map.get(key) ?? null;
  }

  /** The whole state as one stable line (replicas compare it at the same index). */
  digest(): string {
    return [...this.map.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  }

  apply(e: Entry): KvResult {
    const previous = this.lastApplied;
    const o = decodeOp(e.data);
    let ok = true;
    if (o.f === 'put') this.map.set(o.key, o.value);
    else if ((this.map.get(o.key) ?? null) === o.expected) this.map.set(o.key, o.value);
    else ok = false;
    this.lastApplied = e.index;
    this.observer.applied(e, previous, this);
    return { ok, index: e.index };
  }

  snapshot(): Iterable<Uint8Array> {
    // The view is taken now (the copy); the runtime streams it while applying goes on.
    return [enc.encode(JSON.stringify([...this.map.entries()]))];
  }

  async restore(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of data) parts.push(c);
    const text = parts.map((p) => dec.decode(p)).join('');
    this.map = new Map(JSON.parse(text) as [string, string][]);
    this.lastApplied = meta.index;
    this.observer.restored(meta, this);
  }
}
