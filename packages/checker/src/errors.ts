/**
 * Every error this package throws, with stable codes. A history with problems is reported
 * as one `HistoryFormatError` listing each bad line (up to a limit), so a broken writer is
 * fixed in one pass.
 */

export const CheckerErrorCode = {
  /** The history file or event list is malformed: see `issues`. */
  BadHistory: 'BAD_HISTORY',
  /** The final-state document for lost-write detection is malformed. */
  BadFinalState: 'BAD_FINAL_STATE',
  /** A file could not be read. */
  FileUnreadable: 'FILE_UNREADABLE',
  /** Wrong command-line usage or options. */
  Usage: 'USAGE',
} as const;
export type CheckerErrorCode = (typeof CheckerErrorCode)[keyof typeof CheckerErrorCode];

/** Stable codes of the problems a history line can have. */
export const HistoryIssueCode = {
  /** The line is not valid JSON, or not a JSON object. */
  Json: 'json',
  /** A field is missing or has the wrong type or value. */
  Field: 'field',
  /** `f` is not an operation this checker knows. */
  UnknownOp: 'unknown-op',
  /** A completion with no open invocation for its process. */
  NoInvoke: 'no-invoke',
  /** An invocation while the same process still has an operation open. */
  DoubleInvoke: 'double-invoke',
  /** A completion whose `f` or `key` differs from its invocation. */
  Mismatch: 'mismatch',
  /** A completion earlier than its invocation. */
  TimeOrder: 'time-order',
} as const;
export type HistoryIssueCode = (typeof HistoryIssueCode)[keyof typeof HistoryIssueCode];

/** One problem found in a history. */
export interface HistoryIssue {
  /** 1-based line in the file (or 1-based position in an event list). */
  readonly line: number;
  readonly code: HistoryIssueCode;
  readonly message: string;
}

export class CheckerError extends Error {
  override readonly name: string = 'CheckerError';
  constructor(
    readonly code: CheckerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Format of one issue: `line 12: ... [code]`. */
export function formatHistoryIssue(i: HistoryIssue, unit = 'line'): string {
  return `${unit} ${i.line}: ${i.message} [${i.code}]`;
}

export class HistoryFormatError extends CheckerError {
  override readonly name = 'HistoryFormatError';
  constructor(
    readonly issues: readonly HistoryIssue[],
    /** True when parsing stopped at the issue limit and more lines may be wrong. */
    readonly truncated: boolean,
    readonly source: string,
    unit = 'line',
  ) {
    const head = `${source}: invalid history (${issues.length}${truncated ? '+' : ''} problem${issues.length === 1 ? '' : 's'}); every line must be a JSON object {"process","type","f","key","value","time"}`;
    super(
      CheckerErrorCode.BadHistory,
      [head, ...issues.map((i) => `  ${formatHistoryIssue(i, unit)}`)].join('\n'),
    );
  }
}

export function isCheckerError(e: unknown): e is CheckerError {
  return e instanceof CheckerError;
}
