/**
 * The commands the node replicates through Raft, and their wire form in log entries.
 *
 * Everything a command carries was validated at the HTTP edge before it was proposed;
 * `decodeCommand` validates again, because a log entry is input too (a bug, a foreign
 * writer, a corrupt disk) and the state machine must fail loudly rather than guess.
 */
import { Packr } from 'msgpackr';

/** Exactly-once identity of a write: a client's id and its per-client sequence number. */
export interface ClientRef {
  readonly client: string;
  readonly seq: number;
}

/** A condition of a transaction on one key: all that are given must hold. */
export interface TxnCompare {
  readonly key: string;
  /** The key's version (0: absent). */
  readonly version?: number;
  readonly value?: Uint8Array;
  readonly exists?: boolean;
}

export type TxnOp =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'get'; readonly key: string };

export type Command =
  /** If every compare holds, `success`, else `failure`: atomically, in one entry. */
  | {
      readonly op: 'txn';
      readonly compare: readonly TxnCompare[];
      readonly success: readonly TxnOp[];
      readonly failure: readonly TxnOp[];
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'put';
      readonly key: string;
      readonly value: Uint8Array;
      readonly ifVersion?: number;
      readonly ifValue?: Uint8Array;
      readonly ref?: ClientRef;
    }
  | { readonly op: 'delete'; readonly key: string; readonly ifVersion?: number; readonly ref?: ClientRef }
  | {
      readonly op: 'acquire';
      readonly name: string;
      readonly holder: string;
      readonly ttlMs: number;
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'renew';
      readonly name: string;
      readonly holder: string;
      readonly token: number;
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'release';
      readonly name: string;
      readonly holder: string;
      readonly token: number;
      readonly ref?: ClientRef;
    }
  /** Proposed by a leader whose clock says the lease's TTL passed since its last renewal. */
  | {
      readonly op: 'expire';
      readonly name: string;
      readonly token: number;
      /**
       * The `renewedIndex` of the grant whose TTL the leader saw lapse: a renewal (or a
       * re-acquire) committed after that decision but before this entry changes it, and
       * then the lease stays.
       */
      readonly renewedIndex: number;
    }
  /** Sessions and partition sets (docs/partitions.md). */
  | { readonly op: 'session-open'; readonly owner: string; readonly ttlMs: number; readonly ref?: ClientRef }
  | { readonly op: 'session-keepalive'; readonly session: number; readonly ref?: ClientRef }
  | { readonly op: 'session-close'; readonly session: number; readonly ref?: ClientRef }
  /** Proposed by a leader whose clock says the session's TTL passed since `renewedIndex`. */
  | { readonly op: 'session-expire'; readonly session: number; readonly renewedIndex: number }
  | {
      readonly op: 'pset-create';
      readonly name: string;
      readonly members: readonly string[];
      readonly replicas: readonly (readonly string[])[];
      readonly ref?: ClientRef;
    }
  | { readonly op: 'pset-delete'; readonly name: string; readonly ref?: ClientRef }
  | {
      readonly op: 'pset-join' | 'pset-leave';
      readonly set: string;
      readonly member: string;
      readonly session: number;
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'part-resign';
      readonly set: string;
      readonly partition: number;
      readonly member: string;
      readonly epoch: number;
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'part-eligible';
      readonly set: string;
      readonly partition: number;
      /** The leader making the change, or null for an admin. */
      readonly member: string | null;
      readonly epoch: number;
      readonly eligible: readonly string[];
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'part-move';
      readonly set: string;
      readonly partition: number;
      readonly to: string;
      readonly epoch: number | null;
      readonly ref?: ClientRef;
    }
  | {
      readonly op: 'part-unclean';
      readonly set: string;
      readonly partition: number;
      readonly to: string;
      readonly ref?: ClientRef;
    };

export type CommandOp = Command['op'];

/** The msgpack tags of the session and partition commands. */
const CONTROL_TAGS = {
  'session-open': 'So',
  'session-keepalive': 'Sk',
  'session-close': 'Sc',
  'session-expire': 'Sx',
  'pset-create': 'Pc',
  'pset-delete': 'Pd',
  'pset-join': 'Pj',
  'pset-leave': 'Pl',
  'part-resign': 'Pr',
  'part-eligible': 'Pe',
  'part-move': 'Pm',
  'part-unclean': 'Pu',
} as const;
type ControlOp = keyof typeof CONTROL_TAGS;
const CONTROL_OPS = new Map<string, ControlOp>(
  Object.entries(CONTROL_TAGS).map(([op, tag]) => [tag, op as ControlOp]),
);

/** The fields each control command carries, in order, with their checks. */
const CONTROL_FIELDS: Record<ControlOp, [string, (x: unknown) => boolean][]> = {
  'session-open': [
    ['owner', (x) => isStr(x)],
    ['ttlMs', (x) => isInt(x)],
  ],
  'session-keepalive': [['session', (x) => isInt(x)]],
  'session-close': [['session', (x) => isInt(x)]],
  'session-expire': [
    ['session', (x) => isInt(x)],
    ['renewedIndex', (x) => isInt(x)],
  ],
  'pset-create': [
    ['name', (x) => isStr(x)],
    ['members', (x) => isStrList(x)],
    ['replicas', (x) => Array.isArray(x) && x.every(isStrList)],
  ],
  'pset-delete': [['name', (x) => isStr(x)]],
  'pset-join': [
    ['set', (x) => isStr(x)],
    ['member', (x) => isStr(x)],
    ['session', (x) => isInt(x)],
  ],
  'pset-leave': [
    ['set', (x) => isStr(x)],
    ['member', (x) => isStr(x)],
    ['session', (x) => isInt(x)],
  ],
  'part-resign': [
    ['set', (x) => isStr(x)],
    ['partition', (x) => isInt(x)],
    ['member', (x) => isStr(x)],
    ['epoch', (x) => isInt(x)],
  ],
  'part-eligible': [
    ['set', (x) => isStr(x)],
    ['partition', (x) => isInt(x)],
    ['member', (x) => x === null || isStr(x)],
    ['epoch', (x) => isInt(x)],
    ['eligible', (x) => isStrList(x)],
  ],
  'part-move': [
    ['set', (x) => isStr(x)],
    ['partition', (x) => isInt(x)],
    ['to', (x) => isStr(x)],
    ['epoch', (x) => x === null || isInt(x)],
  ],
  'part-unclean': [
    ['set', (x) => isStr(x)],
    ['partition', (x) => isInt(x)],
    ['to', (x) => isStr(x)],
  ],
};

function encodeControl(c: Extract<Command, { op: ControlOp }>): Uint8Array {
  const fields = CONTROL_FIELDS[c.op].map(([f]) => (c as unknown as Record<string, unknown>)[f]);
  const r = 'ref' in c ? c.ref : undefined;
  return packr.pack([CONTROL_TAGS[c.op], ...fields, ...ref(r)]);
}

function decodeControl(op: ControlOp, a: unknown[]): Command | null {
  const spec = CONTROL_FIELDS[op];
  const out: Record<string, unknown> = { op };
  for (const [i, [f, ok]] of spec.entries()) {
    if (!ok(a[i + 1])) return null;
    out[f] = a[i + 1];
  }
  const client = a[spec.length + 1] ?? null;
  const seq = a[spec.length + 2] ?? null;
  if (client !== null) out.ref = decodeRef(client, seq);
  return out as unknown as Command;
}

const isStrList = (x: unknown): x is string[] => Array.isArray(x) && x.every(isStr);

// Plain msgpack (no shared structures): every entry decodes on its own, on any replica,
// from a snapshot or a log written by an older version.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeCommand(c: Command): Uint8Array {
  switch (c.op) {
    case 'put':
      return packr.pack(['p', c.key, c.value, c.ifVersion ?? null, c.ifValue ?? null, ...ref(c.ref)]);
    case 'delete':
      return packr.pack(['d', c.key, c.ifVersion ?? null, ...ref(c.ref)]);
    case 'acquire':
      return packr.pack(['a', c.name, c.holder, c.ttlMs, ...ref(c.ref)]);
    case 'renew':
      return packr.pack(['n', c.name, c.holder, c.token, ...ref(c.ref)]);
    case 'release':
      return packr.pack(['r', c.name, c.holder, c.token, ...ref(c.ref)]);
    case 'expire':
      return packr.pack(['x', c.name, c.token, c.renewedIndex]);
    case 'session-open':
    case 'session-keepalive':
    case 'session-close':
    case 'session-expire':
    case 'pset-create':
    case 'pset-delete':
    case 'pset-join':
    case 'pset-leave':
    case 'part-resign':
    case 'part-eligible':
    case 'part-move':
    case 'part-unclean':
      return encodeControl(c);
    case 'txn':
      return packr.pack([
        't',
        c.compare.map((m) => [m.key, m.version ?? null, m.value ?? null, m.exists ?? null]),
        c.success.map(txnOp),
        c.failure.map(txnOp),
        ...ref(c.ref),
      ]);
  }
}

function txnOp(o: TxnOp): unknown[] {
  return o.op === 'put' ? ['p', o.key, o.value] : [o.op === 'delete' ? 'd' : 'g', o.key];
}

function decodeTxnOps(x: unknown): TxnOp[] | null {
  if (!Array.isArray(x)) return null;
  const out: TxnOp[] = [];
  for (const o of x) {
    if (!Array.isArray(o) || !isStr(o[1])) return null;
    if (o[0] === 'p' && isBytes(o[2])) out.push({ op: 'put', key: o[1], value: o[2] });
    else if (o[0] === 'd') out.push({ op: 'delete', key: o[1] });
    else if (o[0] === 'g') out.push({ op: 'get', key: o[1] });
    else return null;
  }
  return out;
}

function ref(r: ClientRef | undefined): [string | null, number | null] {
  return r ? [r.client, r.seq] : [null, null];
}

export class CommandDecodeError extends Error {
  readonly code = 'BAD_COMMAND';
}

const isStr = (x: unknown): x is string => typeof x === 'string';
const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function decodeRef(client: unknown, seq: unknown): ClientRef | undefined {
  if (client === null && seq === null) return undefined;
  if (isStr(client) && isInt(seq) && seq >= 1) return { client, seq };
  throw new CommandDecodeError('bad client reference');
}

export function decodeCommand(data: Uint8Array): Command {
  let a: unknown;
  try {
    a = packr.unpack(data);
  } catch (err) {
    throw new CommandDecodeError(`undecodable command: ${(err as Error).message}`);
  }
  if (!Array.isArray(a) || !isStr(a[0]))
    throw new CommandDecodeError('a command is an array starting with its op');
  const control = CONTROL_OPS.get(a[0]);
  if (control) {
    const c = decodeControl(control, a);
    if (c) return c;
    throw new CommandDecodeError(`malformed ${control} command`);
  }
  switch (a[0]) {
    case 'p': {
      const [, key, value, ifVersion, ifValue, client, seq] = a;
      if (!isStr(key) || !isBytes(value)) break;
      if (ifVersion !== null && !isInt(ifVersion)) break;
      if (ifValue !== null && !isBytes(ifValue)) break;
      return {
        op: 'put',
        key,
        value,
        ...(ifVersion !== null ? { ifVersion } : {}),
        ...(ifValue !== null ? { ifValue } : {}),
        ...(client !== null ? { ref: decodeRef(client, seq) } : {}),
      };
    }
    case 'd': {
      const [, key, ifVersion, client, seq] = a;
      if (!isStr(key) || (ifVersion !== null && !isInt(ifVersion))) break;
      return {
        op: 'delete',
        key,
        ...(ifVersion !== null ? { ifVersion } : {}),
        ...(client !== null ? { ref: decodeRef(client, seq) } : {}),
      };
    }
    case 'a': {
      const [, name, holder, ttlMs, client, seq] = a;
      if (!isStr(name) || !isStr(holder) || !isInt(ttlMs)) break;
      return {
        op: 'acquire',
        name,
        holder,
        ttlMs,
        ...(client !== null ? { ref: decodeRef(client, seq) } : {}),
      };
    }
    case 'n':
    case 'r': {
      const [, name, holder, token, client, seq] = a;
      if (!isStr(name) || !isStr(holder) || !isInt(token)) break;
      const op = a[0] === 'n' ? 'renew' : 'release';
      return { op, name, holder, token, ...(client !== null ? { ref: decodeRef(client, seq) } : {}) };
    }
    case 't': {
      const [, cmps, succ, fail, client, seq] = a;
      const success = decodeTxnOps(succ);
      const failure = decodeTxnOps(fail);
      if (!Array.isArray(cmps) || !success || !failure) break;
      const compare: TxnCompare[] = [];
      let bad = false;
      for (const m of cmps) {
        if (!Array.isArray(m) || !isStr(m[0])) {
          bad = true;
          break;
        }
        const [key, version, value, exists] = m;
        if ((version !== null && !isInt(version)) || (value !== null && !isBytes(value))) bad = true;
        if (exists !== null && typeof exists !== 'boolean') bad = true;
        compare.push({
          key,
          ...(version !== null ? { version } : {}),
          ...(value !== null ? { value } : {}),
          ...(exists !== null ? { exists } : {}),
        });
      }
      if (bad) break;
      return {
        op: 'txn',
        compare,
        success,
        failure,
        ...(client !== null ? { ref: decodeRef(client, seq) } : {}),
      };
    }
    case 'x': {
      const [, name, token, renewedIndex] = a;
      if (!isStr(name) || !isInt(token) || !isInt(renewedIndex)) break;
      return { op: 'expire', name, token, renewedIndex };
    }
  }
  throw new CommandDecodeError(`malformed ${String(a[0])} command`);
}
