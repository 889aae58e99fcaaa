/**
 * The naive checker the optimised one is compared with: pair events per process, then try
 * every order of the operations that respects real time, depth first, with no memo and no
 * pruning. Exponential; for small histories only.
 */
import type { HistoryEvent } from '../src/index.js';

interface NaiveOp {
  f: string;
  key: string;
  value: unknown;
  result: unknown;
  call: bigint;
  /** null: unknown outcome, may happen at any time after `call`, or never. */
  ret: bigint | null;
}

type State = ReadonlyMap<string, string>;

interface Txn {
  compare: { key: string; value?: string; exists?: boolean }[];
  success: { op: string; key: string; value?: string }[];
  failure: { op: string; key: string; value?: string }[];
}

/** Apply one operation to the whole key-value state; undefined when it is illegal in it. */
function apply(state: State, o: NaiveOp): { next: State } | undefined {
  if (o.f !== 'txn') {
    const r = applyKey(state.get(o.key) ?? null, o);
    if (!r) return undefined;
    const next = new Map(state);
    if (r.next === null) next.delete(o.key);
    else next.set(o.key, r.next);
    return { next };
  }
  const t = o.value as Txn;
  const holds = t.compare.every((c) =>
    c.value !== undefined ? state.get(c.key) === c.value : state.has(c.key) === c.exists,
  );
  const out = o.ret === null ? null : (o.result as { succeeded: boolean; reads: (string | null)[] });
  if (out && out.succeeded !== holds) return undefined;
  const next = new Map(state);
  let r = 0;
  for (const st of holds ? t.success : t.failure) {
    if (st.op === 'get') {
      if (out && out.reads[r++] !== (next.get(st.key) ?? null)) return undefined;
    } else if (st.op === 'put') next.set(st.key, st.value!);
    else next.delete(st.key);
  }
  return { next };
}

/** Apply one single-key operation; undefined when it is illegal in this state. */
function applyKey(state: string | null, o: NaiveOp): { next: string | null } | undefined {
  switch (o.f) {
    case 'put':
      return { next: o.value as string };
    case 'get':
      return o.result === state ? { next: state } : undefined;
    case 'cas': {
      const [expected, next] = o.value as [string | null, string | null];
      return expected === state ? { next } : undefined;
    }
    case 'delete':
      if (o.ret !== null && typeof o.result === 'boolean' && o.result !== (state !== null)) return undefined;
      return { next: null };
  }
  throw new Error(`unknown f ${o.f}`);
}

/** Operations per key, or all under one name when transactions tie keys together. */
function pair(events: readonly HistoryEvent[]): Map<string, NaiveOp[]> {
  const open = new Map<number, HistoryEvent>();
  const keys = new Map<string, NaiveOp[]>();
  const whole = events.some((e) => e.f === 'txn');
  const add = (inv: HistoryEvent, ret: bigint | null, result: unknown) => {
    if (!['put', 'get', 'cas', 'delete', 'txn'].includes(inv.f)) return;
    if (inv.f === 'get' && ret === null) return; // an unknown read says nothing
    const name = whole ? '*' : inv.key;
    const list = keys.get(name) ?? [];
    keys.set(name, list);
    list.push({ f: inv.f, key: inv.key, value: inv.value, result, call: BigInt(inv.time), ret });
  };
  for (const e of events) {
    if (e.type === 'invoke') {
      open.set(e.process, e);
      continue;
    }
    const inv = open.get(e.process)!;
    open.delete(e.process);
    if (e.type === 'fail') continue;
    if (e.type === 'info') add(inv, null, null);
    else add(inv, BigInt(e.time), e.value);
  }
  for (const inv of open.values()) add(inv, null, null);
  return keys;
}

function linearizableKey(ops: NaiveOp[]): boolean {
  const done = ops.map(() => false);
  const okLeft = () => ops.some((o, i) => !done[i] && o.ret !== null);
  const search = (state: State): boolean => {
    if (!okLeft()) return true;
    for (let i = 0; i < ops.length; i++) {
      if (done[i]) continue;
      const o = ops[i]!;
      // o may go next only if no pending completed operation finished before o began.
      if (ops.some((p, j) => !done[j] && j !== i && p.ret !== null && p.ret < o.call)) continue;
      const r = apply(state, o);
      if (!r) continue;
      done[i] = true;
      if (search(r.next)) return true;
      done[i] = false;
    }
    return false;
  };
  return search(new Map());
}

/** Is the history linearizable (keys independent)? */
export function naiveLinearizable(events: readonly HistoryEvent[]): boolean {
  for (const ops of pair(events).values()) if (!linearizableKey(ops)) return false;
  return true;
}
