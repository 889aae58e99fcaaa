/**
 * The node's replicated state: keys with versions, named leases with fencing tokens, and
 * client sessions that make retried writes exactly-once. Deterministic: the same entries
 * in the same order give the same state and results on every replica — no clocks, no
 * randomness; expiry of sessions is by log index, expiry of leases by leader-proposed
 * `expire` commands.
 */
import { createHash } from 'node:crypto';
import type { Entry, StateMachine } from '@quorate/raft';
import { Packr } from 'msgpackr';
import { type ClientRef, type Command, decodeCommand } from './commands.js';
import {
  type LedPartition,
  type PartitionFailure,
  type PartitionRecord,
  Partitions,
  type PartitionsSnapshot,
  type SessionRecord,
} from './partitions.js';
import { SortedKeys } from './sorted-keys.js';
import { WatchHub, type WatchHubOptions } from './watch-hub.js';

export interface KeyRecord {
  readonly value: Uint8Array;
  /** 1 on creation, +1 per write. */
  readonly version: number;
  /** Log index of the last write. */
  readonly modIndex: number;
}

export interface LeaseRecord {
  readonly name: string;
  readonly holder: string;
  /** Fencing token: the log index of the granting entry (monotonic across all leases). */
  readonly token: number;
  readonly ttlMs: number;
  /** Log index of the last grant or renewal. */
  readonly renewedIndex: number;
}

export type ApplyResult =
  | { ok: true; op: 'put'; key: string; version: number; modIndex: number; index: number; created: boolean }
  | { ok: true; op: 'delete'; key: string; deleted: boolean; index: number }
  | { ok: true; op: 'acquire' | 'renew'; lease: LeaseRecord }
  | { ok: true; op: 'release'; released: boolean }
  | { ok: true; op: 'expire'; expired: boolean }
  | { ok: true; op: 'txn'; succeeded: boolean; results: TxnResult[]; index: number }
  | { ok: false; code: 'CAS_FAILED'; current: { version: number; modIndex: number } | null }
  | { ok: false; code: 'LEASE_HELD' | 'LEASE_LOST'; lease: LeaseRecord | null }
  | { ok: false; code: 'STALE_SEQUENCE'; highest: number }
  | { ok: true; op: 'session'; session: SessionRecord; led: LedPartition[] }
  | { ok: true; op: 'session-close' | 'session-expire'; ended: boolean }
  | { ok: true; op: 'pset'; set: string; deleted?: boolean }
  | { ok: true; op: 'partition'; set: string; partition: number; state: PartitionView }
  | PartitionFailure;

/** One partition as the API shows it. */
export interface PartitionView {
  readonly replicas: readonly string[];
  readonly eligible: readonly string[];
  readonly leader: string | null;
  readonly epoch: number;
  readonly leaderEpoch: number;
}

export type TxnResult =
  | { op: 'put'; key: string; version: number }
  | { op: 'delete'; key: string; deleted: boolean }
  | { op: 'get'; key: string; value: Uint8Array | null; version: number };

/** What `apply` hands to the proposer: the result, and whether it was a replay. */
export interface Applied {
  readonly result: ApplyResult;
  readonly duplicate: boolean;
}

export interface MachineOptions {
  /** Sessions idle for this many log entries are forgotten. Default 1,000,000. */
  sessionTtlEntries?: number;
  /** Results remembered per client (in-flight window of one client). Default 64. */
  sessionWindow?: number;
  /** How much change history watchers can resume from. */
  watch?: WatchHubOptions;
}

const snapshotPackr = new Packr({ useRecords: false, moreTypes: false });

interface SnapshotHeader {
  format: number;
  appliedIndex: number;
  keys: number;
  leases: LeaseRecord[];
  sessions: [string, number, number, [number, ApplyResult][]][];
  /** Addresses of members added by membership changes: [id, peer, client]. */
  /** [id, peer address, client address, client-protocol address (optional)]. */
  members?: ([string, string, string] | [string, string, string, string])[];
  /** Sessions and partition sets (absent in snapshots of older versions: none). */
  partitions?: PartitionsSnapshot;
}

/** Where a member added by a membership change is reached. */
export interface MemberAddresses {
  readonly peerAddress: string;
  readonly clientAddress: string;
  /** Its client-protocol address, when it serves the protocol. */
  readonly protocolAddress?: string;
}

/**
 * One record of a snapshot: a 4-byte big-endian length, then msgpack. Stores and
 * transports may cut a snapshot's bytes into chunks of their own, so records carry their
 * own boundaries.
 */
function frame(v: unknown): Uint8Array {
  const body = snapshotPackr.pack(v);
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength);
  out.set(body, 4);
  return out;
}

/** The records of a snapshot from its bytes, however they were chunked. */
async function* unframe(data: AsyncIterable<Uint8Array>): AsyncGenerator<unknown> {
  let buf = new Uint8Array(0);
  let at = 0;
  for await (const chunk of data) {
    const rest = buf.byteLength - at;
    const next = new Uint8Array(rest + chunk.byteLength);
    next.set(buf.subarray(at), 0);
    next.set(chunk, rest);
    buf = next;
    at = 0;
    for (;;) {
      if (buf.byteLength - at < 4) break;
      const len = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0);
      if (buf.byteLength - at - 4 < len) break;
      yield snapshotPackr.unpack(buf.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
  }
  if (at !== buf.byteLength)
    throw new Error(`the snapshot ends inside a record (${buf.byteLength - at} bytes left over)`);
}

/** A snapshot being read: the records, as of its start, of the keys written since. */
interface SnapshotView {
  readonly before: Map<string, KeyRecord | undefined>;
  /** Dropped (too many unread views): reading it on would be wrong. */
  dead: boolean;
}

/** Snapshots read at once, at most; a new one beyond this expires the oldest. */
const MAX_VIEWS = 4;

interface Session {
  /** seq -> result, for the last `sessionWindow` sequences. */
  readonly results: Map<number, ApplyResult>;
  highest: number;
  lastIndex: number;
}

const SNAPSHOT_FORMAT = 2;
/**
 * A record of keys ends at whichever comes first. The runtime writes one record per turn
 * of the event loop, which heartbeats share: a record is what one turn costs. Measured in
 * a loaded node (200,000 keys of 256 B, 5,500 puts/s), records of 8,192 keys (2.2 MB)
 * took 20 ms to build at the median and up to 600 ms with the GC their buffers caused;
 * 64 KiB ones stay near a millisecond. Readers take records of any size.
 */
const RECORD_BYTES = 64 * 1024;
const RECORD_KEYS = 1024;

export class QuorateMachine implements StateMachine<Applied> {
  keys = new Map<string, KeyRecord>();
  private order = new SortedKeys();
  leases = new Map<string, LeaseRecord>();
  private sessions = new Map<string, Session>();
  /**
   * Addresses of the members that membership changes added, kept in log order by the
   * node (`recordMember`) and carried in snapshots: a node that restarts from a snapshot
   * taken after a member joined, or installs one, still knows where that member is.
   */
  readonly memberAddresses = new Map<string, MemberAddresses>();
  /** Snapshots being read (see `snapshot()`): each keeps the records written since it began. */
  private readonly views = new Set<SnapshotView>();
  appliedIndex = 0;
  private readonly sessionTtl: number;
  private readonly window: number;
  /** Every change, by the index that made it, for watchers. */
  readonly changes: WatchHub;
  /** Called when a lease is granted, renewed or ends, so the leader can track TTLs. */
  onLease?: (name: string, lease: LeaseRecord | null) => void;
  /** Called when a session is opened, kept alive or ends, so the leader can track TTLs. */
  onSession?: (id: number, session: SessionRecord | null) => void;
  /** Sessions and partition sets (docs/partitions.md). */
  readonly partitions = new Partitions(
    (c) => this.changes.change(c),
    (id, s) => this.onSession?.(id, s),
  );

  constructor(opts: MachineOptions = {}) {
    this.sessionTtl = opts.sessionTtlEntries ?? 1_000_000;
    this.window = opts.sessionWindow ?? 64;
    this.changes = new WatchHub(opts.watch);
  }

  apply(entry: Entry): Applied {
    const cmd = decodeCommand(entry.data);
    const index = entry.index;
    this.appliedIndex = index;
    if (index % 4096 === 0) this.expireSessions(index);
    const ref = 'ref' in cmd ? cmd.ref : undefined;
    if (ref) {
      const s = this.sessions.get(ref.client);
      if (s) {
        s.lastIndex = index;
        const seen = s.results.get(ref.seq);
        if (seen) return { result: seen, duplicate: true };
        if (ref.seq <= s.highest - this.window) {
          return { result: { ok: false, code: 'STALE_SEQUENCE', highest: s.highest }, duplicate: false };
        }
      }
    }
    const result = this.execute(cmd, index);
    if (ref) this.remember(ref, result, index);
    this.changes.applied(index);
    return { result, duplicate: false };
  }

  private remember(ref: ClientRef, result: ApplyResult, index: number): void {
    let s = this.sessions.get(ref.client);
    if (!s) {
      s = { results: new Map(), highest: 0, lastIndex: index };
      this.sessions.set(ref.client, s);
    }
    s.results.set(ref.seq, result);
    if (ref.seq > s.highest) s.highest = ref.seq;
    s.lastIndex = index;
    if (s.results.size > this.window) {
      for (const seq of s.results.keys()) {
        if (seq <= s.highest - this.window) s.results.delete(seq);
      }
    }
  }

  /** Forget sessions idle for longer than the TTL, measured in log entries. */
  private expireSessions(index: number): void {
    for (const [id, s] of this.sessions) if (index - s.lastIndex > this.sessionTtl) this.sessions.delete(id);
  }

  /**
   * Write a key (no conditions): its new record. The value is kept as decoded: a view into
   * the entry's bytes, which keeps the buffer it arrived in alive. Copying each value into a
   * buffer of its own cut each member's buffers from about 270 to 140 MB with 200,000 keys,
   * but cost 5-10 % of write throughput and 10-20 % of p99 at 64 and 256 clients; not done.
   */
  private write(key: string, value: Uint8Array, index: number, cur: KeyRecord | undefined): KeyRecord {
    const rec: KeyRecord = { value, version: (cur?.version ?? 0) + 1, modIndex: index };
    this.keepForViews(key, cur);
    this.keys.set(key, rec);
    if (!cur) this.order.add(key);
    this.changes.change({ type: 'put', key, value, version: rec.version });
    return rec;
  }

  /** Remove a key if present; whether it was. */
  private remove(key: string, cur: KeyRecord | undefined): boolean {
    if (!cur) return false;
    this.keepForViews(key, cur);
    this.keys.delete(key);
    this.order.delete(key);
    this.changes.change({ type: 'delete', key });
    return true;
  }

  private txn(c: Extract<Command, { op: 'txn' }>, index: number): ApplyResult {
    const holds = c.compare.every((m) => {
      const cur = this.keys.get(m.key);
      if (m.version !== undefined && (cur?.version ?? 0) !== m.version) return false;
      if (m.value !== undefined && (!cur || !bytesEqual(cur.value, m.value))) return false;
      if (m.exists !== undefined && (cur !== undefined) !== m.exists) return false;
      return true;
    });
    const results: TxnResult[] = [];
    for (const o of holds ? c.success : c.failure) {
      const cur = this.keys.get(o.key);
      if (o.op === 'put')
        results.push({ op: 'put', key: o.key, version: this.write(o.key, o.value, index, cur).version });
      else if (o.op === 'delete')
        results.push({ op: 'delete', key: o.key, deleted: this.remove(o.key, cur) });
      else results.push({ op: 'get', key: o.key, value: cur?.value ?? null, version: cur?.version ?? 0 });
    }
    return { ok: true, op: 'txn', succeeded: holds, results, index };
  }

  private execute(c: Command, index: number): ApplyResult {
    switch (c.op) {
      case 'txn':
        return this.txn(c, index);
      case 'put': {
        const cur = this.keys.get(c.key);
        if (c.ifVersion !== undefined && (cur?.version ?? 0) !== c.ifVersion) return this.casFailed(cur);
        if (c.ifValue !== undefined && (!cur || !bytesEqual(cur.value, c.ifValue)))
          return this.casFailed(cur);
        const rec = this.write(c.key, c.value, index, cur);
        return {
          ok: true,
          op: 'put',
          key: c.key,
          version: rec.version,
          modIndex: index,
          index,
          created: !cur,
        };
      }
      case 'delete': {
        const cur = this.keys.get(c.key);
        if (c.ifVersion !== undefined && (cur?.version ?? 0) !== c.ifVersion) return this.casFailed(cur);
        this.remove(c.key, cur);
        return { ok: true, op: 'delete', key: c.key, deleted: cur !== undefined, index };
      }
      case 'acquire': {
        const cur = this.leases.get(c.name);
        if (cur && cur.holder !== c.holder) return { ok: false, code: 'LEASE_HELD', lease: cur };
        // Re-acquiring one's own lease renews it and keeps the token.
        const lease: LeaseRecord = cur
          ? { ...cur, ttlMs: c.ttlMs, renewedIndex: index }
          : { name: c.name, holder: c.holder, token: index, ttlMs: c.ttlMs, renewedIndex: index };
        this.leases.set(c.name, lease);
        this.onLease?.(c.name, lease);
        if (!cur) this.changes.change({ type: 'lease', name: c.name, holder: c.holder, token: lease.token });
        return { ok: true, op: 'acquire', lease };
      }
      case 'renew': {
        const cur = this.leases.get(c.name);
        if (!cur || cur.holder !== c.holder || cur.token !== c.token) {
          return { ok: false, code: 'LEASE_LOST', lease: cur ?? null };
        }
        const lease: LeaseRecord = { ...cur, renewedIndex: index };
        this.leases.set(c.name, lease);
        this.onLease?.(c.name, lease);
        return { ok: true, op: 'renew', lease };
      }
      case 'release': {
        const cur = this.leases.get(c.name);
        if (!cur || cur.holder !== c.holder || cur.token !== c.token)
          return { ok: true, op: 'release', released: false };
        this.leases.delete(c.name);
        this.onLease?.(c.name, null);
        this.changes.change({ type: 'lease', name: c.name, holder: null, token: null });
        return { ok: true, op: 'release', released: true };
      }
      case 'session-open': {
        const session = this.partitions.open(c.owner, c.ttlMs, index);
        return { ok: true, op: 'session', session, led: [] };
      }
      case 'session-keepalive': {
        const s = this.partitions.keepAlive(c.session, index);
        if ('ok' in s) return s;
        return { ok: true, op: 'session', session: s, led: this.partitions.led(s.id) };
      }
      case 'session-close':
        return { ok: true, op: 'session-close', ended: this.partitions.end(c.session) };
      case 'session-expire':
        return { ok: true, op: 'session-expire', ended: this.partitions.end(c.session, c.renewedIndex) };
      case 'pset-create':
        return this.partitions.create(c.name, c.members, c.replicas) ?? { ok: true, op: 'pset', set: c.name };
      case 'pset-delete':
        return { ok: true, op: 'pset', set: c.name, deleted: this.partitions.delete(c.name) };
      case 'pset-join':
      case 'pset-leave':
        return (
          (c.op === 'pset-join'
            ? this.partitions.join(c.set, c.member, c.session)
            : this.partitions.leave(c.set, c.member, c.session)) ?? { ok: true, op: 'pset', set: c.set }
        );
      case 'part-resign':
        return partitionResult(
          c.set,
          c.partition,
          this.partitions.resign(c.set, c.partition, c.member, c.epoch),
        );
      case 'part-eligible':
        return partitionResult(
          c.set,
          c.partition,
          this.partitions.setEligible(c.set, c.partition, c.member, c.epoch, c.eligible),
        );
      case 'part-move':
        return partitionResult(c.set, c.partition, this.partitions.move(c.set, c.partition, c.to, c.epoch));
      case 'part-unclean':
        return partitionResult(c.set, c.partition, this.partitions.unclean(c.set, c.partition, c.to));
      case 'expire': {
        const cur = this.leases.get(c.name);
        // Only the grant the leader saw expire, unrenewed: a new grant, or a renewal
        // committed between the leader's decision and this entry, wins (the holder was
        // told its renewal succeeded and counts on the TTL from it).
        if (!cur || cur.token !== c.token || cur.renewedIndex !== c.renewedIndex)
          return { ok: true, op: 'expire', expired: false };
        this.leases.delete(c.name);
        this.onLease?.(c.name, null);
        this.changes.change({ type: 'lease', name: c.name, holder: null, token: null });
        return { ok: true, op: 'expire', expired: true };
      }
    }
  }

  private casFailed(cur: KeyRecord | undefined): ApplyResult {
    return {
      ok: false,
      code: 'CAS_FAILED',
      current: cur ? { version: cur.version, modIndex: cur.modIndex } : null,
    };
  }

  /**
   * The whole state as of the last applied entry, in records of about 64 KiB (each
   * `next()` builds one; the runtime lets go of the event loop between them). The
   * synchronous part — the only pause for writes — takes a consistent view: a flat copy
   * of the key order, the small leases and sessions copied deeply, and, for the records,
   * copy on write (the records of keys written while the snapshot is read are kept aside
   * for it). Read it to the end, or stop it (`return()`, as `for…of` does on a break or a
   * throw); at most four unread views are kept, and a fifth expires the oldest.
   */
  snapshot(): Iterable<Uint8Array> {
    // The pause is one flat copy of the key order (sorted chunks of strings). Records are
    // immutable and a write replaces them, so the view reads the live map, except for the
    // keys written since: their record as of the view is kept aside (copy on write).
    const order = this.order.copyChunks();
    const count = this.order.size;
    const live = this.keys;
    const view: SnapshotView = { before: new Map(), dead: false };
    if (this.views.size >= MAX_VIEWS) {
      // A snapshot nobody finished reading: stop keeping records for it.
      const oldest = this.views.values().next().value!;
      oldest.dead = true;
      this.views.delete(oldest);
    }
    this.views.add(view);
    const views = this.views;
    const leases = [...this.leases.values()];
    const sessions = [...this.sessions.entries()].map(
      ([id, s]) => [id, s.highest, s.lastIndex, [...s.results.entries()]] as const,
    );
    const appliedIndex = this.appliedIndex;
    const partitions = this.partitions.toJSON();
    const members = [...this.memberAddresses].map(([id, a]) =>
      a.protocolAddress
        ? ([id, a.peerAddress, a.clientAddress, a.protocolAddress] as [string, string, string, string])
        : ([id, a.peerAddress, a.clientAddress] as [string, string, string]),
    );
    return (function* () {
      yield frame({
        format: SNAPSHOT_FORMAT,
        appliedIndex,
        keys: count,
        leases,
        sessions,
        members,
        partitions,
      });
      try {
        let chunk: unknown[] = [];
        let bytes = 0;
        for (const keys of order) {
          for (const k of keys) {
            if (view.dead) throw new Error('the snapshot view expired: too many snapshots were left unread');
            const r = view.before.has(k) ? view.before.get(k)! : live.get(k)!;
            chunk.push(k, r.value, r.version, r.modIndex);
            // Its encoded size, about: the key, the value and up to 16 bytes of msgpack.
            bytes += k.length + r.value.byteLength + 16;
            if (bytes >= RECORD_BYTES || chunk.length === 4 * RECORD_KEYS) {
              yield frame(chunk);
              chunk = [];
              bytes = 0;
            }
          }
        }
        if (chunk.length > 0) yield frame(chunk);
      } finally {
        views.delete(view);
      }
    })();
  }

  /** Replace the whole state with a snapshot's. */
  async restore(_meta: unknown, data: AsyncIterable<Uint8Array>): Promise<void> {
    let header = null as SnapshotHeader | null;
    const keys = new Map<string, KeyRecord>();
    const order: string[] = [];
    for await (const v of unframe(data)) {
      if (header === null) {
        header = v as SnapshotHeader | null;
        if (!header || header.format !== SNAPSHOT_FORMAT) {
          throw new Error(
            `unknown snapshot format ${String(header?.format)}; this node reads format ${SNAPSHOT_FORMAT}`,
          );
        }
        continue;
      }
      const a = v as unknown[];
      for (let j = 0; j < a.length; j += 4) {
        const k = a[j] as string;
        keys.set(k, {
          value: a[j + 1] as Uint8Array,
          version: a[j + 2] as number,
          modIndex: a[j + 3] as number,
        });
        order.push(k);
      }
    }
    if (header === null) throw new Error('the snapshot is empty');
    if (order.length !== header.keys) {
      throw new Error(`the snapshot is truncated: ${order.length} of ${header.keys} keys`);
    }
    // Views taken before read the old map, which no write touches from now on.
    this.views.clear();
    this.keys = keys;
    this.order = SortedKeys.fromSorted(order);
    this.leases = new Map(header.leases.map((l) => [l.name, l]));
    this.sessions = new Map(
      header.sessions.map(([id, highest, lastIndex, results]) => [
        id,
        { highest, lastIndex, results: new Map(results) },
      ]),
    );
    this.memberAddresses.clear();
    for (const [id, peerAddress, clientAddress, protocolAddress] of header.members ?? [])
      this.memberAddresses.set(id, {
        peerAddress,
        clientAddress,
        ...(protocolAddress ? { protocolAddress } : {}),
      });
    this.partitions.restore(header.partitions);
    this.appliedIndex = header.appliedIndex;
    this.changes.reset(header.appliedIndex);
    for (const l of this.leases.values()) this.onLease?.(l.name, l);
  }

  get(key: string): KeyRecord | undefined {
    return this.keys.get(key);
  }

  list(
    prefix: string,
    limit: number,
    after?: string,
  ): { items: (KeyRecord & { key: string })[]; more: boolean } {
    const { keys, more } = this.order.prefix(prefix, limit, after);
    return { items: keys.map((k) => ({ key: k, ...this.keys.get(k)! })), more };
  }

  /** Before `key` changes: keep its record for every snapshot view that has not seen it change. */
  private keepForViews(key: string, cur: KeyRecord | undefined): void {
    for (const v of this.views) if (!v.before.has(key)) v.before.set(key, cur);
  }

  /** A membership change was applied: remember (or, with null, forget) a member's addresses. */
  recordMember(id: string, addresses: MemberAddresses | null): void {
    if (addresses) this.memberAddresses.set(id, addresses);
    else this.memberAddresses.delete(id);
  }

  /** A digest of the whole state, equal on replicas that applied the same entries. */
  hash(): string {
    const h = createHash('sha256');
    for (const k of this.order) {
      const r = this.keys.get(k)!;
      h.update(`k${k.length}:${k}:${r.version}:${r.modIndex}:${r.value.byteLength}:`);
      h.update(r.value);
    }
    for (const name of [...this.leases.keys()].sort()) {
      const l = this.leases.get(name)!;
      h.update(`l${name}:${l.holder}:${l.token}:${l.ttlMs}:${l.renewedIndex};`);
    }
    for (const id of [...this.sessions.keys()].sort()) {
      const s = this.sessions.get(id)!;
      h.update(`s${id}:${s.highest}:${s.lastIndex};`);
    }
    h.update(this.partitions.digest());
    return h.digest('hex');
  }
}

function partitionResult(set: string, partition: number, r: PartitionRecord | PartitionFailure): ApplyResult {
  if ('ok' in r) return r;
  return {
    ok: true,
    op: 'partition',
    set,
    partition,
    state: {
      replicas: r.replicas,
      eligible: [...r.eligible],
      leader: r.leader,
      epoch: r.epoch,
      leaderEpoch: r.leaderEpoch,
    },
  };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
