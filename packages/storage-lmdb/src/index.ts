export { isStorageError, StorageError, StorageErrorCode } from './errors.js';
export { LmdbGroupLog, LmdbGroupStore, type LmdbGroupStoreOptions } from './group-store.js';
export { FORMAT_VERSION, LmdbStorage, type LmdbStorageOptions, type StoreMeta } from './lmdb-storage.js';
export { LOCK_FILE } from './lock.js';
export { LmdbSnapshotStore } from './snapshot-store.js';
