/**
 * Errors of `@quorate/storage-lmdb`, with stable codes: match on `err.code`, never on the
 * message. Every error about a data directory names it in `path`. Reads outside the log
 * throw the core's `CompactedError` / `UnavailableError`, as the `LogReader` contract says.
 */
export const StorageErrorCode = {
  /** Another process (or another store in this process) has the data directory open. */
  Locked: 'STORAGE_LOCKED',
  /** The directory was written by a newer version of this package; upgrade, never downgrade. */
  FormatTooNew: 'STORAGE_FORMAT_TOO_NEW',
  /** The directory belongs to another cluster: wrong directory, or a reused disk. */
  ForeignCluster: 'STORAGE_FOREIGN_CLUSTER',
  /** The directory belongs to another node of this cluster. */
  ForeignNode: 'STORAGE_FOREIGN_NODE',
  /** The files are damaged, truncated or not a quorate store; restore from a peer or a backup. */
  Corrupt: 'STORAGE_CORRUPT',
  /** The directory (or a file in it) cannot be written. */
  ReadOnly: 'STORAGE_READ_ONLY',
  /** The store was closed, or stopped after a failed write. */
  Closed: 'STORAGE_CLOSED',
  /** A write broke the `LogStorage` contract (a gap, a compacted index, a bad option). */
  InvalidArgument: 'STORAGE_INVALID_ARGUMENT',
  /** A write failed in LMDB; the outcome on disk is unknown and the store stops. */
  WriteFailed: 'STORAGE_WRITE_FAILED',
  /** The requested snapshot is not the latest committed one. */
  SnapshotUnavailable: 'STORAGE_SNAPSHOT_UNAVAILABLE',
} as const;
export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  /** The data directory concerned, when there is one. */
  readonly path: string | undefined;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
    this.path = options?.path;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}
