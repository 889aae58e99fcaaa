export { isStorageError, StorageError, StorageErrorCode } from './errors.js';
export { LmdbGroupLog, LmdbGroupStore, type LmdbGroupStoreOptions } from './group-store.js';
export {
  FORMAT_VERSION,
  LMDB_LOG_FORMAT,
  LmdbStorage,
  type LmdbStorageOptions,
  type StoreMeta,
  WAL_FORMAT,
} from './lmdb-storage.js';
export { LOCK_FILE } from './lock.js';
export { LmdbSnapshotStore } from './snapshot-store.js';
