import { checkRun, finalStates, type HistoryFile } from '@quorate/loadgen';

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
