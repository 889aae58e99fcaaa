/**
 * The history format and its streaming parser. A history is JSON Lines, one event per
 * line: an `invoke` when a process starts an operation, then `ok`, `fail` (definitely did
 * not happen) or `info` (outcome unknown) when it ends. The parser validates every line,
 * pairs each invocation with its process's next completion, and produces operations.
 */
import { createReadStream } from 'node:fs';
import {
  CheckerError,
  CheckerErrorCode,
  HistoryFormatError,
  type HistoryIssue,
  HistoryIssueCode,
} from './errors.js';

/** Register operations, checked against the key-value model. */
export type RegisterF = 'put' | 'get' | 'cas' | 'delete' | 'txn';
/** Lease operations: accepted and counted, not checked. */
export type LeaseF = 'acquire' | 'renew' | 'release';
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

/** One line of a history, as written. */
export interface HistoryEvent {
  process: number;
  type: EventType;
  f: string;
  key: string;
  /** put: the value; get: the value read (null when absent); cas: [expected, new]. */
  value?: unknown;
  /** Monotonic nanoseconds: an integer, a bigint, or a string of decimal digits. */
  time: number | bigint | string;
}

interface OpBase {
  /** Position among the history's register operations, in invocation order. */
  readonly index: number;
  readonly process: number;
  readonly key: string;
  /** `ok`: it happened; `info`: it may have happened at any time after its invocation, or never. */
  readonly status: 'ok' | 'info';
  /** Invocation time (ns). */
  readonly call: bigint;
  /** Completion time (ns); null for `info` and for invocations that never completed. */
  readonly ret: bigint | null;
  /** Line of the invocation (1-based). */
  readonly invokeLine: number;
  /** Line of the completion, null when there was none. */
  readonly completeLine: number | null;
}

/** One condition of a transaction: the key holds this value, or exists (or not). */
export type TxnCompare =
  | { readonly key: string; readonly value: string }
  | { readonly key: string; readonly exists: boolean };

/** One step of a transaction's branch. */
export type TxnStep =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'get'; readonly key: string };

/**
 * A transaction as invoked: if every compare holds, the `success` steps run, else the
 * `failure` steps; atomically. Version compares are not modeled (the history cannot tell
 * versions apart from values).
 */
export interface TxnSpec {
  readonly compare: readonly TxnCompare[];
  readonly success: readonly TxnStep[];
  readonly failure: readonly TxnStep[];
}

/** What an `ok` transaction answered: which branch ran, and what its gets read, in order. */
export interface TxnOutcome {
  readonly succeeded: boolean;
  readonly reads: readonly (string | null)[];
}

export type Operation =
  | (OpBase & { readonly f: 'put'; readonly value: string })
  | (OpBase & { readonly f: 'get'; readonly value: string | null })
  | (OpBase & { readonly f: 'cas'; readonly value: readonly [string | null, string | null] })
  /** value: whether a key was deleted, when the completion says so; null otherwise. */
  | (OpBase & { readonly f: 'delete'; readonly value: boolean | null })
  /** `outcome`: null for an `info` transaction. `key` is whatever the history named. */
  | (OpBase & { readonly f: 'txn'; readonly value: TxnSpec; readonly outcome: TxnOutcome | null });

export interface HistoryCounts {
  /** Lines (or events) holding an event. */
  events: number;
  /** Register operations invoked. */
  invoked: number;
  ok: number;
  /** Definite failures: dropped, they never took effect. */
  fail: number;
  /** Unknown outcomes, including invocations that never completed. */
  info: number;
  /** Invocations with no completion at the end of the history (counted in `info`). */
  unfinished: number;
  /** Reads with an unknown outcome or that failed: dropped, they constrain nothing. */
  droppedReads: number;
  /** Lease operations (acquire, renew, release): skipped. */
  leaseOps: number;
}

export interface ParsedHistory {
  /** Operations to check: `ok` ones and `info` writes, in invocation order. */
  readonly ops: Operation[];
  readonly counts: HistoryCounts;
}

const REGISTER_F = new Set<string>(['put', 'get', 'cas', 'delete', 'txn']);
const LEASE_F = new Set<string>(['acquire', 'renew', 'release']);
const TYPES = new Set<string>(['invoke', 'ok', 'fail', 'info']);
const DIGITS = /^\d+$/;

interface Open {
  f: string;
  key: string;
  value: unknown;
  call: bigint;
  line: number;
}

export interface ParserOptions {
  /** Stop collecting after this many problems (default 20). */
  maxIssues?: number;
}

/**
 * The streaming parser: feed it lines (or already-parsed events) in order with `line()` /
 * `event()`, then call `end()`. Problems are collected in `issues`; `end()` returns the
 * operations whether or not there were any, so callers decide (see `finish()`).
 */
export class HistoryParser {
  readonly issues: HistoryIssue[] = [];
  /** Set when parsing stopped early at `maxIssues`. */
  truncated = false;
  private readonly maxIssues: number;
  private readonly open = new Map<number, Open>();
  private readonly pending: { index: number; invokeLine: number }[] = [];
  private readonly counts: HistoryCounts = {
    events: 0,
    invoked: 0,
    ok: 0,
    fail: 0,
    info: 0,
    unfinished: 0,
    droppedReads: 0,
    leaseOps: 0,
  };

  constructor(options: ParserOptions = {}) {
    this.maxIssues = options.maxIssues ?? 20;
  }

  /** True once `maxIssues` problems were found: stop feeding. */
  get full(): boolean {
    return this.truncated;
  }

  private issue(line: number, code: HistoryIssueCode, message: string): void {
    if (this.issues.length >= this.maxIssues) {
      this.truncated = true;
      return;
    }
    this.issues.push({ line, code, message });
  }

  private bad(line: number, r: Record<string, unknown>, field: string, want: string): void {
    this.issue(line, HistoryIssueCode.Field, `"${field}" must be ${want}, found ${describe(r[field])}`);
  }

  /** One line of JSON Lines text; blank lines are ignored. */
  line(text: string, lineNo: number): void {
    if (text.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      this.issue(lineNo, HistoryIssueCode.Json, `not valid JSON (${(err as Error).message})`);
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.issue(lineNo, HistoryIssueCode.Json, `expected a JSON object, found ${describe(v)}`);
      return;
    }
    const rec = v as Record<string, unknown>;
    // JSON.parse rounds integers above 2^53; read such a time from the text itself.
    if (typeof rec.time === 'number' && !Number.isSafeInteger(rec.time)) {
      const exact = exactTime(text, rec.time);
      if (exact !== null) rec.time = exact;
    }
    this.event(rec, lineNo);
  }

  /** One event, already parsed (from JSON or built in memory). */
  event(e: Record<string, unknown> | HistoryEvent, lineNo: number): void {
    const r = e as Record<string, unknown>;
    this.counts.events++;
    const { process, type, f, key } = r;
    let ok = true;
    if (typeof process !== 'number' || !Number.isSafeInteger(process) || process < 0) {
      this.bad(lineNo, r, 'process', 'a non-negative integer');
      ok = false;
    }
    if (typeof type !== 'string' || !TYPES.has(type)) {
      this.bad(lineNo, r, 'type', 'one of "invoke", "ok", "fail", "info"');
      ok = false;
    }
    if (typeof f !== 'string') {
      this.bad(lineNo, r, 'f', 'a string naming the operation');
      ok = false;
    } else if (!REGISTER_F.has(f) && !LEASE_F.has(f)) {
      this.issue(
        lineNo,
        HistoryIssueCode.UnknownOp,
        `unknown operation "f":${JSON.stringify(f)}; known: put, get, cas, delete, txn (checked), acquire, renew, release (skipped)`,
      );
      ok = false;
    }
    if (typeof key !== 'string') {
      this.bad(lineNo, r, 'key', 'a string');
      ok = false;
    }
    const time = toTime(r.time);
    if (time === null) {
      this.bad(
        lineNo,
        r,
        'time',
        'monotonic nanoseconds: a non-negative integer or a string of decimal digits',
      );
      ok = false;
    }
    if (!ok) return;
    const p = process as number;
    const fn = f as string;
    const k = key as string;
    const t = time as bigint;
    const isLease = LEASE_F.has(fn);
    const value = r.value;

    if (type === 'invoke') {
      const prev = this.open.get(p);
      if (prev) {
        this.issue(
          lineNo,
          HistoryIssueCode.DoubleInvoke,
          `process ${p} invokes ${fn} while its ${prev.f} from line ${prev.line} has not completed; a process runs one operation at a time (use a new process number after an "info")`,
        );
        return;
      }
      if (!isLease && !this.checkInvokeValue(fn, value, lineNo)) return;
      this.open.set(p, {
        f: fn,
        key: k,
        value: fn === 'txn' ? normalizeTxn(value as Record<string, unknown>) : value,
        call: t,
        line: lineNo,
      });
      if (isLease) this.counts.leaseOps++;
      else this.counts.invoked++;
      return;
    }

    const inv = this.open.get(p);
    if (!inv) {
      this.issue(
        lineNo,
        HistoryIssueCode.NoInvoke,
        `"${type}" for process ${p} with no open invocation (every completion follows an "invoke" of the same process)`,
      );
      return;
    }
    this.open.delete(p);
    if (inv.f !== fn || inv.key !== k) {
      this.issue(
        lineNo,
        HistoryIssueCode.Mismatch,
        `"${type}" of ${fn} ${JSON.stringify(k)} completes process ${p}'s ${inv.f} ${JSON.stringify(inv.key)} invoked at line ${inv.line}`,
      );
      return;
    }
    if (t < inv.call) {
      this.issue(
        lineNo,
        HistoryIssueCode.TimeOrder,
        `completion time ${t} is before its invocation's time ${inv.call} (line ${inv.line})`,
      );
      return;
    }
    if (isLease) return;
    if (!this.checkCompletionValue(fn, type as EventType, inv.value, value, lineNo)) return;
    if (type === 'fail') {
      this.counts.fail++;
      if (isRead(fn, inv.value)) this.counts.droppedReads++;
      return;
    }
    if (type === 'info') {
      this.counts.info++;
      if (isRead(fn, inv.value)) {
        this.counts.droppedReads++;
        return;
      }
      this.add(fn, k, p, 'info', inv, null, null, null);
      return;
    }
    this.counts.ok++;
    this.add(fn, k, p, 'ok', inv, t, lineNo, value);
  }

  private add(
    f: string,
    key: string,
    process: number,
    status: 'ok' | 'info',
    inv: Open,
    ret: bigint | null,
    completeLine: number | null,
    completion: unknown,
  ): void {
    let value: unknown;
    let outcome: TxnOutcome | null = null;
    if (f === 'txn') {
      value = inv.value;
      if (status === 'ok') {
        const c = completion as { succeeded: boolean; reads?: (string | null)[] };
        outcome = { succeeded: c.succeeded, reads: c.reads ?? [] };
      }
    } else if (f === 'put') value = inv.value;
    else if (f === 'cas') value = [(inv.value as unknown[])[0], (inv.value as unknown[])[1]];
    else if (f === 'get') value = completion;
    else value = typeof completion === 'boolean' ? completion : null;
    const op = {
      index: -1,
      process,
      key,
      f,
      value,
      ...(f === 'txn' ? { outcome } : {}),
      status,
      call: inv.call,
      ret,
      invokeLine: inv.line,
      completeLine,
    };
    this.pending.push(op);
  }

  private badValue(line: number, f: string, type: string | null, value: unknown, want: string): false {
    const what = type === null ? `a ${f} invocation` : `a ${f} "${type}"`;
    this.issue(line, HistoryIssueCode.Field, `"value" of ${what} must be ${want}, found ${describe(value)}`);
    return false;
  }

  private checkInvokeValue(f: string, value: unknown, line: number): boolean {
    switch (f) {
      case 'put':
        return typeof value === 'string' || this.badValue(line, f, null, value, 'the string written');
      case 'get':
      case 'delete':
        return (
          value === null || value === undefined || this.badValue(line, f, null, value, 'null (or absent)')
        );
      case 'cas':
        return (
          isCasValue(value) || this.badValue(line, f, null, value, '[expected, new], each a string or null')
        );
      case 'txn': {
        const why = txnProblem(value);
        return why === null || this.badValue(line, f, null, value, why);
      }
    }
    return true;
  }

  private checkCompletionValue(
    f: string,
    type: EventType,
    invoked: unknown,
    value: unknown,
    line: number,
  ): boolean {
    switch (f) {
      case 'put':
        if (value === null || value === undefined || value === invoked) return true;
        return this.badValue(
          line,
          f,
          type,
          value,
          `the invoked value ${JSON.stringify(invoked)}, null or absent`,
        );
      case 'cas': {
        if (value === null || value === undefined) return true;
        const inv = invoked as unknown[];
        if (isCasValue(value) && value[0] === inv[0] && value[1] === inv[1]) return true;
        return this.badValue(line, f, type, value, `the invoked ${JSON.stringify(invoked)}, null or absent`);
      }
      case 'get':
        if (type !== 'ok')
          return (
            value === undefined ||
            value === null ||
            typeof value === 'string' ||
            this.badValue(line, f, type, value, 'a string or null')
          );
        return (
          value === null ||
          typeof value === 'string' ||
          this.badValue(line, f, type, value, 'the string read, or null when the key was absent')
        );
      case 'delete':
        return (
          value === undefined ||
          value === null ||
          typeof value === 'boolean' ||
          this.badValue(line, f, type, value, 'null, absent, or whether a key was deleted (true/false)')
        );
      case 'txn': {
        if (type !== 'ok') return true;
        const want =
          '{"succeeded": true|false, "reads": [...]}: the branch that ran and, in order, what each of its gets read (a string, or null when absent)';
        if (typeof value !== 'object' || value === null || Array.isArray(value))
          return this.badValue(line, f, type, value, want);
        const c = value as Record<string, unknown>;
        if (typeof c.succeeded !== 'boolean') return this.badValue(line, f, type, value, want);
        const spec = invoked as TxnSpec;
        const gets = (c.succeeded ? spec.success : spec.failure).filter((s) => s.op === 'get').length;
        const reads = c.reads ?? [];
        if (
          !Array.isArray(reads) ||
          reads.length !== gets ||
          !reads.every((r) => r === null || typeof r === 'string')
        )
          return this.badValue(
            line,
            f,
            type,
            value,
            `${want}; the ${c.succeeded ? 'success' : 'failure'} branch has ${gets} get(s)`,
          );
        return true;
      }
    }
    return true;
  }

  /**
   * The operations. Invocations still open are unknown outcomes: writes become `info`,
   * reads are dropped.
   */
  end(): ParsedHistory {
    for (const [p, inv] of this.open) {
      if (LEASE_F.has(inv.f)) continue;
      this.counts.unfinished++;
      this.counts.info++;
      if (isRead(inv.f, inv.value)) {
        this.counts.droppedReads++;
        continue;
      }
      this.add(inv.f, inv.key, p, 'info', inv, null, null, null);
    }
    this.open.clear();
    // Invocation order: an operation's place is its invocation line's.
    this.pending.sort((a, b) => a.invokeLine - b.invokeLine);
    for (let i = 0; i < this.pending.length; i++) this.pending[i]!.index = i;
    return { ops: this.pending as unknown as Operation[], counts: { ...this.counts } };
  }
}

/** A get, or a transaction that writes nothing in either branch: unknown, it says nothing. */
function isRead(f: string, value: unknown): boolean {
  if (f === 'get') return true;
  if (f !== 'txn') return false;
  const t = value as TxnSpec;
  return t.success.every((s) => s.op === 'get') && t.failure.every((s) => s.op === 'get');
}

/** Why a transaction's invocation value is malformed, or null when it is well formed. */
function txnProblem(v: unknown): string | null {
  const shape =
    '{"compare": [{"key", "value"} | {"key", "exists"}], "success": [steps], "failure": [steps]}, each step {"op": "put", "key", "value"} | {"op": "delete"|"get", "key"}';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return shape;
  const t = v as Record<string, unknown>;
  for (const f of Object.keys(t))
    if (f !== 'compare' && f !== 'success' && f !== 'failure') return `${shape} (unknown field "${f}")`;
  const list = (x: unknown) => x === undefined || Array.isArray(x);
  if (!list(t.compare) || !list(t.success) || !list(t.failure)) return shape;
  for (const c of (t.compare ?? []) as unknown[]) {
    if (typeof c !== 'object' || c === null) return shape;
    const r = c as Record<string, unknown>;
    if (typeof r.key !== 'string') return `${shape} (a compare without a string "key")`;
    if ('version' in r)
      return `${shape}; version compares are not modeled (a history cannot tell versions apart), record a value or exists compare`;
    const hasValue = typeof r.value === 'string';
    const hasExists = typeof r.exists === 'boolean';
    if (hasValue === hasExists)
      return `${shape} (each compare has exactly one of a string "value" or a boolean "exists")`;
  }
  for (const s of [...((t.success ?? []) as unknown[]), ...((t.failure ?? []) as unknown[])]) {
    if (typeof s !== 'object' || s === null) return shape;
    const r = s as Record<string, unknown>;
    if (typeof r.key !== 'string') return `${shape} (a step without a string "key")`;
    if (r.op === 'put' && typeof r.value === 'string') continue;
    if ((r.op === 'delete' || r.op === 'get') && r.value === undefined) continue;
    return `${shape} (a step ${clip(JSON.stringify(s))})`;
  }
  return null;
}

/** A well-formed transaction value as a `TxnSpec` (missing lists empty, extra fields gone). */
function normalizeTxn(t: Record<string, unknown>): TxnSpec {
  const compare = ((t.compare ?? []) as Record<string, unknown>[]).map((c) =>
    typeof c.value === 'string'
      ? { key: c.key as string, value: c.value }
      : { key: c.key as string, exists: c.exists as boolean },
  );
  const steps = (x: unknown) =>
    ((x ?? []) as Record<string, unknown>[]).map((s) =>
      s.op === 'put'
        ? { op: 'put' as const, key: s.key as string, value: s.value as string }
        : { op: s.op as 'get' | 'delete', key: s.key as string },
    );
  return { compare, success: steps(t.success), failure: steps(t.failure) };
}

/** The keys a transaction touches, in first-mention order. */
export function txnKeys(t: TxnSpec): string[] {
  const keys = new Set<string>();
  for (const c of t.compare) keys.add(c.key);
  for (const s of t.success) keys.add(s.key);
  for (const s of t.failure) keys.add(s.key);
  return [...keys];
}

function isCasValue(v: unknown): v is [string | null, string | null] {
  return (
    Array.isArray(v) &&
    v.length === 2 &&
    (v[0] === null || typeof v[0] === 'string') &&
    (v[1] === null || typeof v[1] === 'string')
  );
}

function toTime(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v >= 0n ? v : null;
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? BigInt(v) : null;
  if (typeof v === 'string' && DIGITS.test(v)) return BigInt(v);
  return null;
}

/** The digits of a `"time"` integer too large for a double, read from the raw line. */
function exactTime(text: string, parsed: number): bigint | null {
  const found = [...text.matchAll(/"time"\s*:\s*(\d+)(?![\d.eE])/g)];
  const m = found.filter((x) => Number(x[1]) === parsed);
  return m.length === 1 ? BigInt(m[0]![1]!) : null;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array ${clip(JSON.stringify(v))}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${clip(JSON.stringify(v))}`;
  if (typeof v === 'bigint') return `${v}`;
  return `${typeof v} ${String(v)}`;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Parse a whole history given as text. Problems are in `parser.issues` (see `parseHistory`). */
export function parseText(text: string, parser = new HistoryParser()): HistoryParser {
  let start = 0;
  let lineNo = 0;
  while (start <= text.length && !parser.full) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    parser.line(text.slice(start, end), lineNo);
    start = end + 1;
  }
  return parser;
}

/** Stream a history file line by line (LF or CRLF). */
export async function parseFile(path: string, parser = new HistoryParser()): Promise<HistoryParser> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let rest = '';
  let lineNo = 0;
  try {
    for await (const chunk of stream) {
      const text = rest + (chunk as string);
      let start = 0;
      for (;;) {
        const end = text.indexOf('\n', start);
        if (end < 0) break;
        lineNo++;
        parser.line(
          text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end),
          lineNo,
        );
        if (parser.full) return parser;
        start = end + 1;
      }
      rest = text.slice(start);
    }
  } catch (err) {
    throw new CheckerError(
      CheckerErrorCode.FileUnreadable,
      `cannot read history ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    stream.destroy();
  }
  if (rest !== '') parser.line(rest, lineNo + 1);
  return parser;
}

/** Parse events held in memory; positions are 1-based indices. */
export function parseEvents(events: Iterable<HistoryEvent>, parser = new HistoryParser()): HistoryParser {
  let i = 0;
  for (const e of events) {
    i++;
    if (typeof e !== 'object' || e === null) {
      parser.event({} as Record<string, unknown>, i);
    } else parser.event(e, i);
    if (parser.full) break;
  }
  return parser;
}

/** The operations, or a `HistoryFormatError` listing every problem found. */
export function finish(parser: HistoryParser, source: string, unit = 'line'): ParsedHistory {
  if (parser.issues.length > 0) throw new HistoryFormatError(parser.issues, parser.truncated, source, unit);
  return parser.end();
}

/**
 * Parse and validate a history: a file path (streamed), or events in memory. Throws a
 * `HistoryFormatError` (code `BAD_HISTORY`) naming each bad line.
 */
export async function parseHistory(
  input: string | Iterable<HistoryEvent>,
  options: ParserOptions = {},
): Promise<ParsedHistory> {
  if (typeof input === 'string') return finish(await parseFile(input, new HistoryParser(options)), input);
  return finish(parseEvents(input, new HistoryParser(options)), 'events', 'event');
}

/** Parse and validate a history held as JSON Lines text. */
export function parseHistoryText(text: string, options: ParserOptions = {}): ParsedHistory {
  return finish(parseText(text, new HistoryParser(options)), 'history');
}

/** The earliest invocation time among operations (0 for none). */
export function earliestCall(ops: readonly Operation[]): bigint {
  let t: bigint | null = null;
  for (const o of ops) if (t === null || o.call < t) t = o.call;
  return t ?? 0n;
}
