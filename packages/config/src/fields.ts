/**
 * The leaves of the schema, each with its environment variable and flag. Names derive from
 * the path: `raft.heartbeatIntervalMs` is `QUORATE_RAFT_HEARTBEAT_INTERVAL_MS` and
 * `--raft.heartbeat-interval-ms`. The README's table and the env/flag readers use this.
 */
import type * as z from 'zod';
import { configShape, fieldMeta } from './schema.js';

export type FieldKind = 'number' | 'boolean' | 'string' | 'enum' | 'list';

export interface FieldInfo {
  /** Path segments: `['raft', 'heartbeatIntervalMs']`. */
  readonly path: readonly string[];
  /** Dotted path, as in YAML: `raft.heartbeatIntervalMs`. */
  readonly key: string;
  readonly env: string;
  readonly flag: string;
  readonly kind: FieldKind;
  /** The allowed values of an enum. */
  readonly values?: readonly string[];
  /** The default, or `undefined` when unset by default (or derived from other fields). */
  readonly default: unknown;
  readonly description: string;
  readonly secret: boolean;
}

export const DEFAULT_ENV_PREFIX = 'QUORATE_';

const words = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(' ');

export function envName(path: readonly string[], prefix = DEFAULT_ENV_PREFIX): string {
  return prefix + path.flatMap(words).join('_').toUpperCase();
}

export function flagName(path: readonly string[]): string {
  return `--${path.map((p) => words(p).join('-')).join('.')}`;
}

type AnyDef = { type: string; innerType?: z.ZodType; out?: z.ZodType; shape?: Record<string, z.ZodType> };
const defOf = (s: z.ZodType) =>
  (s as unknown as { _zod: { def: AnyDef & Record<string, unknown> } })._zod.def;

function describeLeaf(schema: z.ZodType, path: string[], prefix: string): FieldInfo {
  let s = schema;
  let description = '';
  let secret = false;
  let dflt: unknown;
  for (;;) {
    const meta = fieldMeta.get(s);
    if (meta) {
      description ||= meta.description;
      secret ||= meta.secret === true;
    }
    const def = defOf(s);
    if (def.type === 'default') {
      dflt = def.defaultValue;
      s = def.innerType!;
    } else if (def.type === 'optional' || def.type === 'prefault' || def.type === 'nullable') {
      s = def.innerType!;
    } else if (def.type === 'pipe') {
      s = def.out!;
    } else {
      break;
    }
  }
  const def = defOf(s);
  let kind: FieldKind;
  let values: string[] | undefined;
  if (def.type === 'number') kind = 'number';
  else if (def.type === 'boolean') kind = 'boolean';
  else if (def.type === 'string') kind = 'string';
  else if (def.type === 'array') kind = 'list';
  else if (def.type === 'enum') {
    kind = 'enum';
    values = Object.values(def.entries as Record<string, string>);
  } else throw new Error(`config schema: unsupported field type ${def.type} at ${path.join('.')}`);
  return {
    path,
    key: path.join('.'),
    env: envName(path, prefix),
    flag: flagName(path),
    kind,
    ...(values ? { values } : {}),
    default: dflt,
    description,
    secret,
  };
}

function unwrapObject(schema: z.ZodType): Record<string, z.ZodType> | null {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.type === 'object') return def.shape as Record<string, z.ZodType>;
    if (def.type === 'prefault' || def.type === 'optional' || def.type === 'default') s = def.innerType!;
    else return null;
  }
}

const cache = new Map<string, FieldInfo[]>();

/** Every leaf of the schema, in schema order. */
export function configFields(prefix = DEFAULT_ENV_PREFIX): readonly FieldInfo[] {
  const hit = cache.get(prefix);
  if (hit) return hit;
  const out: FieldInfo[] = [];
  const walk = (shape: Record<string, z.ZodType>, path: string[]) => {
    for (const [k, s] of Object.entries(shape)) {
      const inner = unwrapObject(s);
      if (inner) walk(inner, [...path, k]);
      else out.push(describeLeaf(s, [...path, k], prefix));
    }
  };
  walk(configShape.shape as unknown as Record<string, z.ZodType>, []);
  cache.set(prefix, out);
  return out;
}

/** The keys the schema allows directly under `path` (for typo suggestions). */
export function keysUnder(path: readonly PropertyKey[]): string[] {
  let shape: Record<string, z.ZodType> | null = configShape.shape as unknown as Record<string, z.ZodType>;
  for (const seg of path) {
    if (!shape) return [];
    if (typeof seg !== 'string') continue;
    const next: z.ZodType | undefined = shape[seg];
    if (!next) return [];
    shape = unwrapObject(next) ?? memberShape(next);
  }
  return shape ? Object.keys(shape) : [];
}

/** The item shape of an array field (members), if any. */
function memberShape(schema: z.ZodType): Record<string, z.ZodType> | null {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.type === 'default' || def.type === 'optional' || def.type === 'prefault') s = def.innerType!;
    else if (def.type === 'pipe') s = def.out!;
    else if (def.type === 'array') return unwrapObject(def.element as z.ZodType);
    else return null;
  }
}
