/**
 * Histories of a real sequential register, for tests and benchmarks: processes run one
 * operation at a time, each operation takes effect atomically at a point strictly between
 * its invocation and its completion (an `info` write at any point after its invocation,
 * possibly after its client gave up, or never), and reads return what the register held at
 * that point. Such a history is linearizable by construction.
 */
import type { HistoryEvent } from './history.js';

export interface SimulateOptions {
  /** Register operations in all (default 1000). */
  ops?: number;
  /** Distinct keys, chosen uniformly (default 10). */
  keys?: number;
  /** Concurrent processes (default 8). */
  processes?: number;
  /** Share of reads (default 0.5); the rest are writes. */
  readRatio?: number;
  /** Share of writes that are compare-and-set (default 0.2). */
  casRatio?: number;
  /** Share of writes that are deletes (default 0.05). */
  deleteRatio?: number;
  /** Share of operations whose outcome is unknown (`info`; default 0.02). */
  infoRatio?: number;
  /** Share of operations that definitely fail (`fail`; default 0.01). */
  failRatio?: number;
  /** Values written come from a pool of this size (repeats allowed); default: every value unique. */
  values?: number;
  /** Longest operation, in time units (default 100); invocations and completions are integers. */
  maxLatency?: number;
  /** Seed of the pseudo-random generator (default 1). */
  seed?: number;
  /**
   * Share of operations that are two-key transactions (default 0): a transfer (if the
   * first key holds what was last seen, put both keys, else read both) or an atomic read
   * of both keys. Needs at least two keys.
   */
  txnRatio?: number;
  /**
   * A planted bug, for tests of the checker: a transaction's second write lands at a later
   * point than its first, so a concurrent read can see half of it (default false).
   */
  tornTxns?: boolean;
}

/** Mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimOp {
  process: number;
  key: string;
  f: 'put' | 'get' | 'cas' | 'delete' | 'txn';
  /** A transaction's second key. */
  key2?: string;
  call: number;
  ret: number;
  /** When it takes effect; Infinity for never. */
  effect: number;
  type: 'ok' | 'fail' | 'info';
  value: unknown;
  result: unknown;
}

/** The events of a simulated run, in time order. */
export function simulateHistory(options: SimulateOptions = {}): HistoryEvent[] {
  const total = options.ops ?? 1000;
  const nKeys = options.keys ?? 10;
  const nProc = options.processes ?? 8;
  const readRatio = options.readRatio ?? 0.5;
  const casRatio = options.casRatio ?? 0.2;
  const deleteRatio = options.deleteRatio ?? 0.05;
  const infoRatio = options.infoRatio ?? 0.02;
  const failRatio = options.failRatio ?? 0.01;
  const txnRatio = nKeys > 1 ? (options.txnRatio ?? 0) : 0;
  const maxLatency = Math.max(2, options.maxLatency ?? 100);
  const rnd = prng(options.seed ?? 1);
  const int = (n: number) => Math.floor(rnd() * n);
  let counter = 0;
  const newValue = (p: number) => (options.values ? `v${int(options.values)}` : `${p}-${counter++}`);

  // Each process's operations and times; what they read is decided below, in effect order.
  const ops: SimOp[] = [];
  const clock = new Array<number>(nProc).fill(0);
  for (let i = 0; i < total; i++) {
    const p = i % nProc;
    const call = clock[p]! + int(maxLatency / 4);
    const ret = call + 2 + int(maxLatency - 1);
    clock[p] = ret + 1;
    const r = rnd();
    const f: SimOp['f'] =
      rnd() < txnRatio
        ? 'txn'
        : r < readRatio
          ? 'get'
          : r < readRatio + (1 - readRatio) * casRatio
            ? 'cas'
            : r < readRatio + (1 - readRatio) * (casRatio + deleteRatio)
              ? 'delete'
              : 'put';
    const u = rnd();
    const type: SimOp['type'] = u < infoRatio ? 'info' : u < infoRatio + failRatio ? 'fail' : 'ok';
    let effect = call + 1 + int(ret - call - 1);
    if (type === 'fail') effect = Number.POSITIVE_INFINITY;
    // An unknown outcome: it happened inside the call, later, or never.
    if (type === 'info') effect = rnd() < 0.3 ? Number.POSITIVE_INFINITY : call + 1 + int(3 * (ret - call));
    const value = f === 'put' ? newValue(p) : null;
    const key = int(nKeys);
    const op: SimOp = { process: p, key: `k${key}`, f, call, ret, effect, type, value, result: null };
    if (f === 'txn') op.key2 = `k${(key + 1 + int(nKeys - 1)) % nKeys}`;
    ops.push(op);
  }
  // The planted bug: a transfer's second write is a separate step, later in its call.
  const halves: SimOp[] = [];
  if (options.tornTxns)
    for (const o of ops)
      if (o.f === 'txn' && o.effect < o.ret - 1) {
        halves.push({ ...o, f: 'put', effect: o.effect + 1 + int(o.ret - o.effect - 1), result: o });
      }

  // Apply the effects in time order to a real register.
  const state = new Map<string, string>();
  const byEffect = [...ops, ...halves]
    .filter((o) => o.effect !== Number.POSITIVE_INFINITY)
    .sort((a, b) => a.effect - b.effect);
  for (const o of byEffect) {
    const cur = state.get(o.key) ?? null;
    switch (o.f) {
      case 'put':
        if (halves.includes(o)) {
          // The torn second half: whatever the whole transaction decided for its second key.
          const txn = o.result as SimOp;
          const spec = txn.value as { success: { op: string; value?: string }[] } | null;
          const second = txn.result as { succeeded: boolean } | null;
          if (spec && second?.succeeded) state.set(txn.key2!, spec.success[1]!.value!);
          break;
        }
        state.set(o.key, o.value as string);
        break;
      case 'txn': {
        const a = o.key;
        const b = o.key2!;
        const cb = state.get(b) ?? null;
        if (rnd() < 0.3) {
          o.value = {
            compare: [],
            success: [
              { op: 'get', key: a },
              { op: 'get', key: b },
            ],
            failure: [],
          };
          o.result = { succeeded: true, reads: [cur, cb] };
          break;
        }
        const guess = rnd() < 0.7 ? cur : newValue(o.process);
        const compare = guess === null ? [{ key: a, exists: false }] : [{ key: a, value: guess }];
        const writes = [
          { op: 'put', key: a, value: newValue(o.process) },
          { op: 'put', key: b, value: newValue(o.process) },
        ];
        o.value = {
          compare,
          success: writes,
          failure: [
            { op: 'get', key: a },
            { op: 'get', key: b },
          ],
        };
        const holds = guess === cur;
        o.result = holds ? { succeeded: true, reads: [] } : { succeeded: false, reads: [cur, cb] };
        if (holds) {
          state.set(a, writes[0]!.value);
          const torn = options.tornTxns && halves.some((h) => h.result === o);
          if (!torn) state.set(b, writes[1]!.value);
        }
        break;
      }
      case 'get':
        o.result = cur;
        break;
      case 'delete':
        state.delete(o.key);
        o.result = cur !== null;
        break;
      case 'cas': {
        // Usually expect the current value, so that most succeed.
        const expected = rnd() < 0.7 ? cur : rnd() < 0.5 ? null : newValue(o.process);
        const next = newValue(o.process);
        o.value = [expected, next];
        if (expected === cur) state.set(o.key, next);
        else if (o.type === 'ok') o.type = 'fail'; // the precondition was false: a definite failure
        break;
      }
    }
  }
  // A cas that never took effect still names what it expected.
  for (const o of ops) {
    if (o.f === 'cas' && o.value === null) o.value = [newValue(o.process), newValue(o.process)];
    if (o.f === 'txn' && o.value === null)
      o.value = {
        compare: [{ key: o.key, value: newValue(o.process) }],
        success: [
          { op: 'put', key: o.key, value: newValue(o.process) },
          { op: 'put', key: o.key2, value: newValue(o.process) },
        ],
        failure: [],
      };
  }

  const events: { e: HistoryEvent; t: number; seq: number }[] = [];
  let seq = 0;
  for (const o of ops) {
    const base = { process: o.process, f: o.f, key: o.key };
    events.push({ e: { ...base, type: 'invoke', value: o.value, time: o.call }, t: o.call, seq: seq++ });
    let value: unknown = o.value;
    if (o.f === 'get') value = o.type === 'ok' ? o.result : null;
    if (o.f === 'delete') value = o.type === 'ok' ? o.result : null;
    if (o.f === 'txn') value = o.type === 'ok' ? o.result : null;
    events.push({ e: { ...base, type: o.type, value, time: o.ret }, t: o.ret, seq: seq++ });
  }
  events.sort((a, b) => a.t - b.t || a.seq - b.seq);
  return events.map((x) => x.e);
}
