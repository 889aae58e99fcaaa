/**
 * `checkHistory`: is a history linearizable for the key-value model? Keys are
 * independent registers (linearizability is compositional), so each key is searched on
 * its own, with its own budget; one key over budget makes the answer `unknown` unless
 * another key already fails. A transaction ties its keys together: keys joined by
 * transactions (directly or through other keys) form a group, searched as one object
 * whose state is every key's value.
 */
import {
  earliestCall,
  type HistoryCounts,
  type HistoryEvent,
  type Operation,
  type ParsedHistory,
  type ParserOptions,
  parseHistory,
} from './history.js';
import { DEFAULT_BUDGET, searchKey } from './search.js';
import { opKeys, searchGroup } from './search-group.js';

export interface CheckOptions extends ParserOptions {
  /** Search steps allowed per key before its answer is `unknown` (default 5,000,000). */
  budget?: number;
  /** Stop after this many non-linearizable keys (default 10). */
  maxFailures?: number;
}

/** One operation as shown in a report. */
export interface OpView {
  readonly process: number;
  readonly f: Operation['f'];
  readonly status: 'ok' | 'info';
  /** What it did: `put "a"`, `get -> "a"`, `cas "a"->"b"`, `delete`. */
  readonly text: string;
  /** Invocation and completion, in ms from the key's first invocation (completion null when unknown). */
  readonly fromMs: number;
  readonly toMs: number | null;
  readonly invokeLine: number;
  readonly completeLine: number | null;
}

export interface KeyFailure {
  readonly key: string;
  /** The operation no linearization could place. */
  readonly op: OpView;
  /** Why, in a sentence. */
  readonly reason: string;
  /** The conflicting operations around it, in invocation order (the blocked one included). */
  readonly window: readonly OpView[];
}

export interface CheckResult {
  readonly linearizable: true | false | 'unknown';
  /** Keys checked. */
  readonly keys: number;
  /** Groups of keys that transactions tie together, each searched as one object. */
  readonly groups: number;
  /** Register operations checked (`ok` ones and `info` writes). */
  readonly ops: number;
  readonly failures: readonly KeyFailure[];
  /** Keys whose search ran out of budget. */
  readonly unknownKeys: readonly string[];
  readonly counts: HistoryCounts;
  /** Search steps over all keys. */
  readonly steps: number;
  /** `info` writes dropped because nobody observed their value. */
  readonly prunedInfo: number;
  /** Wall time, parsing included. */
  readonly ms: number;
}

/** Check a history: a file path, events in memory, or an already parsed history. */
export async function checkHistory(
  input: string | Iterable<HistoryEvent> | ParsedHistory,
  options: CheckOptions = {},
): Promise<CheckResult> {
  const t0 = performance.now();
  const parsed = isParsed(input) ? input : await parseHistory(input, options);
  return checkParsed(parsed, options, t0);
}

function isParsed(x: unknown): x is ParsedHistory {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && 'ops' in x && 'counts' in x;
}

/**
 * Group operations by the objects to search, keeping their order: one key, or the keys
 * that transactions tie together (named by its keys joined with ", ").
 */
export function byKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    let x = k;
    while (x !== r) {
      const up = parent.get(x)!;
      parent.set(x, r);
      x = up;
    }
    return r;
  };
  for (const o of ops) {
    const ks = opKeys(o);
    for (const k of ks) if (!parent.has(k)) parent.set(k, k);
    for (let i = 1; i < ks.length; i++) {
      const a = find(ks[0]!);
      const b = find(ks[i]!);
      if (a !== b) parent.set(b, a);
    }
  }
  const members = new Map<string, string[]>();
  for (const k of parent.keys()) {
    const r = find(k);
    const l = members.get(r);
    if (l) l.push(k);
    else members.set(r, [k]);
  }
  const groups = new Map<string, Operation[]>();
  const names = new Map<string, string>();
  for (const [r, ks] of members) names.set(r, ks.join(', '));
  for (const o of ops) {
    const ks = opKeys(o);
    if (ks.length === 0) continue;
    const name = names.get(find(ks[0]!))!;
    const l = groups.get(name);
    if (l) l.push(o);
    else groups.set(name, [o]);
  }
  return groups;
}

/** Check a parsed history (synchronous). */
export function checkParsed(
  parsed: ParsedHistory,
  options: CheckOptions = {},
  t0 = performance.now(),
): CheckResult {
  const budget = options.budget ?? DEFAULT_BUDGET;
  const maxFailures = options.maxFailures ?? 10;
  const keys = byKey(parsed.ops);
  const failures: KeyFailure[] = [];
  const unknownKeys: string[] = [];
  let steps = 0;
  let prunedInfo = 0;
  for (const [key, ops] of keys) {
    if (failures.length >= maxFailures) break;
    if (ops.some((o) => o.f === 'txn')) {
      const r = searchGroup(ops, { budget });
      steps += r.steps;
      prunedInfo += r.prunedInfo;
      if (r.outcome === 'unknown') unknownKeys.push(key);
      else if (r.outcome === 'fail') failures.push(explainGroupFailure(key, ops, budget, r));
      continue;
    }
    const r = searchKey(ops, { budget });
    steps += r.steps;
    prunedInfo += r.prunedInfo;
    if (r.outcome === 'unknown') unknownKeys.push(key);
    else if (r.outcome === 'fail') {
      // Pruning finds the answer sooner but stops short of the operation at fault; an
      // unpruned search (within the same budget) reaches the deepest attempt to report.
      const full = searchKey(ops, { budget, prune: false });
      const d = full.outcome === 'fail' ? full : r;
      failures.push(explain(key, ops, d.blocked!, d.blockedStates!, d.prefix!));
    }
  }
  return {
    linearizable: failures.length > 0 ? false : unknownKeys.length > 0 ? 'unknown' : true,
    keys: new Set(parsed.ops.flatMap(opKeys)).size,
    groups: [...keys.values()].filter((l) => l.some((o) => o.f === 'txn')).length,
    ops: parsed.ops.length,
    failures,
    unknownKeys,
    counts: parsed.counts,
    steps,
    prunedInfo,
    ms: performance.now() - t0,
  };
}

const q = (v: string | null) => (v === null ? 'absent' : JSON.stringify(v));

function opText(o: Operation): string {
  switch (o.f) {
    case 'put':
      return `put ${JSON.stringify(o.value)}`;
    case 'get':
      return `get -> ${q(o.value)}`;
    case 'cas':
      return `cas ${q(o.value[0])} -> ${o.value[1] === null ? 'delete' : JSON.stringify(o.value[1])}`;
    case 'delete':
      return o.value === null ? 'delete' : `delete -> ${o.value ? 'deleted' : 'was absent'}`;
    case 'txn': {
      const t = o.value;
      const cmp = t.compare
        .map((c) =>
          'value' in c
            ? `${c.key} = ${JSON.stringify(c.value)}`
            : `${c.key} ${c.exists ? 'exists' : 'absent'}`,
        )
        .join(' and ');
      const steps = (list: typeof t.success, reads: readonly (string | null)[] | null) => {
        let r = 0;
        return list
          .map((st) =>
            st.op === 'put'
              ? `put ${st.key} ${JSON.stringify(st.value)}`
              : st.op === 'delete'
                ? `delete ${st.key}`
                : `get ${st.key}${reads ? ` -> ${q(reads[r++] ?? null)}` : ''}`,
          )
          .join('; ');
      };
      const out = o.outcome;
      if (out === null)
        return `txn if ${cmp || 'true'} then [${steps(t.success, null)}] else [${steps(t.failure, null)}]`;
      return `txn ${cmp || 'true'} ${out.succeeded ? 'held' : 'failed'}: [${steps(out.succeeded ? t.success : t.failure, out.reads)}]`;
    }
  }
}

export function viewOp(o: Operation, base: bigint): OpView {
  return {
    process: o.process,
    f: o.f,
    status: o.status,
    text: opText(o),
    fromMs: Number(o.call - base) / 1e6,
    toMs: o.ret === null ? null : Number(o.ret - base) / 1e6,
    invokeLine: o.invokeLine,
    completeLine: o.completeLine,
  };
}

/**
 * The operation at fault in a group that failed. Pruning finds a failure early but says
 * little about where; an unpruned search of a long history runs out of budget. So find
 * the shortest failing prefix instead: the history as it stood when the k-th `ok`
 * operation completed (operations still in flight then become unknown writes, reads in
 * flight are dropped, later ones are gone). A prefix of a linearizable history is
 * linearizable, so the answer only turns once, and a binary search finds the k where it
 * does: that operation is the first one no order explains.
 */
function explainGroupFailure(
  key: string,
  ops: readonly Operation[],
  budget: number,
  fallback: ReturnType<typeof searchGroup>,
): KeyFailure {
  const done = ops
    .filter((o) => o.status === 'ok')
    .sort((a, b) => (a.ret! < b.ret! ? -1 : a.ret! > b.ret! ? 1 : 0));
  const prefixAt = (t: bigint): Operation[] => {
    const out: Operation[] = [];
    for (const o of ops) {
      if (o.call > t) continue;
      if (o.status === 'ok' && o.ret! <= t) out.push(o);
      else if (o.f !== 'get' && !(o.f === 'txn' && readOnly(o))) {
        out.push({
          ...o,
          status: 'info',
          ret: null,
          ...(o.f === 'txn' ? { outcome: null } : {}),
        } as Operation);
      }
    }
    return out;
  };
  let lo = 1;
  let hi = done.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (searchGroup(prefixAt(done[mid - 1]!.ret!), { budget }).outcome === 'fail') hi = mid;
    else lo = mid + 1;
  }
  const culprit = done[lo - 1]!;
  const d = searchGroup(prefixAt(culprit.ret!), { budget });
  return explainGroup(key, ops, culprit, (d.outcome === 'fail' ? d : fallback).prefix!);
}

function readOnly(o: Operation & { f: 'txn' }): boolean {
  return o.value.success.every((s) => s.op === 'get') && o.value.failure.every((s) => s.op === 'get');
}

/** The blocked operation, what was concurrent with it, and what was linearized just before it. */
function windowAround(
  ops: readonly Operation[],
  blocked: Operation,
  prefix: readonly Operation[],
  base: bigint,
): OpView[] {
  const end = blocked.ret ?? blocked.call;
  const concurrent = ops.filter(
    (o) => o !== blocked && o.call <= end && (o.ret === null || o.ret >= blocked.call),
  );
  const picked = new Set<Operation>([...prefix.slice(-4), blocked, ...concurrent.slice(0, 10)]);
  return [...picked].sort((a, b) => a.index - b.index).map((o) => viewOp(o, base));
}

function explainGroup(
  keys: string,
  ops: readonly Operation[],
  blocked: Operation,
  prefix: readonly Operation[],
): KeyFailure {
  const base = earliestCall(ops);
  const window = windowAround(ops, blocked, prefix, base);
  const v = viewOp(blocked, base);
  const reason = `no order of the operations before it, consistent with real time, explains process ${v.process}'s ${v.text} (line ${v.invokeLine}): the history is linearizable up to the completion before this one`;
  return { key: keys, op: viewOp(blocked, base), reason, window };
}

function explain(
  key: string,
  ops: readonly Operation[],
  blocked: Operation,
  states: readonly (string | null)[],
  prefix: readonly Operation[],
): KeyFailure {
  const base = earliestCall(ops);
  const end = blocked.ret ?? blocked.call;
  const window = windowAround(ops, blocked, prefix, base);
  const seen = states.map(q).join(' or ');
  let reason: string;
  const writesOf = (v: string | null) =>
    ops.filter(
      (o) =>
        (o.f === 'put' && o.value === v) ||
        (o.f === 'cas' && o.value[1] === v) ||
        (o.f === 'delete' && v === null),
    );
  if (blocked.f === 'get' || blocked.f === 'cas') {
    const want = blocked.f === 'get' ? blocked.value : blocked.value[0];
    const what = blocked.f === 'get' ? `read ${q(want)}` : `succeeded expecting ${q(want)}`;
    const writers = writesOf(want);
    if (want !== null && writers.length === 0) {
      reason = `${blocked.f} ${what}, a value never written to this key`;
    } else if (want !== null && writers.every((w) => w.call > end)) {
      reason = `${blocked.f} ${what}, but every write of that value was invoked after it completed`;
    } else {
      reason = `${blocked.f} ${what}, but in every order consistent with real time the value at that point was ${seen}`;
    }
  } else {
    reason = `no order of these operations consistent with real time explains what was read afterwards (the value before this ${blocked.f} could be ${seen})`;
  }
  return { key, op: viewOp(blocked, base), reason, window };
}
