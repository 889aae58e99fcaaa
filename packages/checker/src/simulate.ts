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
  f: 'put' | 'get' | 'cas' | 'delete';
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
      r < readRatio
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
    ops.push({ process: p, key: `k${int(nKeys)}`, f, call, ret, effect, type, value, result: null });
  }

  // Apply the effects in time order to a real register.
  const state = new Map<string, string>();
  const byEffect = ops
    .filter((o) => o.effect !== Number.POSITIVE_INFINITY)
    .sort((a, b) => a.effect - b.effect);
  for (const o of byEffect) {
    const cur = state.get(o.key) ?? null;
    switch (o.f) {
      case 'put':
        state.set(o.key, o.value as string);
        break;
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
  for (const o of ops)
    if (o.f === 'cas' && o.value === null) o.value = [newValue(o.process), newValue(o.process)];

  const events: { e: HistoryEvent; t: number; seq: number }[] = [];
  let seq = 0;
  for (const o of ops) {
    const base = { process: o.process, f: o.f, key: o.key };
    events.push({ e: { ...base, type: 'invoke', value: o.value, time: o.call }, t: o.call, seq: seq++ });
    let value: unknown = o.value;
    if (o.f === 'get') value = o.type === 'ok' ? o.result : null;
    if (o.f === 'delete') value = o.type === 'ok' ? o.result : null;
    events.push({ e: { ...base, type: o.type, value, time: o.ret }, t: o.ret, seq: seq++ });
  }
  events.sort((a, b) => a.t - b.t || a.seq - b.seq);
  return events.map((x) => x.e);
}
