export { GroupNetworkTransport } from './group-network-transport.js';
export { NetworkTransport } from './network-transport.js';
export {
  defaultNetworkOptions,
  HANDSHAKE_MAX_FRAME_BYTES,
  MIN_FRAME_BYTES,
  MIN_SECRET_BYTES,
  type NetworkTransportOptions,
  networkOptionIssues,
  type PeerAddress,
  type ResolvedOptions,
  resolveNetworkOptions,
  type TransportLogger,
} from './options.js';
export { type BaseHandler, type CloseReport, PeerNetwork } from './peer-network.js';
/** Snapshot chunks a sender may have unacknowledged (flow control of a transfer). */
export { SNAPSHOT_WINDOW, type SnapshotReceiver } from './snapshots.js';
export type { LinkState, PeerStats, TransportStats } from './stats.js';
export type { Connection, ConnectionEvents, StreamLayer } from './stream.js';
