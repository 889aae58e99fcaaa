/**
 * `--print-config`: the effective configuration, each value with its source, secrets
 * redacted. Pure.
 */
import { Document, isMap, isPair, isScalar, isSeq } from 'yaml';
import { describeSource } from './errors.js';
import { configFields } from './fields.js';
import type { LoadedConfig } from './load.js';
import { keyOf, sourceOf } from './validate.js';

export const REDACTED = '<redacted>';

export interface DescribedValue {
  readonly key: string;
  readonly value: unknown;
  /** `default`, `derived from …`, `quorate.yaml:3:1`, `env QUORATE_…`, `flag --…`. */
  readonly source: string;
}

/** The config in schema order, unset keys as null, secrets redacted. */
function redacted(loaded: Pick<LoadedConfig, 'config'>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of configFields()) {
    let from: unknown = loaded.config;
    for (const seg of f.path) from = (from as Record<string, unknown>)[seg];
    let to = out;
    for (const seg of f.path.slice(0, -1)) {
      to[seg] ??= {};
      to = to[seg] as Record<string, unknown>;
    }
    to[f.path.at(-1)!] = from === undefined ? null : f.secret ? REDACTED : structuredClone(from);
  }
  return out;
}

/** Every leaf setting (members: one row per member field), with its source. */
export function describeConfig(loaded: Pick<LoadedConfig, 'config' | 'sources'>): DescribedValue[] {
  const out: DescribedValue[] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) walk(x, [...path, i]);
      } else for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
      return;
    }
    const key = keyOf(path);
    out.push({ key, value: v, source: describeSource(sourceOf(loaded.sources, key)) });
  };
  walk(redacted(loaded), []);
  return out;
}

/** The effective configuration as YAML (a valid config file) with sources as comments, or JSON. */
export function formatConfig(
  loaded: Pick<LoadedConfig, 'config' | 'sources'>,
  format: 'yaml' | 'json' = 'yaml',
): string {
  if (format === 'json') return `${JSON.stringify(describeConfig(loaded), null, 2)}\n`;
  const doc = new Document(redacted(loaded));
  const annotate = (node: unknown, path: (string | number)[]) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const p = [...path, String(pair.key.value)];
        if (isScalar(pair.value))
          pair.value.comment = ` ${describeSource(sourceOf(loaded.sources, keyOf(p)))}`;
        else annotate(pair.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        annotate(item, [...path, i]);
      });
    }
  };
  annotate(doc.contents, []);
  return doc.toString({ lineWidth: 0 });
}
