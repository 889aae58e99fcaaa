/**
 * The linearizability search for the operations on one key, against a register whose
 * state is a value or absent (put, get, compare-and-set, delete).
 *
 * It is the Wing & Gong search as improved by Lowe, with the memoization Porcupine uses:
 * the history becomes a doubly linked list of call and return entries in time order; the
 * search walks it from the head, and at each call entry tries to linearize that operation
 * next (legal in the current state, and the pair (set of linearized operations, new
 * state) not seen before), lifting its entries out of the list and starting again from the
 * head. Meeting a return entry means an operation that had to be linearized by then was
 * not: the search backtracks, restores the last lifted operation and tries the next call.
 * Every pair (set, state) is explored at most once, so the work is bounded by the number
 * of distinct configurations rather than the number of orders.
 *
 * Ambiguous operations (`info`) have a call entry and no return entry: they may be
 * linearized at any point after their invocation, and the search succeeds as soon as every
 * `ok` operation is linearized, so an `info` operation may also never take effect. An
 * `info` write whose value nobody observed is dropped before the search: applying it can
 * only make later reads and compare-and-sets fail, so never applying it is always at least
 * as good.
 *
 * The set of linearized operations is a bitset plus an incremental Zobrist hash. In the
 * memo table a set is stored compactly as its "window": every `ok` operation below the
 * first unlinearized one is linearized, so only the words from there to the last
 * linearized one are kept (plus the few `info` bits), which keeps the cost per entry small
 * even when one key has a very long history.
 */
import { earliestCall, type Operation } from './history.js';

const PUT = 0;
const GET = 1;
const CAS = 2;
const DEL = 3;

export type SearchOutcome = 'ok' | 'fail' | 'unknown';

export interface KeySearchResult {
  readonly outcome: SearchOutcome;
  /** Iterations of the search loop used. */
  readonly steps: number;
  /** Configurations memoized. */
  readonly configurations: number;
  /** `info` writes dropped before the search because nobody observed their value. */
  readonly prunedInfo: number;
  /** Operations searched (after dropping unobserved `info` writes). */
  readonly searched: number;
  /** On failure: the operation the deepest attempt could not linearize... */
  readonly blocked?: Operation;
  /** ...the values the register held in the attempts that got that far (null: absent)... */
  readonly blockedStates?: readonly (string | null)[];
  /** ...and the operations that attempt linearized last, in order (at most 8). */
  readonly prefix?: readonly Operation[];
}

export interface SearchOptions {
  /** Give up and answer `unknown` after this many search steps (default 5,000,000). */
  budget?: number;
  /**
   * Cut configurations that cannot lead anywhere: some operation still to be linearized
   * needs a value that is neither current nor written by any operation left (default
   * true; false only to find the deepest attempt for a report).
   */
  prune?: boolean;
}

export const DEFAULT_BUDGET = 5_000_000;

/** Deterministic 32-bit generator for the Zobrist hash keys. */
function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Check that the operations on one key (`ok` and `info`) are linearizable. */
export function searchKey(all: readonly Operation[], options: SearchOptions = {}): KeySearchResult {
  const budget = options.budget ?? DEFAULT_BUDGET;
  const prune = options.prune ?? true;

  // Values as small integers; 0 is "absent".
  const { id, names } = interner<string | null>(null);

  // What the operations observe: a write whose value is never observed need not happen.
  const observed = new Set<number>();
  let observesPresence = false;
  for (const o of all) {
    if (o.status !== 'ok') continue;
    if (o.f === 'get') observed.add(id(o.value));
    else if (o.f === 'cas') observed.add(id(o.value[0]));
    else if (o.f === 'delete' && o.value === true) observesPresence = true;
    else if (o.f === 'delete' && o.value === false) observed.add(0);
  }
  for (const o of all) if (o.status === 'info' && o.f === 'cas') observed.add(id(o.value[0]));
  const written = (o: Operation): number =>
    o.f === 'put' ? id(o.value) : o.f === 'cas' ? id(o.value[1]) : o.f === 'delete' ? 0 : -1;

  const okOps: Operation[] = [];
  const infoOps: Operation[] = [];
  let prunedInfo = 0;
  for (const o of all) {
    if (o.status === 'ok') okOps.push(o);
    else if (o.f === 'get') continue;
    else if (observed.has(written(o)) || (observesPresence && written(o) !== 0)) infoOps.push(o);
    else prunedInfo++;
  }
  const { ops, m, n, time } = engineOrder(okOps, infoOps);

  const kind = new Uint8Array(n);
  const argA = new Int32Array(n);
  const argB = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    switch (o.f) {
      case 'put':
        kind[i] = PUT;
        argA[i] = id(o.value);
        break;
      case 'get':
        kind[i] = GET;
        argA[i] = id(o.value);
        break;
      case 'cas':
        kind[i] = CAS;
        argA[i] = id(o.value[0]);
        argB[i] = id(o.value[1]);
        break;
      case 'delete':
        kind[i] = DEL;
        argA[i] = o.status === 'ok' && o.value !== null ? (o.value ? 1 : 0) : -1;
        break;
    }
  }
  const step = (s: number, i: number): number => {
    switch (kind[i]) {
      case PUT:
        return argA[i]!;
      case GET:
        return s === argA[i] ? s : -1;
      case CAS:
        return s === argA[i] ? argB[i]! : -1;
      default: {
        const d = argA[i]!;
        return d === -1 || (d === 1) === (s !== 0) ? 0 : -1;
      }
    }
  };

  // For pruning: per value, the ok operations left that need it current, and the
  // operations left (ok or info) that write it. A value needed and no longer writable
  // is "stuck"; a configuration is dead when a stuck value is not the current one.
  const needs = new Int32Array(n).fill(-1);
  const writes = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    if (kind[i] === PUT) writes[i] = argA[i]!;
    else if (kind[i] === CAS) writes[i] = argB[i]!;
    else if (kind[i] === DEL) writes[i] = 0;
    if (i >= m) continue;
    if (kind[i] === GET || kind[i] === CAS) needs[i] = argA[i]!;
    else if (kind[i] === DEL && argA[i] === 0) needs[i] = 0;
  }
  const needLeft = new Int32Array(names.length);
  const writesLeft = new Int32Array(names.length);
  for (let i = 0; i < n; i++) {
    if (needs[i]! >= 0) needLeft[needs[i]!]!++;
    if (writes[i]! >= 0) writesLeft[writes[i]!]!++;
  }
  let stuck = 0;
  for (let v = 0; v < names.length; v++) if (needLeft[v]! > 0 && writesLeft[v] === 0) stuck++;
  const isStuck = (v: number) => needLeft[v]! > 0 && writesLeft[v] === 0;
  /** Count op in or out of the operations left (d = -1: linearized, +1: restored). */
  const account = (i: number, d: number) => {
    const v = needs[i]!;
    if (v >= 0) {
      const was = isStuck(v);
      needLeft[v]! += d;
      stuck += (isStuck(v) ? 1 : 0) - (was ? 1 : 0);
    }
    const w = writes[i]!;
    if (w >= 0) {
      const was = isStuck(w);
      writesLeft[w]! += d;
      stuck += (isStuck(w) ? 1 : 0) - (was ? 1 : 0);
    }
  };
  const dead = (s: number) => prune && stuck - (isStuck(s) ? 1 : 0) > 0;

  const r = lowe({ n, m, time, step, account, dead, budget });
  const result = {
    outcome: r.outcome,
    steps: r.steps,
    configurations: r.configurations,
    prunedInfo,
    searched: n,
  };
  if (r.outcome !== 'fail') return result;
  return {
    ...result,
    blocked: ops[r.bestOp]!,
    blockedStates: r.bestStates.map((s) => names[s]!),
    prefix: r.bestPrefix.map((i) => ops[i]!),
  };
}

/** Small integers for things, in the order first seen; `first`, when given, is 0. */
export function interner<T>(...first: [T] | []): { id(v: T): number; names: T[] } {
  const names: T[] = [...first];
  const ids = new Map<T, number>(first.length > 0 ? [[first[0] as T, 0]] : []);
  return {
    names,
    id(v: T): number {
      let n = ids.get(v);
      if (n === undefined) {
        n = names.length;
        names.push(v);
        ids.set(v, n);
      }
      return n;
    },
  };
}

/**
 * The engine's operations: the `ok` ones first, then the `info` ones, each in call order;
 * with their count, the number of `ok` ones, and their times.
 */
export function engineOrder(
  okOps: Operation[],
  infoOps: Operation[],
): { ops: Operation[]; m: number; n: number; time: Float64Array } {
  const byCall = (x: Operation, y: Operation) =>
    x.call < y.call ? -1 : x.call > y.call ? 1 : x.index - y.index;
  okOps.sort(byCall);
  infoOps.sort(byCall);
  const ops = okOps.concat(infoOps);
  return { ops, m: okOps.length, n: ops.length, time: timesOf(ops) };
}

/** The engine's times: op i's call at 2i, its return at 2i+1 (+Infinity when unknown), from the earliest call. */
export function timesOf(ops: readonly Operation[]): Float64Array {
  const base = earliestCall(ops);
  const time = new Float64Array(2 * ops.length);
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!;
    time[2 * i] = Number(o.call - base);
    time[2 * i + 1] = o.ret === null || o.status === 'info' ? Number.POSITIVE_INFINITY : Number(o.ret - base);
  }
  return time;
}

/** What the search engine needs: operations 0..m-1 are `ok`, m..n-1 `info`. */
export interface EngineInput {
  readonly n: number;
  readonly m: number;
  /** Call time of op i at 2i, return time at 2i+1 (+Infinity for info ops). */
  readonly time: Float64Array;
  /** The state after op i in state s (states are small integers, 0 the initial one), or -1 when illegal. */
  readonly step: (s: number, i: number) => number;
  /** Optional pruning: op i leaves (d = -1) or rejoins (d = +1) the operations left... */
  readonly account?: (i: number, d: number) => void;
  /** ...and whether state s can no longer lead to a linearization. */
  readonly dead?: (s: number) => boolean;
  readonly budget: number;
}

export interface EngineResult {
  readonly outcome: SearchOutcome;
  readonly steps: number;
  readonly configurations: number;
  /** On failure: the op the deepest attempt blocked on, its states, and the ops before it. */
  readonly bestOp: number;
  readonly bestStates: number[];
  readonly bestPrefix: number[];
}

/** The search itself, over abstract operations and integer states. */
export function lowe(input: EngineInput): EngineResult {
  const { n, m, time, step, budget } = input;
  const account = input.account ?? (() => {});
  const dead = input.dead ?? (() => false);
  // The entry list: call of op i is entry 2i, its return 2i+1 (info ops have none).
  // Calls sort before returns at equal times, so equal times count as concurrent.
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    order.push(2 * i);
    if (i < m) order.push(2 * i + 1);
  }
  order.sort((x, y) => time[x]! - time[y]! || (x & 1) - (y & 1) || x - y);
  const HEAD = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = HEAD;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  const unlink = (e: number) => {
    next[prev[e]!] = next[e]!;
    if (next[e]! >= 0) prev[next[e]!] = prev[e]!;
  };
  const relink = (e: number) => {
    next[prev[e]!] = e;
    if (next[e]! >= 0) prev[next[e]!] = e;
  };

  // The linearized set: bitsets, window bounds and a Zobrist hash.
  const k = n - m;
  const okBits = new Uint32Array((m >> 5) + 1);
  const infoBits = new Uint32Array((k >> 5) + 1);
  const infoWords = k === 0 ? 0 : (k + 31) >> 5;
  const rnd = xorshift(0x2545f491);
  const z1 = new Int32Array(n);
  const z2 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    z1[i] = rnd();
    z2[i] = rnd();
  }
  let h1 = 0;
  let h2 = 0;
  let low = 0; // first ok op not linearized
  let high = -1; // last ok op linearized
  const set = (i: number) => {
    h1 ^= z1[i]!;
    h2 ^= z2[i]!;
    if (i >= m) {
      const j = i - m;
      infoBits[j >> 5]! |= 1 << (j & 31);
      return;
    }
    okBits[i >> 5]! |= 1 << (i & 31);
    if (i > high) high = i;
    if (i === low) {
      low++;
      while (low < m && (okBits[low >> 5]! & (1 << (low & 31))) !== 0) low++;
    }
  };
  const clear = (i: number) => {
    h1 ^= z1[i]!;
    h2 ^= z2[i]!;
    if (i >= m) {
      const j = i - m;
      infoBits[j >> 5]! &= ~(1 << (j & 31));
      return;
    }
    okBits[i >> 5]! &= ~(1 << (i & 31));
    if (i < low) low = i;
    if (i === high) {
      high--;
      while (high >= 0 && (okBits[high >> 5]! & (1 << (high & 31))) === 0) high--;
    }
  };

  // The memo table: chained buckets in a Map, entries and their words in growable arrays.
  const buckets = new Map<number, number>();
  let cap = 1024;
  let eState = new Int32Array(cap);
  let eLow = new Int32Array(cap);
  let eLen = new Int32Array(cap);
  let eOff = new Int32Array(cap);
  let eNext = new Int32Array(cap);
  let entries = 0;
  let words = new Uint32Array(4096);
  let used = 0;
  const grow = <T extends Int32Array | Uint32Array>(a: T, size: number): T => {
    const b = new (a.constructor as new (n: number) => T)(size);
    b.set(a);
    return b;
  };
  /** Memoize (current set, state s); false when it was already there. */
  const remember = (s: number): boolean => {
    const lw = low >> 5;
    const hw = high >= 0 ? high >> 5 : -1;
    const len = hw >= lw ? hw - lw + 1 : 0;
    const hkey = ((h1 ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0) * 2097152 + ((h2 >>> 11) & 0x1fffff);
    const first = buckets.get(hkey);
    for (let e = first ?? -1; e >= 0; e = eNext[e]!) {
      if (eState[e] !== s || eLow[e] !== lw || eLen[e] !== len) continue;
      let off = eOff[e]!;
      let same = true;
      for (let w = 0; w < len && same; w++) same = words[off++] === okBits[lw + w];
      for (let w = 0; w < infoWords && same; w++) same = words[off++] === infoBits[w];
      if (same) return false;
    }
    if (entries === cap) {
      cap *= 2;
      eState = grow(eState, cap);
      eLow = grow(eLow, cap);
      eLen = grow(eLen, cap);
      eOff = grow(eOff, cap);
      eNext = grow(eNext, cap);
    }
    const need = len + infoWords;
    if (used + need > words.length) words = grow(words, Math.max(words.length * 2, used + need));
    const e = entries++;
    eState[e] = s;
    eLow[e] = lw;
    eLen[e] = len;
    eOff[e] = used;
    eNext[e] = first ?? -1;
    for (let w = 0; w < len; w++) words[used++] = okBits[lw + w]!;
    for (let w = 0; w < infoWords; w++) words[used++] = infoBits[w]!;
    buckets.set(hkey, e);
    return true;
  };

  // The search.
  const stackOp = new Int32Array(n);
  const stackState = new Int32Array(n);
  let sp = 0;
  let state = 0;
  let remaining = m;
  let steps = 0;
  let bestDepth = -1;
  let bestOp = -1;
  let bestStates: number[] = [];
  let bestPrefix: number[] = [];
  let e = next[HEAD]!;
  let outcome: SearchOutcome = 'ok';
  while (remaining > 0) {
    if (++steps > budget) {
      outcome = 'unknown';
      break;
    }
    const op = e >> 1;
    if ((e & 1) === 0) {
      const s2 = step(state, op);
      if (s2 >= 0) {
        set(op);
        account(op, -1);
        if (!dead(s2) && remember(s2)) {
          stackOp[sp] = op;
          stackState[sp++] = state;
          state = s2;
          unlink(e);
          if (op < m) {
            unlink(e + 1);
            remaining--;
          }
          e = next[HEAD]!;
          continue;
        }
        clear(op);
        account(op, 1);
      }
      e = next[e]!;
      continue;
    }
    // A return entry: `op` should have been linearized by now.
    const depth = m - remaining;
    if (depth > bestDepth) {
      bestDepth = depth;
      bestOp = op;
      bestStates = [state];
      bestPrefix = Array.from(stackOp.subarray(Math.max(0, sp - 8), sp));
    } else if (depth === bestDepth && op === bestOp && bestStates.length < 8 && !bestStates.includes(state)) {
      bestStates.push(state);
    }
    if (sp === 0) {
      outcome = 'fail';
      break;
    }
    const top = stackOp[--sp]!;
    state = stackState[sp]!;
    clear(top);
    account(top, 1);
    if (top < m) {
      relink(2 * top + 1);
      remaining++;
    }
    relink(2 * top);
    e = next[2 * top]!;
  }

  return {
    outcome,
    steps: Math.min(steps, budget),
    configurations: entries,
    bestOp,
    bestStates,
    bestPrefix,
  };
}
