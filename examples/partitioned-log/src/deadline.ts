/**
 * A signal that aborts after `ms` or when `parent` does, with a plain timer: Node 20's
 * `AbortSignal.any([AbortSignal.timeout(ms)])` can lose the timeout signal to the garbage
 * collector and never fire (nodejs/node#57736), which left a follower waiting forever on
 * a frozen leader. Call `clear()` when done.
 */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(parent?.reason);
  const t = setTimeout(
    () => ctrl.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')),
    Math.max(1, Math.ceil(ms)),
  );
  if (parent?.aborted) onAbort();
  else parent?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctrl.signal,
    clear() {
      clearTimeout(t);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}
