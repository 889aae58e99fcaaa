/**
 * For programs: load the configuration or explain why not and exit with status 2 (no
 * stack trace); answer `--print-config` and exit 0.
 */
import { isConfigError } from './errors.js';
import { type LoadedConfig, type LoadOptions, loadConfig } from './load.js';
import { formatConfig } from './print.js';

/** Where text goes (`process.stdout`, `process.stderr` or any stream). */
export interface TextSink {
  write(text: string, done: (err?: Error | null) => void): unknown;
}

export interface CliOptions extends LoadOptions {
  /** Prefix of the error message. Default `quorate`. */
  program?: string;
  stdout?: TextSink;
  stderr?: TextSink;
  exit?: (code: number) => never;
}

/** Exit status for an invalid configuration (usage error, as in sysexits' spirit). */
export const CONFIG_EXIT_CODE = 2;

const write = (s: TextSink, text: string) =>
  new Promise<void>((resolve) => {
    s.write(text, () => resolve());
  });

export async function loadConfigOrExit(opts: CliOptions = {}): Promise<LoadedConfig> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(opts);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    await write(stderr, `${opts.program ?? 'quorate'}: ${err.message}\n`);
    return exit(CONFIG_EXIT_CODE);
  }
  if (loaded.printConfig) {
    await write(stdout, formatConfig(loaded));
    return exit(0);
  }
  return loaded;
}
