/** Small builders for histories in tests. */
import type { HistoryEvent } from '../src/index.js';

export interface Spec {
  /** Process. */
  p: number;
  f: 'put' | 'get' | 'cas' | 'delete' | 'acquire';
  /** put: value; get: value read; cas: [expected, new]; delete: deleted? (or null). */
  v?: unknown;
  /** Invocation and completion times; completion null = never completed. */
  at: [number, number | null];
  /** Completion type (default ok). */
  type?: 'ok' | 'fail' | 'info';
  key?: string;
}

/** The events of the operations, in time order (invocations first at equal times). */
export function history(...specs: Spec[]): HistoryEvent[] {
  const out: { e: HistoryEvent; t: number; c: number }[] = [];
  for (const s of specs) {
    const key = s.key ?? 'k';
    const invokeValue = s.f === 'get' || s.f === 'delete' ? null : (s.v ?? null);
    out.push({
      e: { process: s.p, type: 'invoke', f: s.f, key, value: invokeValue, time: s.at[0] },
      t: s.at[0],
      c: 0,
    });
    if (s.at[1] !== null) {
      const type = s.type ?? 'ok';
      let value: unknown = invokeValue;
      if (s.f === 'get') value = type === 'ok' ? s.v : null;
      if (s.f === 'delete') value = type === 'ok' ? (s.v ?? null) : null;
      out.push({ e: { process: s.p, type, f: s.f, key, value, time: s.at[1] }, t: s.at[1], c: 1 });
    }
  }
  out.sort((a, b) => a.t - b.t || a.c - b.c);
  return out.map((x) => x.e);
}

export function jsonl(events: HistoryEvent[]): string {
  return `${events.map((e) => JSON.stringify(e)).join('\n')}\n`;
}
