export {
  type GroupId,
  type GroupTransport,
  type GroupTransportHandler,
  type HostMessage,
  MAX_BEATS,
  MAX_GROUP_ID,
} from './group-transport.js';
export type { StateMachine } from './state-machine.js';
export type {
  InitialState,
  LogReader,
  LogStorage,
  PersistBatch,
  SnapshotStore,
  SnapshotWriter,
} from './storage.js';
export {
  canSendSnapshots,
  type SnapshotTransport,
  type Transport,
  type TransportHandler,
} from './transport.js';
