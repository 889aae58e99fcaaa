export {
  type HostPort,
  listenAddressOf,
  parseClientUrl,
  parseHostPort,
  parseProtocolUrl,
} from './address.js';
export { type CliOptions, CONFIG_EXIT_CODE, loadConfigOrExit } from './cli.js';
export { type Derivation, derive, selfMember } from './derive.js';
export { renderSettingsTable, updateReadme } from './docs.js';
export {
  ConfigError,
  ConfigErrorCode,
  type ConfigIssue,
  ConfigRule,
  type ConfigSource,
  describeSource,
  formatIssue,
  formatIssues,
  isConfigError,
} from './errors.js';
export {
  configFields,
  DEFAULT_ENV_PREFIX,
  envName,
  type FieldInfo,
  type FieldKind,
  flagName,
} from './fields.js';
export { checkFiles, type LoadedConfig, type LoadOptions, loadConfig } from './load.js';
export { expandMembers, type LocalLayout, localMembers } from './members.js';
export { type DescribedValue, describeConfig, formatConfig, REDACTED } from './print.js';
export { type RaftRuntimeOptions, raftRuntimeOptions } from './raft-options.js';
export { crossRules, ENTRY_OVERHEAD_BYTES, MIN_HEARTBEATS_PER_ELECTION } from './rules.js';
export {
  type Config,
  type ConfigInput,
  configShape,
  type FieldMeta,
  type Member,
  type ParsedConfig,
} from './schema.js';
export {
  type ArgvLayer,
  coerce,
  type EnvOptions,
  fromArgv,
  fromEnv,
  fromYaml,
  type Layer,
  mergeLayers,
} from './sources.js';
export {
  configSchema,
  defaults,
  keyOf,
  parseConfig,
  type SourceMap,
  sourceOf,
  type ValidationResult,
  validate,
} from './validate.js';
