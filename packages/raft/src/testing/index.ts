export { formatMessage } from './format.js';
export { InteractionEnv, type InteractionNode, type InteractionOptions } from './interaction.js';
export * from './transport-conformance.js';
