/**
 * `checkHistory`: is a history linearizable for the key-value register? Keys are
 * independent registers (linearizability is compositional), so each key is searched on
 * its own, with its own budget; one key over budget makes the answer `unknown` unless
 * another key already fails.
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

/** Group operations by key, keeping their order. */
export function byKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const keys = new Map<string, Operation[]>();
  for (const o of ops) {
    const l = keys.get(o.key);
    if (l) l.push(o);
    else keys.set(o.key, [o]);
  }
  return keys;
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
    keys: keys.size,
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

function explain(
  key: string,
  ops: readonly Operation[],
  blocked: Operation,
  states: readonly (string | null)[],
  prefix: readonly Operation[],
): KeyFailure {
  const base = earliestCall(ops);
  const end = blocked.ret ?? blocked.call;
  // The blocked operation, what was concurrent with it, and what was linearized just before.
  const concurrent = ops.filter(
    (o) => o !== blocked && o.call <= end && (o.ret === null || o.ret >= blocked.call),
  );
  const picked = new Set<Operation>([...prefix.slice(-4), blocked, ...concurrent.slice(0, 10)]);
  const window = [...picked].sort((a, b) => a.index - b.index).map((o) => viewOp(o, base));
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
