/**
 * Errors as the HTTP API answers them: a status, a stable code, a message that says what
 * was wrong and what to do, and extra fields (the leader's address, the current version).
 */
import { NotLeaderError, RaftError, RaftErrorCode } from '@quorate/raft';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  get retryable(): boolean {
    return this.status === 421 || this.status === 429 || this.status === 503 || this.status === 504;
  }

  body(): string {
    return JSON.stringify({
      error: { code: this.code, message: this.message, retryable: this.retryable, ...this.extra },
    });
  }
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message);

/** Map a runtime error to its HTTP answer. */
export function fromRaftError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof NotLeaderError) {
    if (err.leaderId === null) {
      return new HttpError(
        503,
        'NO_LEADER',
        'no leader is known right now (an election is under way); retry shortly',
        {},
        {
          'Retry-After': '1',
        },
      );
    }
    const headers: Record<string, string> = { 'X-Quorate-Leader-Id': err.leaderId };
    if (err.leaderAddress) headers['X-Quorate-Leader'] = err.leaderAddress;
    return new HttpError(
      421,
      'NOT_LEADER',
      err.message,
      { leaderId: err.leaderId, leaderAddress: err.leaderAddress },
      headers,
    );
  }
  if (err instanceof RaftError) {
    switch (err.code) {
      case RaftErrorCode.TransferInProgress:
        return new HttpError(503, 'TRANSFER_IN_PROGRESS', err.message, {}, { 'Retry-After': '1' });
      case RaftErrorCode.Overloaded:
        return new HttpError(429, 'OVERLOADED', err.message, {}, { 'Retry-After': '1' });
      case RaftErrorCode.TooLarge:
        return new HttpError(413, 'VALUE_TOO_LARGE', err.message);
      case RaftErrorCode.Timeout:
        return new HttpError(
          504,
          'TIMEOUT',
          `${err.message}; a write's outcome is unknown: retry with the same X-Quorate-Client-Id and X-Quorate-Seq`,
        );
      case RaftErrorCode.ProposalDropped:
        return new HttpError(503, 'PROPOSAL_DROPPED', err.message);
      case RaftErrorCode.OutcomeUnknown:
        return new HttpError(
          503,
          'OUTCOME_UNKNOWN',
          `${err.message}; retry with the same client id and sequence`,
        );
      case RaftErrorCode.ConfChangeRejected:
        return new HttpError(409, 'CONF_CHANGE_REJECTED', err.message);
      case RaftErrorCode.ReadIndexFailed:
        return new HttpError(503, 'UNAVAILABLE', err.message, {}, { 'Retry-After': '1' });
      default:
        return new HttpError(503, 'UNAVAILABLE', `this node cannot serve the request: ${err.message}`);
    }
  }
  return new HttpError(500, 'INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`);
}

/**
 * Run a route of one group's: a not-leader answer names the group, so that a client can
 * tell which group's leader the redirect points at.
 */
export async function inGroup<T>(group: number, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const e = fromRaftError(err);
    if (e.code === 'NOT_LEADER') {
      e.extra.group = group;
      e.headers['X-Quorate-Group'] = String(group);
    }
    throw e;
  }
}
