import type { NodeId } from './types.js';

/**
 * Stable error codes of `@quorate/raft`. Codes never change meaning once published;
 * match on `err.code`, not on messages.
 */
export const RaftErrorCode = {
  /** This node is not the leader; `leaderId` / `leaderAddress` say where to go, when known. */
  NotLeader: 'NOT_LEADER',
  /** The leader is handing over leadership; retry shortly (at the new leader). */
  TransferInProgress: 'TRANSFER_IN_PROGRESS',
  /** The proposal can never commit: another entry took its log slot. Safe to retry. */
  ProposalDropped: 'PROPOSAL_DROPPED',
  /** The outcome is unknown: the entry may or may not commit (for example the node stopped). */
  OutcomeUnknown: 'OUTCOME_UNKNOWN',
  /** A deadline passed before the operation completed. The outcome of a write is unknown. */
  Timeout: 'TIMEOUT',
  /** A proposal or message is larger than the configured limit. */
  TooLarge: 'TOO_LARGE',
  /** The node has been stopped. */
  Stopped: 'STOPPED',
  /** The configuration is invalid; `issues` lists every problem found. */
  InvalidConfig: 'INVALID_CONFIG',
  /** Storage: the requested index lies before the first retained entry. */
  Compacted: 'COMPACTED',
  /** Storage: the requested index lies after the last entry. */
  Unavailable: 'UNAVAILABLE',
  /** The host broke the core's protocol (for example acknowledged readies out of order). */
  ProtocolViolation: 'PROTOCOL_VIOLATION',
  /** A read index could not be obtained (no leader, or leadership lost while confirming). */
  ReadIndexFailed: 'READ_INDEX_FAILED',
  /** A membership change was refused (another is pending, or it would be unsafe). */
  ConfChangeRejected: 'CONF_CHANGE_REJECTED',
  /** A storage operation failed; the node stops rather than continue with unknown durability. */
  StorageFailed: 'STORAGE_FAILED',
  /** Too much is proposed and not yet committed; slow down and retry. */
  Overloaded: 'OVERLOADED',
  /** An argument is out of range or refers to something that does not exist. */
  InvalidArgument: 'INVALID_ARGUMENT',
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

/** Base class of every error this package throws or rejects with. */
export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RaftError';
    this.code = code;
  }

  /** Whether retrying the same request (possibly elsewhere) can succeed. */
  get retryable(): boolean {
    return (
      this.code === RaftErrorCode.NotLeader ||
      this.code === RaftErrorCode.TransferInProgress ||
      this.code === RaftErrorCode.ProposalDropped ||
      this.code === RaftErrorCode.Overloaded ||
      this.code === RaftErrorCode.ReadIndexFailed
    );
  }
}

/** Raised on proposals and reads at a node that is not the leader. */
export class NotLeaderError extends RaftError {
  readonly leaderId: NodeId | null;
  /** The leader's client-facing address, when the host knows it. */
  readonly leaderAddress: string | null;
  readonly term: number;
  constructor(leaderId: NodeId | null, term: number, leaderAddress: string | null = null) {
    super(
      RaftErrorCode.NotLeader,
      leaderId === null
        ? `this node is not the leader and no leader is known in term ${term}; retry after an election`
        : `this node is not the leader; send the request to ${leaderId}${leaderAddress ? ` at ${leaderAddress}` : ''}`,
    );
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
    this.leaderAddress = leaderAddress;
    this.term = term;
  }

  /** A copy that also names the leader's address (the core knows ids, the host addresses). */
  withAddress(address: string | null): NotLeaderError {
    return new NotLeaderError(this.leaderId, this.term, address);
  }
}

export class InvalidConfigError extends RaftError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(RaftErrorCode.InvalidConfig, `invalid raft configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'InvalidConfigError';
    this.issues = issues;
  }
}

/** Thrown by `LogStorage` reads for an index that has been compacted into a snapshot. */
export class CompactedError extends RaftError {
  constructor(index: number, firstIndex: number) {
    super(RaftErrorCode.Compacted, `log index ${index} is compacted; the log now starts at ${firstIndex}`);
    this.name = 'CompactedError';
  }
}

/** Thrown by `LogStorage` reads for an index past the end of the log. */
export class UnavailableError extends RaftError {
  constructor(index: number, lastIndex: number) {
    super(RaftErrorCode.Unavailable, `log index ${index} is not available; the log ends at ${lastIndex}`);
    this.name = 'UnavailableError';
  }
}

export function isRaftError(err: unknown, code?: RaftErrorCode): err is RaftError {
  return err instanceof RaftError && (code === undefined || err.code === code);
}
