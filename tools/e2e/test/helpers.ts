import { spawn } from 'node:child_process';
import { checkRun, finalStates, type HistoryFile } from '@quorate/loadgen';
import { type Browser, chromium } from 'playwright-core';

export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The load generator's check of a history: linearizability and lost writes against every replica. */
export async function checkHistory(
  history: HistoryFile,
  endpoints: readonly string[],
): Promise<{ linearizable: boolean | null; lostWrites: number }> {
  const r = await checkRun(history, await finalStates(endpoints));
  return { linearizable: r.linearizable as boolean | null, lostWrites: r.lostWrites as number };
}

/**
 * Run `node <args>` to completion and collect its output; SIGKILL it and fail after
 * `timeoutMs`, so no process outlives its test.
 */
export function runNode(
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: { ...process.env, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port free on 127.0.0.1 now, never one handed out before in this process (the loadgen's). */
export { freePort } from '@quorate/loadgen';

/** Debian's Chromium, headless, with nothing running beside the page (no sync, no updates). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
