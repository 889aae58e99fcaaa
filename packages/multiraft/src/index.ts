export { isMultiRaftError, MultiRaftConfigError, MultiRaftError, MultiRaftErrorCode } from './errors.js';
export {
  type GroupOptions,
  type HostStats,
  type MultiRaftEvent,
  MultiRaftHost,
  type WakeReason,
} from './host.js';
export { type LivenessChange, PeerLiveness } from './liveness.js';
export { MemoryGroupNetwork, MemoryGroupTransport } from './memory-transport.js';
export {
  defaultHostOptions,
  hostOptionIssues,
  type MultiRaftHostOptions,
  type ResolvedHostOptions,
  resolveHostOptions,
} from './options.js';
export { type FollowerView, followerQuiesceBlocker, leaderQuiesceBlocker } from './quiesce.js';
