/** Errors of `@quorate/metrics`, with stable codes. */
export const MetricsErrorCode = {
  /** An option is out of range or malformed (for example a prefix that is not a metric name). */
  InvalidOption: 'METRICS_INVALID_OPTION',
  /** The node (by id) is already observed by this `RaftMetrics`. */
  AlreadyAttached: 'METRICS_ALREADY_ATTACHED',
} as const;
export type MetricsErrorCode = (typeof MetricsErrorCode)[keyof typeof MetricsErrorCode];

export class MetricsError extends Error {
  readonly code: MetricsErrorCode;
  constructor(code: MetricsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsError';
    this.code = code;
  }
}
