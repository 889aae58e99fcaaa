/**
 * Every error this package throws, with stable codes. A `ConfigError` carries the whole
 * list of problems found, so an operator fixes them in one pass rather than one per run.
 */

/** Where a value came from. */
export type ConfigSource =
  | { readonly kind: 'default' }
  | { readonly kind: 'derived'; readonly from: string }
  | { readonly kind: 'file'; readonly file: string; readonly line: number; readonly column: number }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'flag'; readonly name: string };

/**
 * Stable names of the validation rules. An issue names the rule it broke, so scripts can
 * match on it and the README can explain each one.
 */
export const ConfigRule = {
  /** The value has the wrong type or shape (a word where a number belongs). */
  Type: 'type',
  /** A number outside its allowed range. */
  Range: 'range',
  /** A string that does not have the required form (ids, addresses, prefixes). */
  Format: 'format',
  /** A port outside 1–65535 (0 is allowed for listen addresses: the OS picks). */
  PortRange: 'port-range',
  /** A key, environment variable or flag that the schema does not know. */
  UnknownKey: 'unknown-key',
  /** The election timeout is not at least three heartbeat intervals. */
  ElectionVsHeartbeat: 'election-timeout-vs-heartbeat',
  /** Lease reads without CheckQuorum (the lease rests on it). */
  LeaseReadsNeedCheckQuorum: 'lease-reads-need-check-quorum',
  /** Several groups need what one group may do without (the TCP transport; no lease reads). */
  GroupsNeed: 'groups-need',
  /** The heartbeat interval is shorter than one tick. */
  HeartbeatVsTick: 'heartbeat-vs-tick',
  /** An interval that renews or checks something is not shorter than what it renews. */
  RenewalVsTtl: 'renewal-vs-ttl',
  /** Minimum above maximum. */
  MinAboveMax: 'min-above-max',
  /** Two members share an id. */
  DuplicateMemberId: 'duplicate-member-id',
  /** Two members share a peer or client address. */
  DuplicateMemberAddress: 'duplicate-member-address',
  /** `nodeId` is not one of `members`. */
  SelfNotMember: 'self-not-member',
  /** Two listeners (Raft, HTTP, metrics) on the same address. */
  ListenConflict: 'listen-conflict',
  /** TLS is on but a certificate, key or CA file is not set. */
  TlsIncomplete: 'tls-incomplete',
  /** A file the configuration names cannot be read. */
  FileUnreadable: 'file-unreadable',
  /** The largest value does not fit in the largest log entry. */
  ValueExceedsEntry: 'value-exceeds-entry',
  /** The YAML file is not well-formed. */
  YamlSyntax: 'yaml-syntax',
  /** A flag without its value, or an argument that is not a flag. */
  Usage: 'usage',
} as const;
export type ConfigRule = (typeof ConfigRule)[keyof typeof ConfigRule];

/** One problem with the configuration. */
export interface ConfigIssue {
  /** The schema path (`raft.heartbeatIntervalMs`, `members[1].id`) or the unknown name. */
  readonly key: string;
  /** Where the offending value came from. */
  readonly source: ConfigSource;
  readonly rule: ConfigRule;
  /** What is wrong and, where it helps, what to do. */
  readonly message: string;
}

export const ConfigErrorCode = {
  /** The configuration breaks one or more rules; `issues` lists each. */
  Invalid: 'CONFIG_INVALID',
  /** The configuration file could not be read at all. */
  FileUnreadable: 'CONFIG_FILE_UNREADABLE',
} as const;
export type ConfigErrorCode = (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode];

export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly issues: readonly ConfigIssue[];
  constructor(code: ConfigErrorCode, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(formatIssues(issues), options);
    this.name = 'ConfigError';
    this.code = code;
    this.issues = issues;
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}

/** `quorate.yaml:4:3`, `env QUORATE_X`, `flag --x`, `default`. */
export function describeSource(s: ConfigSource): string {
  switch (s.kind) {
    case 'default':
      return 'default';
    case 'derived':
      return `derived from ${s.from}`;
    case 'file':
      return `${s.file}:${s.line}:${s.column}`;
    case 'env':
      return `env ${s.name}`;
    case 'flag':
      return `flag ${s.name}`;
  }
}

/** One line per issue: where, which key, what is wrong, which rule. */
export function formatIssue(i: ConfigIssue): string {
  const named = i.source.kind === 'env' || i.source.kind === 'flag' ? i.source.name : null;
  const key = i.key === named ? '' : `${i.key}: `;
  return `${describeSource(i.source)}: ${key}${i.message} [${i.rule}]`;
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  const n = issues.length;
  const head = `invalid configuration (${n} problem${n === 1 ? '' : 's'}):`;
  return [head, ...issues.map((i) => `  - ${formatIssue(i)}`)].join('\n');
}
