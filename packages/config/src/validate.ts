/**
 * The pure validator: input (already merged from every source) in, a complete config or
 * every problem out. No I/O: files named by the config are checked by `load`.
 */
import type * as z from 'zod';
import { type Derivation, derive } from './derive.js';
import {
  ConfigError,
  ConfigErrorCode,
  type ConfigIssue,
  ConfigRule,
  type ConfigSource,
  describeSource,
} from './errors.js';
import { configFields, keysUnder } from './fields.js';
import { crossRules } from './rules.js';
import { type Config, type ConfigInput, configShape, type ParsedConfig } from './schema.js';
import { didYouMean } from './suggest.js';

/** Sources by key (`raft.tickMs`, `members[0].id`); missing keys are defaults. */
export type SourceMap = ReadonlyMap<string, ConfigSource>;

export type ValidationResult =
  | { readonly ok: true; readonly config: Config; readonly derived: readonly Derivation[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** `['members', 1, 'id']` → `members[1].id`. */
export function keyOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** The source of `key`, or of its nearest ancestor that has one. */
export function sourceOf(sources: SourceMap, key: string): ConfigSource {
  const exact = sources.get(key);
  if (exact) return exact;
  // A value inside a list comes from where the list (or its item) came from; a key left
  // out of a map given elsewhere is still a default.
  for (let k = parentKey(key); k !== ''; k = parentKey(k)) {
    const s = sources.get(k);
    if (s && (k.endsWith(']') || key.charAt(k.length) === '[')) return s;
  }
  return { kind: 'default' };
}

function parentKey(k: string): string {
  const i = Math.max(k.lastIndexOf('.'), k.lastIndexOf('['));
  return i < 0 ? '' : k.slice(0, i);
}

const startsWithKey = (key: string, prefix: string) =>
  key === prefix || key.startsWith(`${prefix}.`) || key.startsWith(`${prefix}[`);

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

const REDACTED_VALUE = Symbol('redacted');

const show = (v: unknown): string => {
  if (v === REDACTED_VALUE) return 'a value (redacted)';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'a map';
  return String(v);
};

/** The schema with its cross-field rules; `describe` renders a key with its source. */
function schemaWithRules(describe: (key: string) => string) {
  let failed: string[] = [];
  return configShape.superRefine(
    (value, ctx) => {
      for (const r of crossRules) {
        if (r.uses.some((u) => failed.some((f) => startsWithKey(f, u) || startsWithKey(u, f)))) continue;
        for (const i of r.check(value as ParsedConfig, describe)) {
          ctx.addIssue({ code: 'custom', path: [...i.path], message: i.message, params: { rule: r.rule } });
        }
      }
    },
    {
      when(payload) {
        // An unknown key does not make its neighbours unreliable; a bad value does.
        failed = payload.issues.filter((i) => i.code !== 'unrecognized_keys').map((i) => keyOf(i.path ?? []));
        return typeof payload.value === 'object' && payload.value !== null;
      },
    },
  );
}

/** The schema and every cross-field rule, for embedders who bring their own sources. */
export const configSchema = schemaWithRules((k) => k);

function toIssues(zi: readonly z.core.$ZodIssue[], input: unknown, sources: SourceMap): ConfigIssue[] {
  const secrets = new Set(
    configFields()
      .filter((f) => f.secret)
      .map((f) => f.key),
  );
  const out: ConfigIssue[] = [];
  for (const i of zi) {
    const key = keyOf(i.path);
    // A wrong secret is still a secret: never echo it into logs.
    const value = secrets.has(key) ? REDACTED_VALUE : valueAt(input, i.path);
    const source = sourceOf(sources, key);
    switch (i.code) {
      case 'unrecognized_keys':
        for (const k of i.keys) {
          const full = keyOf([...i.path, k]);
          const known = keysUnder(i.path);
          const hint = didYouMean(k, known) || ` (allowed here: ${known.join(', ')})`;
          out.push({
            key: full,
            source: sourceOf(sources, full),
            rule: ConfigRule.UnknownKey,
            message: `unknown key "${k}"${hint}`,
          });
        }
        break;
      case 'invalid_type':
        out.push({
          key,
          source,
          rule: ConfigRule.Type,
          message:
            value === undefined
              ? `is required (a ${i.expected})`
              : `expected a ${i.expected}, got ${show(value)}`,
        });
        break;
      case 'invalid_value':
        out.push({
          key,
          source,
          rule: ConfigRule.Type,
          message: `must be one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(value)}`,
        });
        break;
      case 'too_small':
      case 'too_big': {
        const numeric = i.origin === 'number' || i.origin === 'int';
        const bound = i.code === 'too_small' ? `at least ${i.minimum}` : `at most ${i.maximum}`;
        out.push({
          key,
          source,
          rule: ConfigRule.Range,
          message: numeric ? `${show(value)} is out of range: must be ${bound}` : i.message,
        });
        break;
      }
      case 'invalid_format':
        out.push({ key, source, rule: ConfigRule.Format, message: `${show(value)} ${i.message}` });
        break;
      case 'custom': {
        const rule = (i.params?.rule as ConfigRule | undefined) ?? ConfigRule.Format;
        out.push({ key, source, rule, message: i.message });
        break;
      }
      default:
        out.push({ key, source, rule: ConfigRule.Type, message: i.message });
    }
  }
  return out;
}

/**
 * Check `input` against the schema and every cross-field rule, and fill in the defaults.
 * Reports every problem at once; `sources` only improves the messages.
 */
export function validate(input: unknown, sources: SourceMap = new Map()): ValidationResult {
  const describe = (k: string) => `${k} (${describeSource(sourceOf(sources, k))})`;
  const r = schemaWithRules(describe).safeParse(input ?? {});
  if (!r.success) return { ok: false, issues: toIssues(r.error.issues, input, sources) };
  const { config, derived } = derive(r.data);
  return { ok: true, config, derived };
}

/** The complete default configuration: a single loopback node `n1`. */
export function defaults(): Config {
  const r = validate({});
  if (!r.ok) throw new Error('the default configuration is invalid');
  return r.config;
}

/** `validate`, throwing on problems: for embedders who build a config in code. */
export function parseConfig(input: ConfigInput): Config {
  const r = validate(input);
  if (!r.ok) throw new ConfigError(ConfigErrorCode.Invalid, r.issues);
  return r.config;
}
