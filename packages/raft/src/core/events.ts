import type { NodeId, Role } from '../types.js';

/**
 * What the core reports as it runs, synchronously, to `CoreConfig.onEvent`. Durations
 * are in ticks; the runtime re-emits them with wall-clock times. The set only grows.
 */
export type RaftEvent =
  | { type: 'roleChanged'; from: Role; to: Role; term: number }
  | { type: 'leaderChanged'; leaderId: NodeId | null; term: number }
  | { type: 'electionStarted'; term: number; preVote: boolean; transfer: boolean }
  | { type: 'electionWon'; term: number; ticks: number }
  | { type: 'electionLost'; term: number; preVote: boolean; ticks: number }
  | { type: 'steppedDown'; term: number; reason: 'checkQuorum' | 'higherTerm' | 'removed' }
  | { type: 'confChanged'; voters: NodeId[]; learners: NodeId[]; term: number }
  | { type: 'transferStarted'; to: NodeId; term: number }
  | { type: 'transferAborted'; to: NodeId; term: number; reason: string }
  | { type: 'voteGranted'; to: NodeId; term: number; preVote: boolean }
  | { type: 'proposalRejected'; code: string }
  | { type: 'anomaly'; detail: string };

export type RaftEventType = RaftEvent['type'];
