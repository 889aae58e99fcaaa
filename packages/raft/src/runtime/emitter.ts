/** A minimal typed event emitter (no dependency on node:events, so the package runs anywhere). */
export class Emitter<Events extends { type: string }> {
  private readonly listeners = new Map<string, Set<(e: never) => void>>();
  private readonly any = new Set<(e: Events) => void>();

  on<K extends Events['type']>(type: K, fn: (e: Extract<Events, { type: K }>) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(fn as (e: never) => void);
    return () => set.delete(fn as (e: never) => void);
  }

  /** Every event, whatever its type. Returns an unsubscribe function. */
  onAny(fn: (e: Events) => void): () => void {
    this.any.add(fn);
    return () => this.any.delete(fn);
  }

  hasListeners(type: Events['type']): boolean {
    return this.any.size > 0 || (this.listeners.get(type)?.size ?? 0) > 0;
  }

  emit(e: Events): void {
    const set = this.listeners.get(e.type);
    if (set) for (const fn of set) safeCall(fn as (e: Events) => void, e);
    for (const fn of this.any) safeCall(fn, e);
  }
}

function safeCall<E>(fn: (e: E) => void, e: E): void {
  try {
    fn(e);
  } catch (err) {
    // A listener's bug must not break consensus; surface it without throwing.
    queueMicrotask(() => {
      throw err;
    });
  }
}
