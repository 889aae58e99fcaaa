/**
 * What can go wrong, in the terms a caller must decide on: did the operation happen?
 *
 * - `RejectedError`: the cluster answered and refused (a failed compare-and-set, a lease
 *   held by someone else, bad input). **Definite**: nothing changed.
 * - `NotLeaderError`: the deadline passed while members answered only "not the leader"
 *   (an election that outlasted it). Definite: nothing was proposed.
 * - `OutcomeUnknownError`: a write's earlier attempt may have been applied and the
 *   cluster can no longer tell (its exactly-once window moved on). Always ambiguous.
 * - `UnavailableError`: no member could serve within the deadline (no leader, all down).
 *   `ambiguous` tells whether a write may still have been applied.
 * - `TimeoutError`: the deadline passed while an attempt was in flight. For a write the
 *   outcome is unknown (`ambiguous: true`) — but writes carry exactly-once ids, so
 *   retrying the same call later cannot apply it twice.
 */
export type ClientErrorCode =
  | 'REJECTED'
  | 'NOT_LEADER'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'OUTCOME_UNKNOWN'
  | 'INVALID_ARGUMENT';

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  /** True when the operation may have taken effect although this call failed. */
  readonly ambiguous: boolean;
  constructor(code: ClientErrorCode, message: string, ambiguous: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.code = code;
    this.ambiguous = ambiguous;
  }
}

/** The cluster refused the request: `serverCode` is the API's stable code (e.g. `CAS_FAILED`). */
export class RejectedError extends ClientError {
  readonly serverCode: string;
  readonly status: number;
  /** Extra fields of the error body (`current`, `lease`, ...). */
  readonly details: Record<string, unknown>;
  constructor(status: number, serverCode: string, message: string, details: Record<string, unknown>) {
    super('REJECTED', `${serverCode}: ${message}`, false);
    this.name = 'RejectedError';
    this.status = status;
    this.serverCode = serverCode;
    this.details = details;
  }
}

export class NotLeaderError extends ClientError {
  readonly leaderId: string | null;
  readonly leaderAddress: string | null;
  constructor(leaderId: string | null, leaderAddress: string | null, message: string) {
    super('NOT_LEADER', message, false);
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
    this.leaderAddress = leaderAddress;
  }
}

export class UnavailableError extends ClientError {
  constructor(message: string, ambiguous: boolean, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, ambiguous, options);
    this.name = 'UnavailableError';
  }
}

export class TimeoutError extends ClientError {
  constructor(message: string, ambiguous: boolean, options?: { cause?: unknown }) {
    super('TIMEOUT', message, ambiguous, options);
    this.name = 'TimeoutError';
  }
}

export class OutcomeUnknownError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OUTCOME_UNKNOWN', message, true, options);
    this.name = 'OutcomeUnknownError';
  }
}

/**
 * `409 STALE_EPOCH` from a partition call: the epoch (or leader epoch) given is older than
 * the partition's. A `RejectedError` (definite: nothing changed) that carries the
 * partition's current `leader`, `epoch` and `leaderEpoch`, so the caller can redirect or
 * fence without asking again. A newer `leaderEpoch` means the leader changed; the same
 * one with a newer `epoch` means only the eligible set did.
 */
export class StaleEpochError extends RejectedError {
  /** The partition's current leader (null: leaderless). */
  readonly leader: string | null;
  /** The partition's current epoch (every change of leader or eligible set; compare-and-set is on it). */
  readonly epoch: number;
  /** The partition's current leader epoch (every change of leader; data planes fence on it). */
  readonly leaderEpoch: number;
  constructor(status: number, message: string, details: Record<string, unknown>) {
    super(status, 'STALE_EPOCH', message, details);
    this.name = 'StaleEpochError';
    this.leader = typeof details.leader === 'string' ? details.leader : null;
    this.epoch = Number(details.epoch);
    this.leaderEpoch = Number(details.leaderEpoch);
  }
}

/** A `RejectedError`, or its typed form when the code has one. */
export function rejected(
  status: number,
  serverCode: string,
  message: string,
  details: Record<string, unknown>,
): RejectedError {
  if (serverCode === 'STALE_EPOCH') return new StaleEpochError(status, message, details);
  return new RejectedError(status, serverCode, message, details);
}
