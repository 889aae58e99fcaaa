export type {
  GroupId,
  GroupTransport,
  GroupTransportHandler,
  HostMessage,
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
export { canSendSnapshots, MAX_BEATS, MAX_GROUP_ID } from './contracts/index.js';
// The options RaftNode takes for its core (`raft:`), and their validation.
export { type CoreConfig, type CoreOptions, coreConfigIssues, defaultCoreOptions } from './core/config.js';
// What RaftNode's status and events carry; the core itself is `@quorate/raft/core`.
export type { RaftEvent, RaftEventType } from './core/events.js';
export type { RandomInt } from './core/random.js';
export type { CoreStatus, ProgressStatus, ReadState } from './core/ready.js';
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
