/**
 * The I/O reader: finds and reads the YAML file, takes the environment and the command
 * line, merges them (flags > environment > file > defaults), validates, and checks that
 * the files the configuration names can be read.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, ConfigErrorCode, type ConfigIssue, ConfigRule, type ConfigSource } from './errors.js';
import { DEFAULT_ENV_PREFIX } from './fields.js';
import type { Config } from './schema.js';
import { fromArgv, fromEnv, fromYaml, type Layer, mergeLayers } from './sources.js';
import { type SourceMap, sourceOf, validate } from './validate.js';

export interface LoadOptions {
  /** Command-line arguments after the program (and subcommand) name. Default: none. */
  argv?: readonly string[];
  /** Default: none. Pass `process.env` to read the real environment. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Used when neither `--config` nor `<prefix>CONFIG` names a file. */
  file?: string;
  /** Relative paths (the file, TLS files) resolve against this. Default `process.cwd()`. */
  cwd?: string;
  /** Environment variable prefix. Default `QUORATE_`. */
  envPrefix?: string;
}

export interface LoadedConfig {
  readonly config: Config;
  /** The source of every value that did not come from the defaults. */
  readonly sources: SourceMap;
  /** The YAML file read, if any. */
  readonly file: string | null;
  /** `--print-config` was given. */
  readonly printConfig: boolean;
}

/**
 * Load the configuration. Throws a `ConfigError` listing every problem found: unknown
 * keys, variables and flags, bad values, broken cross-field rules, unreadable files.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const prefix = opts.envPrefix ?? DEFAULT_ENV_PREFIX;
  const env = opts.env ?? {};
  const args = fromArgv(opts.argv ?? []);
  const envLayer = fromEnv(env, { prefix });

  const envFile = env[`${prefix}CONFIG`];
  const file = args.configFile ?? (envFile ? envFile : undefined) ?? opts.file ?? null;
  let fileLayer: Layer | null = null;
  if (file !== null) {
    const fileSource: ConfigSource = args.configFile
      ? { kind: 'flag', name: '--config' }
      : envFile
        ? { kind: 'env', name: `${prefix}CONFIG` }
        : { kind: 'default' };
    let text: string;
    try {
      text = await readFile(resolve(cwd, file), 'utf8');
    } catch (err) {
      throw new ConfigError(
        ConfigErrorCode.FileUnreadable,
        [
          {
            key: 'config file',
            source: fileSource,
            rule: ConfigRule.FileUnreadable,
            message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          },
        ],
        { cause: err },
      );
    }
    fileLayer = fromYaml(text, file);
  }

  const early = [...(fileLayer?.issues ?? []), ...envLayer.issues, ...args.issues];
  if (fileLayer && fileLayer.issues.length > 0) {
    // A half-parsed file would only add misleading follow-up errors.
    throw new ConfigError(ConfigErrorCode.Invalid, early);
  }
  const merged = mergeLayers([...(fileLayer ? [fileLayer] : []), envLayer, args]);
  const result = validate(merged.values, merged.sources);
  const issues: ConfigIssue[] = [...early];
  if (!result.ok) issues.push(...result.issues);
  else issues.push(...(await checkFiles(result.config, merged.sources, cwd)));
  if (issues.length > 0) throw new ConfigError(ConfigErrorCode.Invalid, issues);

  const sources = new Map(merged.sources);
  for (const d of result.ok ? result.derived : []) sources.set(d.key, { kind: 'derived', from: d.from });
  return { config: (result as { config: Config }).config, sources, file, printConfig: args.printConfig };
}

/** Every file the configuration names must be readable now, not at the first handshake. */
export async function checkFiles(config: Config, sources: SourceMap, cwd: string): Promise<ConfigIssue[]> {
  const tls = config.transport.tls;
  if (!tls.enabled) return [];
  const issues: ConfigIssue[] = [];
  for (const k of ['certFile', 'keyFile', 'caFile'] as const) {
    const f = tls[k];
    if (f === undefined) continue;
    try {
      await readFile(resolve(cwd, f));
    } catch (err) {
      const key = `transport.tls.${k}`;
      issues.push({
        key,
        source: sourceOf(sources, key),
        rule: ConfigRule.FileUnreadable,
        message: `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
    }
  }
  return issues;
}
