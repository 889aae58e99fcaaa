/**
 * What the metrics read from transports and stores. The packages that implement them
 * (`@quorate/transport-*`, `@quorate/storage-*`) satisfy these interfaces without
 * importing this package or prom-client: the metrics poll them at scrape time, so their
 * hot paths only bump plain numbers.
 *
 * Every counter is cumulative since the object was created and never decreases.
 */

export interface PeerTransportStats {
  /** The peer's node id. */
  readonly peer: string;
  /** Whether a connection to the peer is established now. */
  readonly connected: boolean;
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  /** Messages to this peer discarded: queue full, not connected, closed. */
  readonly messagesDropped: number;
}

export interface TransportStats {
  readonly peers: readonly PeerTransportStats[];
  /**
   * Frames refused before a message was delivered: malformed, oversized, failed
   * authentication, wrong cluster.
   */
  readonly framesRejected: number;
}

export interface TransportStatsSource {
  transportStats(): TransportStats;
}

export interface StorageStats {
  /** Durable write transactions (one per persisted batch). */
  readonly writes: number;
  /** Of those, the ones that were synced to disk. */
  readonly syncs: number;
  readonly bytesWritten: number;
  /** The store's size on disk, when known. */
  readonly sizeBytes?: number;
}

export interface StorageStatsSource {
  storageStats(): StorageStats;
}

/** One snapshot taken, installed from the leader, or sent to a follower. */
export interface SnapshotEvent {
  readonly kind: 'create' | 'install' | 'send';
  readonly ok: boolean;
  readonly ms: number;
  readonly bytes: number;
}
