/**
 * The runtime options `RaftNode` takes, from a config. Structurally typed: this package
 * does not import `@quorate/raft`, and a test checks the shapes agree.
 */
import type { Config } from './schema.js';

export interface RaftRuntimeOptions {
  id: string;
  members: string[];
  tickMs: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  requestTimeoutMs: number;
  maxClockDriftRatio: number;
  raft: {
    preVote: boolean;
    checkQuorum: boolean;
    leaseReads: boolean;
    maxInflightMsgs: number;
    maxInflightBytes: number;
    maxEntriesPerMsg: number;
    maxSizePerMsg: number;
    maxEntryBytes: number;
    maxUncommittedBytes: number;
  };
  /** The client address of a member, for not-leader answers. */
  addressOf(id: string): string | null;
}

export function raftRuntimeOptions(c: Config): RaftRuntimeOptions {
  const clients = new Map(c.members.map((m) => [m.id, m.clientAddress]));
  return {
    id: c.nodeId,
    members: c.members.map((m) => m.id),
    tickMs: c.raft.tickMs,
    heartbeatIntervalMs: c.raft.heartbeatIntervalMs,
    electionTimeoutMs: c.raft.electionTimeoutMs,
    requestTimeoutMs: c.raft.requestTimeoutMs,
    maxClockDriftRatio: c.raft.maxClockDriftRatio,
    raft: {
      preVote: c.raft.preVote,
      checkQuorum: c.raft.checkQuorum,
      leaseReads: c.raft.leaseReads,
      maxInflightMsgs: c.raft.maxInflightMsgs,
      maxInflightBytes: c.raft.maxInflightBytes,
      maxEntriesPerMsg: c.raft.maxEntriesPerMsg,
      maxSizePerMsg: c.raft.maxMsgBytes,
      maxEntryBytes: c.raft.maxEntryBytes,
      maxUncommittedBytes: c.raft.maxUncommittedBytes,
    },
    addressOf: (id) => clients.get(id) ?? null,
  };
}
