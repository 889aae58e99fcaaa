/**
 * The three sources, each a pure function of text: a YAML document, an environment, a
 * command line. Each returns a partial input, the source of every value it set, and the
 * problems it found on its own (syntax, unknown variables and flags).
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { type ConfigIssue, ConfigRule, type ConfigSource } from './errors.js';
import { configFields, DEFAULT_ENV_PREFIX, type FieldInfo } from './fields.js';
import { didYouMean } from './suggest.js';
import { keyOf } from './validate.js';

export interface Layer {
  readonly values: Record<string, unknown>;
  readonly sources: ReadonlyMap<string, ConfigSource>;
  readonly issues: readonly ConfigIssue[];
}

// ------------------------------------------------------------------ YAML

/**
 * Parse a YAML document. A key with no value counts as absent. Syntax errors and
 * duplicate keys come back as issues with their line.
 */
export function fromYaml(text: string, file: string): Layer {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): ConfigSource => {
    const p = lines.linePos(offset);
    return { kind: 'file', file, line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    return {
      values: {},
      sources: new Map(),
      issues: doc.errors.map((e) => ({
        key: '(file)',
        source: at(e.pos[0]),
        rule: ConfigRule.YamlSyntax,
        message: e.message.split('\n')[0]!,
      })),
    };
  }
  const sources = new Map<string, ConfigSource>();
  const walk = (node: unknown, path: (string | number)[]) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const p = [...path, k];
        const range = (pair.key as Node | null)?.range;
        if (range) sources.set(keyOf(p), at(range[0]));
        walk(pair.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const range = (item as Node | null)?.range;
        if (range) sources.set(keyOf([...path, i]), at(range[0]));
        walk(item, [...path, i]);
      });
    }
  };
  walk(doc.contents, []);
  const raw = doc.toJS() as unknown;
  if (raw === null || raw === undefined) return { values: {}, sources, issues: [] };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      values: {},
      sources,
      issues: [
        {
          key: '(file)',
          source: at(doc.contents?.range?.[0] ?? 0),
          rule: ConfigRule.Type,
          message: 'the file must hold a map of settings (key: value)',
        },
      ],
    };
  }
  return { values: dropNulls(raw) as Record<string, unknown>, sources, issues: [] };
}

function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
  return out;
}

// ------------------------------------------------------------------ strings → values

/**
 * A string from the environment or the command line as the field's type. What cannot
 * be converted is passed on unchanged, so the schema reports it with the field's rule.
 */
export function coerce(field: FieldInfo, text: string): unknown {
  switch (field.kind) {
    case 'number': {
      const t = text.trim().replace(/_/g, '');
      return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : text;
    }
    case 'boolean': {
      const t = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return true;
      if (['false', '0', 'no', 'off'].includes(t)) return false;
      return text;
    }
    default:
      return text;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let o = target;
  for (const seg of path.slice(0, -1)) {
    const next = o[seg];
    if (next === undefined || next === null || typeof next !== 'object') o[seg] = {};
    o = o[seg] as Record<string, unknown>;
  }
  o[path.at(-1)!] = value;
}

// ------------------------------------------------------------------ environment

export interface EnvOptions {
  /** Default `QUORATE_`. */
  prefix?: string;
  /** Variables under the prefix that are not settings (default: `<prefix>CONFIG`). */
  reserved?: readonly string[];
}

/**
 * Variables named after the schema path (`QUORATE_RAFT_TICK_MS`). An unknown variable
 * under the prefix is an error: a typo must not be ignored. An empty variable is unset.
 */
export function fromEnv(env: Readonly<Record<string, string | undefined>>, opts: EnvOptions = {}): Layer {
  const prefix = opts.prefix ?? DEFAULT_ENV_PREFIX;
  const reserved = new Set(opts.reserved ?? [`${prefix}CONFIG`]);
  const fields = configFields(prefix);
  const byName = new Map(fields.map((f) => [f.env, f]));
  const values: Record<string, unknown> = {};
  const sources = new Map<string, ConfigSource>();
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(env).sort()) {
    const text = env[name];
    if (!name.startsWith(prefix) || reserved.has(name) || text === undefined || text === '') continue;
    const f = byName.get(name);
    if (!f) {
      issues.push({
        key: name,
        source: { kind: 'env', name },
        rule: ConfigRule.UnknownKey,
        message: `unknown variable${didYouMean(name, byName.keys())}`,
      });
      continue;
    }
    setPath(values, f.path, coerce(f, text));
    sources.set(f.key, { kind: 'env', name });
  }
  return { values, sources, issues };
}

// ------------------------------------------------------------------ command line

export interface ArgvLayer extends Layer {
  /** `--config <file>` / `-c <file>`. */
  readonly configFile: string | null;
  /** `--print-config`. */
  readonly printConfig: boolean;
}

/**
 * Flags named after the schema path in kebab case: `--raft.heartbeat-interval-ms 50` or
 * `--raft.heartbeat-interval-ms=50` (camel case is accepted too). A boolean flag alone
 * means true; `--no-<flag>` means false. Also `--config <file>` and `--print-config`.
 */
export function fromArgv(argv: readonly string[]): ArgvLayer {
  const fields = configFields();
  const byFlag = new Map<string, FieldInfo>();
  for (const f of fields) {
    byFlag.set(f.flag, f);
    byFlag.set(`--${f.key}`, f);
  }
  const known = [...fields.map((f) => f.flag), '--config', '--print-config'];
  const values: Record<string, unknown> = {};
  const sources = new Map<string, ConfigSource>();
  const issues: ConfigIssue[] = [];
  let configFile: string | null = null;
  let printConfig = false;
  const usage = (key: string, name: string, message: string) =>
    issues.push({ key, source: { kind: 'flag', name }, rule: ConfigRule.Usage, message });

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') {
      usage(arg, arg, `unexpected argument "${arg}": settings are given as --<key> <value>`);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(0, eq) : arg;
    let inline: string | null = eq >= 0 ? arg.slice(eq + 1) : null;
    const takeValue = (): string | null => {
      if (inline !== null) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) return null;
      i++;
      return next;
    };
    if (name === '-c' || name === '--config') {
      const v = takeValue();
      if (v === null) usage('--config', name, 'needs a file name');
      else configFile = v;
      continue;
    }
    if (name === '--print-config') {
      printConfig = true;
      continue;
    }
    let negated = false;
    if (name.startsWith('--no-') && !byFlag.has(name)) {
      negated = true;
      name = `--${name.slice(5)}`;
    }
    const f = byFlag.get(name) ?? byFlag.get(toKebab(name));
    if (!f) {
      issues.push({
        key: name,
        source: { kind: 'flag', name },
        rule: ConfigRule.UnknownKey,
        message: `unknown flag${didYouMean(name, known)}`,
      });
      if (inline === null && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) i++;
      continue;
    }
    let value: unknown;
    if (f.kind === 'boolean') {
      if (negated) {
        if (inline !== null) {
          usage(f.key, name, `--no-… takes no value`);
          continue;
        }
        value = false;
      } else if (inline !== null) {
        value = coerce(f, inline);
      } else if (argv[i + 1] !== undefined && /^(true|false)$/i.test(argv[i + 1]!)) {
        value = coerce(f, argv[++i]!);
      } else {
        value = true;
      }
    } else {
      if (negated) {
        usage(f.key, `--no-${name.slice(2)}`, `only a true/false setting can be negated`);
        continue;
      }
      const v = takeValue();
      if (v === null) {
        usage(f.key, f.flag, `needs a value`);
        continue;
      }
      inline = null;
      value = coerce(f, v);
    }
    setPath(values, f.path, value);
    sources.set(f.key, { kind: 'flag', name: f.flag });
  }
  return { values, sources, issues, configFile, printConfig };
}

/** `--raft.heartbeatIntervalMs` → `--raft.heartbeat-interval-ms`. */
function toKebab(flag: string): string {
  return flag.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

// ------------------------------------------------------------------ precedence

/**
 * Merge layers, later ones winning: maps merge key by key, lists and values are
 * replaced whole. Sources follow the values that won.
 */
export function mergeLayers(layers: readonly Layer[]): {
  values: Record<string, unknown>;
  sources: Map<string, ConfigSource>;
} {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, ConfigSource>();
  for (const layer of layers) {
    deepMerge(values, layer.values);
    for (const [key, src] of layer.sources) {
      for (const k of [...sources.keys()]) {
        if (k.startsWith(`${key}[`) || (k.startsWith(`${key}.`) && isLeafOrList(layer.values, key))) {
          sources.delete(k);
        }
      }
      sources.set(key, src);
    }
  }
  return { values, sources };
}

function isLeafOrList(values: Record<string, unknown>, key: string): boolean {
  let v: unknown = values;
  for (const seg of key.split('.')) v = (v as Record<string, unknown> | undefined)?.[seg];
  return v === null || typeof v !== 'object' || Array.isArray(v);
}

function deepMerge(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    const t = target[k];
    if (isPlainObject(v) && isPlainObject(t)) deepMerge(t, v);
    else target[k] = isPlainObject(v) ? structuredClone(v) : v;
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
