/**
 * Lost writes: an acknowledged write that the final state contradicts. After a run, every
 * replica's value of every key is read back. For a key whose final value on some replica
 * is `v`, an acknowledged write `w` is lost when every write that could have left `v`
 * behind finished before `w` began: `w` then came later, took effect (it was
 * acknowledged), and yet its value — or any later one — is not what the replica holds.
 * A final value that no write ever wrote loses every acknowledged write of the key.
 */
import type { Operation } from './history.js';

/** Final values: replica → key → value (a missing key, or null, is an absent key). */
export type FinalStates = ReadonlyMap<string, ReadonlyMap<string, string | null>>;

export interface LostWrite {
  readonly key: string;
  readonly replica: string;
  /** What the acknowledged write wrote (null for a delete). */
  readonly wrote: string | null;
  readonly process: number;
  /** What the replica holds instead. */
  readonly found: string | null;
}

/** What a write operation leaves in its key, or undefined for a read. */
function written(op: Operation): string | null | undefined {
  if (op.f === 'put') return op.value;
  if (op.f === 'cas') return op.value[1];
  if (op.f === 'delete') return null;
  return undefined;
}

/**
 * Acknowledged writes the final states contradict, one entry per (write, replica).
 * `ops` are a parsed history's operations (`parseHistory(...).ops`): definite failures are
 * already gone, unknown outcomes (`info`) may have taken effect at any time.
 */
export function findLostWrites(ops: readonly Operation[], finals: FinalStates): LostWrite[] {
  const writes = new Map<string, Operation[]>();
  for (const op of ops) {
    if (written(op) === undefined) continue;
    const list = writes.get(op.key) ?? [];
    list.push(op);
    writes.set(op.key, list);
  }
  const lost: LostWrite[] = [];
  for (const [key, list] of writes) {
    for (const [replica, state] of finals) {
      const found = state.get(key) ?? null;
      const sources = list.filter((w) => written(w) === found);
      for (const w of list) {
        if (w.status !== 'ok') continue;
        // A source finishing after w began (or never known to finish) may have overwritten w.
        // The key's initial absence never explains an absent value: w came after it.
        const explained = sources.some((c) => c === w || c.ret === null || c.ret >= w.call);
        if (!explained) lost.push({ key, replica, wrote: written(w) ?? null, process: w.process, found });
      }
    }
  }
  return lost;
}
