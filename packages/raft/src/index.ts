export type {
  InitialState,
  LogReader,
  LogStorage,
  PersistBatch,
  SnapshotStore,
  SnapshotTransport,
  SnapshotWriter,
  StateMachine,
  Transport,
  TransportHandler,
} from './contracts/index.js';
export { canSendSnapshots } from './contracts/index.js';
export { applyChange, bootstrapEntries, decodeConfChange, encodeConfChange } from './core/confchange.js';
export { type CoreConfig, type CoreOptions, coreConfigIssues, defaultCoreOptions } from './core/config.js';
export type { RaftEvent, RaftEventType } from './core/events.js';
export { type MergedBatch, mergeReadies } from './core/merge.js';
export { jointIndex, jointVote, majorityIndex, majorityVote, type VoteResult } from './core/quorum.js';
export { type ProposeResult, RaftCore } from './core/raft.js';
export { type RandomInt, seededRandom } from './core/random.js';
export type { CoreStatus, ProgressStatus, ReadState, Ready } from './core/ready.js';
export * from './errors.js';
export { MemorySnapshotStore } from './memory/memory-snapshot-store.js';
export { emptyConfState, MemoryStorage } from './memory/memory-storage.js';
export { MemoryNetwork, MemoryTransport } from './memory/memory-transport.js';
export { Emitter } from './runtime/emitter.js';
export {
  type NodeStatus,
  RaftNode,
  type RaftNodeEvent,
  type RaftNodeOptions,
  type RequestOptions,
} from './runtime/raft-node.js';
export { systemTimers, type TimerProvider } from './runtime/timers.js';
export * from './types.js';
