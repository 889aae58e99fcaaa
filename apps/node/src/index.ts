export { QuorateNode, type QuorateNodeOptions } from './node.js';
export type { ApiOptions, Member, MetricsEndpoint } from './server/api.js';
export { type Command, decodeCommand, encodeCommand } from './state/commands.js';
export {
  type Applied,
  type ApplyResult,
  type KeyRecord,
  type LeaseRecord,
  QuorateMachine,
} from './state/machine.js';
