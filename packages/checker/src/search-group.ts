/**
 * The linearizability search for a group of keys that transactions tie together. A
 * transaction reads and writes several keys at one point in time, so its keys are no
 * longer independent registers: the group is searched as one object whose state is the
 * tuple of its keys' values. The search is the same as for one key (`lowe` in
 * search.ts); only the model differs. Tuples are interned as small integers, the initial
 * one (every key absent) being 0.
 *
 * An `info` operation is dropped before the search only when none of what it could write
 * is ever observed: no read, compare or compare-and-set expects that value of that key,
 * nothing observes the key's mere presence (a delete that reports what it found, an
 * `exists` compare), and no transaction that took its failure branch compared that key (a
 * failed compare observes that the key did *not* hold a value, which any write helps
 * explain).
 */
import { type Operation, type TxnSpec, txnKeys } from './history.js';
import {
  DEFAULT_BUDGET,
  engineOrder,
  interner,
  lowe,
  type SearchOptions,
  type SearchOutcome,
} from './search.js';

export interface GroupSearchResult {
  readonly outcome: SearchOutcome;
  readonly steps: number;
  readonly configurations: number;
  readonly prunedInfo: number;
  readonly searched: number;
  readonly blocked?: Operation;
  /** The group's states in the attempts that got that far, each as `{key: value, ...}`. */
  readonly blockedStates?: readonly string[];
  readonly prefix?: readonly Operation[];
}

/** The keys one operation touches. */
export function opKeys(o: Operation): string[] {
  return o.f === 'txn' ? txnKeys(o.value) : [o.key];
}

/** Check that operations over several keys, transactions among them, are linearizable. */
export function searchGroup(all: readonly Operation[], options: SearchOptions = {}): GroupSearchResult {
  const budget = options.budget ?? DEFAULT_BUDGET;
  const prune = options.prune ?? true;

  const { id: slot, names: keys } = interner<string>();
  for (const o of all) for (const k of opKeys(o)) slot(k);
  // Values as small integers; 0 is "absent".
  const { id, names } = interner<string | null>(null);

  // What is observed, to drop info operations that cannot matter.
  const observed = new Set<string>();
  const presence = new Set<number>();
  const negative = new Set<number>();
  const see = (k: string, v: string | null) => observed.add(`${slot(k)}:${id(v)}`);
  const compares = (t: TxnSpec) => {
    for (const c of t.compare) {
      if ('value' in c) see(c.key, c.value);
      else presence.add(slot(c.key));
    }
  };
  for (const o of all) {
    if (o.status !== 'ok') {
      if (o.f === 'cas') see(o.key, o.value[0]);
      if (o.f === 'txn') compares(o.value);
      continue;
    }
    switch (o.f) {
      case 'get':
        see(o.key, o.value);
        break;
      case 'cas':
        see(o.key, o.value[0]);
        break;
      case 'delete':
        if (o.value === true) presence.add(slot(o.key));
        else if (o.value === false) see(o.key, null);
        break;
      case 'txn': {
        compares(o.value);
        const out = o.outcome!;
        if (!out.succeeded) for (const c of o.value.compare) negative.add(slot(c.key));
        const gets = (out.succeeded ? o.value.success : o.value.failure).filter((s) => s.op === 'get');
        for (const [j, g] of gets.entries()) see(g.key, out.reads[j] ?? null);
        break;
      }
    }
  }
  const matters = (k: string, v: string | null) => {
    const s = slot(k);
    return observed.has(`${s}:${id(v)}`) || presence.has(s) || negative.has(s);
  };
  const writesMatter = (o: Operation): boolean => {
    switch (o.f) {
      case 'put':
        return matters(o.key, o.value);
      case 'cas':
        return matters(o.key, o.value[1]);
      case 'delete':
        return matters(o.key, null);
      case 'txn':
        return [...o.value.success, ...o.value.failure].some(
          (s) => s.op !== 'get' && matters(s.key, s.op === 'put' ? s.value : null),
        );
      default:
        return false;
    }
  };

  const okOps: Operation[] = [];
  const infoOps: Operation[] = [];
  let prunedInfo = 0;
  for (const o of all) {
    if (o.status === 'ok') okOps.push(o);
    else if (writesMatter(o)) infoOps.push(o);
    else prunedInfo++;
  }
  const { ops, m, n, time } = engineOrder(okOps, infoOps);

  // Interned tuples: the state of the group (every key absent is 0).
  const tuples: Int32Array[] = [new Int32Array(keys.length)];
  const tupleIds = interner<string>(tuples[0]!.join(','));
  const intern = (t: Int32Array): number => {
    const x = tupleIds.id(t.join(','));
    if (x === tuples.length) tuples.push(t);
    return x;
  };
  const setting = (s: number, at: number, v: number): number => {
    const t = tuples[s]!;
    if (t[at] === v) return s;
    const u = t.slice();
    u[at] = v;
    return intern(u);
  };

  // Each operation compiled to a transition on tuple ids.
  const transitionOf = (o: Operation): ((s: number) => number) => {
    switch (o.f) {
      case 'put': {
        const at = slot(o.key);
        const v = id(o.value);
        return (s) => setting(s, at, v);
      }
      case 'get': {
        const at = slot(o.key);
        const v = id(o.value);
        return (s) => (tuples[s]![at] === v ? s : -1);
      }
      case 'cas': {
        const at = slot(o.key);
        const want = id(o.value[0]);
        const v = id(o.value[1]);
        return (s) => (tuples[s]![at] === want ? setting(s, at, v) : -1);
      }
      case 'delete': {
        const at = slot(o.key);
        const found = o.status === 'ok' ? o.value : null;
        return (s) => (found === null || found === (tuples[s]![at] !== 0) ? setting(s, at, 0) : -1);
      }
      case 'txn': {
        const cmp = o.value.compare.map((c) =>
          'value' in c
            ? { at: slot(c.key), v: id(c.value), exists: null }
            : { at: slot(c.key), v: 0, exists: c.exists },
        );
        const compile = (steps: TxnSpec['success']) =>
          steps.map((st) => ({
            at: slot(st.key),
            kind: st.op,
            v: st.op === 'put' ? id(st.value) : 0,
          }));
        const success = compile(o.value.success);
        const failure = compile(o.value.failure);
        const out = o.status === 'ok' ? o.outcome : null;
        const reads = out ? out.reads.map(id) : null;
        return (s) => {
          const t = tuples[s]!;
          let holds = true;
          for (const c of cmp) {
            const cur = t[c.at]!;
            if (c.exists === null ? cur !== c.v : (cur !== 0) !== c.exists) {
              holds = false;
              break;
            }
          }
          if (out && holds !== out.succeeded) return -1;
          let u: Int32Array | null = null;
          let r = 0;
          for (const st of holds ? success : failure) {
            const cur = (u ?? t)[st.at]!;
            if (st.kind === 'get') {
              if (reads && reads[r++] !== cur) return -1;
              continue;
            }
            const v = st.kind === 'put' ? st.v : 0;
            if (cur === v) continue;
            u ??= t.slice();
            u[st.at] = v;
          }
          return u ? intern(u) : s;
        };
      }
    }
  };
  const transitions = ops.map(transitionOf);

  // Pruning, as for one key, over (key, value) pairs: a pair some ok operation left needs
  // (a read, a compare that held, a compare-and-set's expectation) that no operation left
  // can write is stuck, and a state that does not hold every stuck pair is dead.
  const V = names.length;
  const needs: number[][] = ops.map((o, i) => (i < m ? needsOf(o) : []));
  const writes: number[][] = ops.map(writesOfOp);
  function needsOf(o: Operation): number[] {
    switch (o.f) {
      case 'get':
        return [slot(o.key) * V + id(o.value)];
      case 'cas':
        return [slot(o.key) * V + id(o.value[0])];
      case 'delete':
        return o.value === false ? [slot(o.key) * V] : [];
      case 'put':
        return [];
      case 'txn': {
        const out = o.outcome!;
        const pairs: number[] = [];
        if (out.succeeded)
          for (const c of o.value.compare) if ('value' in c) pairs.push(slot(c.key) * V + id(c.value));
        // A get reads the state before the transaction only until the branch writes its key.
        const written = new Set<string>();
        let r = 0;
        for (const st of out.succeeded ? o.value.success : o.value.failure) {
          if (st.op === 'get') {
            const v = out.reads[r++] ?? null;
            if (!written.has(st.key)) pairs.push(slot(st.key) * V + id(v));
          } else written.add(st.key);
        }
        return pairs;
      }
    }
  }
  function writesOfOp(o: Operation): number[] {
    switch (o.f) {
      case 'put':
        return [slot(o.key) * V + id(o.value)];
      case 'cas':
        return [slot(o.key) * V + id(o.value[1])];
      case 'delete':
        return [slot(o.key) * V];
      case 'get':
        return [];
      case 'txn': {
        const branches = o.outcome
          ? [o.outcome.succeeded ? o.value.success : o.value.failure]
          : [o.value.success, o.value.failure];
        const pairs: number[] = [];
        for (const b of branches)
          for (const st of b)
            if (st.op !== 'get') pairs.push(slot(st.key) * V + (st.op === 'put' ? id(st.value) : 0));
        return pairs;
      }
    }
  }
  const needLeft = new Map<number, number>();
  const writesLeft = new Map<number, number>();
  const bump = (map: Map<number, number>, k: number, d: number) => map.set(k, (map.get(k) ?? 0) + d);
  for (let i = 0; i < n; i++) {
    for (const p of needs[i]!) bump(needLeft, p, 1);
    for (const p of writes[i]!) bump(writesLeft, p, 1);
  }
  const stuck = new Set<number>();
  const restate = (p: number) => {
    if ((needLeft.get(p) ?? 0) > 0 && (writesLeft.get(p) ?? 0) === 0) stuck.add(p);
    else stuck.delete(p);
  };
  for (const p of needLeft.keys()) restate(p);
  const account = (i: number, d: number) => {
    for (const p of needs[i]!) {
      bump(needLeft, p, d);
      restate(p);
    }
    for (const p of writes[i]!) {
      bump(writesLeft, p, d);
      restate(p);
    }
  };
  const dead = (s: number) => {
    if (!prune || stuck.size === 0) return false;
    const t = tuples[s]!;
    for (const p of stuck) if (t[Math.floor(p / V)] !== p % V) return true;
    return false;
  };

  const r = lowe({ n, m, time, step: (s, i) => transitions[i]!(s), account, dead, budget });
  const result = {
    outcome: r.outcome,
    steps: r.steps,
    configurations: r.configurations,
    prunedInfo,
    searched: n,
  };
  if (r.outcome !== 'fail') return result;
  const show = (s: number) =>
    `{${keys.map((k, j) => `${JSON.stringify(k)}: ${tuples[s]![j] === 0 ? 'absent' : JSON.stringify(names[tuples[s]![j]!])}`).join(', ')}}`;
  return {
    ...result,
    blocked: ops[r.bestOp]!,
    blockedStates: r.bestStates.map(show),
    prefix: r.bestPrefix.map((i) => ops[i]!),
  };
}
