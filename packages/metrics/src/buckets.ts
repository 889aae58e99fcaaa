/**
 * Histogram buckets fitted to what each latency really spans on a LAN: fsyncs and applies
 * from tens of microseconds (write-back caches, in-memory stores) to a second (a
 * struggling disk); elections from one timeout (150 ms by default) to the multi-second
 * storms an alert should see; snapshots from milliseconds to minutes.
 */

/** Persist (append + fsync) and apply batches: 50 µs … 2.5 s. */
export const DISK_BUCKETS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** Elections: 25 ms … 30 s, dense around the default timeouts (150–300 ms). */
export const ELECTION_BUCKETS_SECONDS: readonly number[] = [
  0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30,
];

/** Snapshots: 1 ms … 5 min. */
export const SNAPSHOT_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/** Entries per persisted batch (group commit): 1 … 4096. */
export const BATCH_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
