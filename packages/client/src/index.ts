export {
  answerLeavesOutcomeOpen,
  type CallOptions,
  type ClientOptions,
  type DeleteResult,
  type Lease,
  type LeaseState,
  QuorateClient,
  type RoutingView,
  type TxnCompare,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResponse,
  type ValueResult,
  type WriteResult,
} from './client.js';
export {
  ElectorConfigError,
  type ElectorEvent,
  type ElectorHealth,
  type ElectorOptions,
  LeaderElector,
} from './elector.js';
export {
  ClientError,
  type ClientErrorCode,
  NotLeaderError,
  OutcomeUnknownError,
  RejectedError,
  StaleEpochError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
export { groupOfKey } from './groups.js';
export {
  type CreatePartitionSetSpec,
  type EligibleUpdate,
  type KeepAliveResult,
  type LedPartition,
  type LostReason,
  PartitionMember,
  PartitionMemberConfigError,
  type PartitionMemberEvent,
  type PartitionMemberOptions,
  type PartitionSet,
  type PartitionSetSummary,
  type PartitionState,
  type Session,
  type SessionState,
} from './partitions.js';
export {
  decodeBody,
  encodeFrame,
  FrameReader,
  FrameTooLargeError,
  isProtocolUrl,
  PROTOCOL_OPS,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  PROTOCOL_WS_PATH,
  type ProtocolError,
  type ProtocolOp,
  type ProtocolRequest,
} from './protocol.js';
export { type ProtocolStream, ProtocolWire, type ProtocolWireOptions } from './protocol-wire.js';
export { type WatchBatch, type WatchChange, WatchCompactedError, type WatchOptions } from './watch.js';
export {
  type ClientTls,
  HttpWire,
  type HttpWireOptions,
  type Wire,
  WireError,
  type WireRequest,
  type WireResponse,
} from './wire.js';
