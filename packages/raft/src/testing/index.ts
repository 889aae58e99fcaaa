export { formatMessage } from './format.js';
export { InteractionEnv, type InteractionNode, type InteractionOptions } from './interaction.js';
export {
  ConformanceFailure,
  type StorageConformanceCase,
  type StorageFactory,
  type StorageHandle,
  storageConformanceCases,
} from './storage-conformance.js';
export * from './transport-conformance.js';
