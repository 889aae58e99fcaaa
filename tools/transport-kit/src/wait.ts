/**
 * Wait until `cond()` holds, polling; throw naming `what` once `timeoutMs` has passed.
 * `what` may be a function, to describe the state at the moment of the timeout.
 */
export async function waitUntil(
  cond: () => boolean,
  what: string | (() => string),
  timeoutMs = 10_000,
  everyMs = 10,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
