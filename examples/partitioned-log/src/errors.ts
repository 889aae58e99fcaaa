/**
 * The broker's answers that are not a success, each with a stable `code`, the HTTP status
 * it is sent with, and whether the record may still have been written (`outcome`):
 *
 * - `not-written`: refused before anything was appended. Definite: retry elsewhere.
 * - `unknown`: appended here but not acknowledged; later leaders may keep it or not.
 *   Retrying may store the record twice (this example has no producer idempotence).
 */
export type BrokerErrorCode =
  | 'NOT_LEADER'
  | 'FENCED'
  | 'NOT_ENOUGH_REPLICAS'
  | 'LEADERSHIP_LOST'
  | 'NOT_A_REPLICA'
  | 'BAD_REQUEST'
  | 'SHUTTING_DOWN'
  /** Client side: no broker answered in time (`outcome` says whether an attempt may have written). */
  | 'UNAVAILABLE';

export type Outcome = 'not-written' | 'unknown';

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;
  readonly status: number;
  readonly outcome: Outcome;
  /** Extra fields of the answer's body (`leader`, `leaderEpoch`, `offset`, ...). */
  readonly details: Record<string, unknown>;
  constructor(
    code: BrokerErrorCode,
    status: number,
    message: string,
    opts: { outcome?: Outcome; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'BrokerError';
    this.code = code;
    this.status = status;
    this.outcome = opts.outcome ?? 'not-written';
    this.details = opts.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, outcome: this.outcome, ...this.details };
  }
}

/**
 * This broker does not lead the partition at the leader epoch asked (or at all): `leader`
 * and `leaderEpoch` are its best hint.
 */
export function notLeader(
  partition: number,
  leader: string | null,
  leaderEpoch: number,
  why: string,
): BrokerError {
  return new BrokerError('NOT_LEADER', 409, `does not lead partition ${partition}: ${why}`, {
    details: { leader, leaderEpoch },
  });
}
