export { Directory, type Located, type Registration, registryKey } from './directory.js';
export { BrokerError, type BrokerErrorCode, notLeader, type Outcome } from './errors.js';
export { type FollowerDeps, follow } from './follower.js';
export { Leadership, type LeadershipDeps, type LeadershipStart } from './leadership.js';
export { type Entry, LogError, PartitionLog } from './log.js';
export { LogClient, type LogClientOptions } from './log-client.js';
export { type EligibleChange, type FollowerState, ReplicaProgress } from './progress.js';
export { type FetchQuery, type LeadingAt, PartitionReplica, type ReplicaOptions } from './replica.js';
export { Broker, type BrokerOptions } from './server.js';
export {
  type FetchAnswer,
  fromWire,
  type ProduceAnswer,
  type ReadAnswer,
  toWire,
  valueText,
  type WireEntry,
} from './wire.js';
