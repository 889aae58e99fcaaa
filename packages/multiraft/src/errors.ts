/**
 * Errors of `@quorate/multiraft`, with stable codes: match on `err.code`, never on the
 * message. Errors of a group's `RaftNode` (not leader, timeout, ...) come through as
 * `@quorate/raft`'s own.
 */
export const MultiRaftErrorCode = {
  /** The host options are invalid; `issues` lists every problem found. */
  InvalidConfig: 'MULTIRAFT_INVALID_CONFIG',
  /** A group with this id is already hosted here. */
  GroupExists: 'MULTIRAFT_GROUP_EXISTS',
  /** No group with this id is hosted here. */
  UnknownGroup: 'MULTIRAFT_UNKNOWN_GROUP',
  /** The host is not started, or has been stopped. */
  Stopped: 'MULTIRAFT_STOPPED',
} as const;
export type MultiRaftErrorCode = (typeof MultiRaftErrorCode)[keyof typeof MultiRaftErrorCode];

export class MultiRaftError extends Error {
  readonly code: MultiRaftErrorCode;
  constructor(code: MultiRaftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MultiRaftError';
    this.code = code;
  }
}

/** Invalid host options; every problem is listed, not only the first. */
export class MultiRaftConfigError extends MultiRaftError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(MultiRaftErrorCode.InvalidConfig, `invalid multi-raft host options:\n  - ${issues.join('\n  - ')}`);
    this.name = 'MultiRaftConfigError';
    this.issues = issues;
  }
}

export function isMultiRaftError(err: unknown, code?: MultiRaftErrorCode): err is MultiRaftError {
  return err instanceof MultiRaftError && (code === undefined || err.code === code);
}
