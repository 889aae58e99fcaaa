/**
 * The naive checker the optimised one is compared with: pair events per process, then try
 * every order of the operations that respects real time, depth first, with no memo and no
 * pruning. Exponential; for small histories only.
 */
import type { HistoryEvent } from '../src/index.js';

interface NaiveOp {
  f: string;
  value: unknown;
  result: unknown;
  call: bigint;
  /** null: unknown outcome, may happen at any time after `call`, or never. */
  ret: bigint | null;
}

/** Apply one operation; undefined when it is illegal in this state. */
function apply(state: string | null, o: NaiveOp): { next: string | null } | undefined {
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

function pair(events: readonly HistoryEvent[]): Map<string, NaiveOp[]> {
  const open = new Map<number, HistoryEvent>();
  const keys = new Map<string, NaiveOp[]>();
  const add = (inv: HistoryEvent, ret: bigint | null, result: unknown) => {
    if (!['put', 'get', 'cas', 'delete'].includes(inv.f)) return;
    if (inv.f === 'get' && ret === null) return; // an unknown read says nothing
    const list = keys.get(inv.key) ?? [];
    keys.set(inv.key, list);
    list.push({ f: inv.f, value: inv.value, result, call: BigInt(inv.time), ret });
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
  const search = (state: string | null): boolean => {
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
  return search(null);
}

/** Is the history linearizable (keys independent)? */
export function naiveLinearizable(events: readonly HistoryEvent[]): boolean {
  for (const ops of pair(events).values()) if (!linearizableKey(ops)) return false;
  return true;
}
