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

/** One key's write by one operation: what it leaves there (null for a delete). */
interface KeyWrite {
  readonly op: Operation;
  readonly value: string | null;
}

/**
 * What an operation leaves in each key it writes. A transaction's branch is known when it
 * completed; for an unknown outcome either branch may have run, so both count as writes
 * that may have happened.
 */
function writesOf(op: Operation): [string, string | null][] {
  switch (op.f) {
    case 'put':
      return [[op.key, op.value]];
    case 'cas':
      return [[op.key, op.value[1]]];
    case 'delete':
      return [[op.key, null]];
    case 'get':
      return [];
    case 'txn': {
      const branches = op.outcome
        ? [op.outcome.succeeded ? op.value.success : op.value.failure]
        : [op.value.success, op.value.failure];
      const out: [string, string | null][] = [];
      for (const steps of branches) {
        // Within a branch the last write to a key is what it leaves.
        const last = new Map<string, string | null>();
        for (const s of steps) if (s.op !== 'get') last.set(s.key, s.op === 'put' ? s.value : null);
        out.push(...last);
      }
      return out;
    }
  }
}

/**
 * Acknowledged writes the final states contradict, one entry per (write, replica).
 * `ops` are a parsed history's operations (`parseHistory(...).ops`): definite failures are
 * already gone, unknown outcomes (`info`) may have taken effect at any time.
 */
export function findLostWrites(ops: readonly Operation[], finals: FinalStates): LostWrite[] {
  const writes = new Map<string, KeyWrite[]>();
  for (const op of ops) {
    for (const [key, value] of writesOf(op)) {
      const list = writes.get(key) ?? [];
      list.push({ op, value });
      writes.set(key, list);
    }
  }
  const lost: LostWrite[] = [];
  for (const [key, list] of writes) {
    for (const [replica, state] of finals) {
      const found = state.get(key) ?? null;
      const sources = list.filter((w) => w.value === found);
      for (const w of list) {
        if (w.op.status !== 'ok') continue;
        // A source finishing after w began (or never known to finish) may have overwritten w.
        // The key's initial absence never explains an absent value: w came after it.
        const explained = sources.some((c) => c === w || c.op.ret === null || c.op.ret >= w.op.call);
        if (!explained) lost.push({ key, replica, wrote: w.value, process: w.op.process, found });
      }
    }
  }
  return lost;
}
