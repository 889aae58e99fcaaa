export { alertRulesFile, dashboardFile } from './assets.js';
export {
  BATCH_BUCKETS,
  DISK_BUCKETS_SECONDS,
  ELECTION_BUCKETS_SECONDS,
  SNAPSHOT_BUCKETS_SECONDS,
} from './buckets.js';
export { ElectorMetrics, type ObservedElector } from './elector-metrics.js';
export { MetricsError, MetricsErrorCode } from './errors.js';
export { InstrumentedTransport, type InstrumentOptions, instrumentTransport } from './instrument.js';
export {
  type AttachOptions,
  type ObservedNode,
  RaftMetrics,
  type RaftMetricsOptions,
} from './raft-metrics.js';
export {
  type MetricsServer,
  type MetricsServerOptions,
  metricsHandler,
  startMetricsServer,
} from './server.js';
export type {
  PeerTransportStats,
  SnapshotEvent,
  StorageStats,
  StorageStatsSource,
  TransportStats,
  TransportStatsSource,
} from './stats.js';
