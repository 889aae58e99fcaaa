/**
 * `watch()`: the changes of the replicated state as an async iterator, from any member,
 * over Server-Sent Events (`GET /watch`) or the client protocol. Each item is one log
 * entry's changes. When the connection breaks (the member died, restarted, cut a slow
 * reader off), the iterator reconnects to another member and resumes exactly after the
 * last index it delivered or heard of as sent: nothing is skipped, nothing repeated.
 *
 * On a sharded cluster (docs/sharding.md) each Raft group has its own log, so positions
 * are per group: every batch names its group, and a resumed watch gives every group's
 * position (`from=g:i,…`) instead of one `fromIndex`.
 */
import { Agent, request } from 'undici';
import { ClientError } from './errors.js';
import type { ProtocolError } from './protocol.js';
import type { ProtocolStream, ProtocolWire } from './protocol-wire.js';
import type { ClientTls } from './wire.js';

export type WatchChange =
  | {
      readonly type: 'put';
      readonly key: string;
      readonly value: Uint8Array;
      readonly version: number;
      text(): string;
    }
  | { readonly type: 'delete'; readonly key: string }
  | {
      readonly type: 'lease';
      readonly name: string;
      readonly holder: string | null;
      readonly token: number | null;
    }
  | {
      /** A partition's leader or eligible set changed (docs/partitions.md). */
      readonly type: 'partition';
      readonly set: string;
      readonly partition: number;
      /** null: leaderless. */
      readonly leader: string | null;
      /** +1 with every change of leader or eligible set. */
      readonly epoch: number;
      /** +1 with every change of leader (to a member or to none): unchanged when only the eligible set changed. */
      readonly leaderEpoch: number;
      readonly eligible: readonly string[];
    };

export interface WatchBatch {
  /**
   * The Raft group whose log holds this entry: present on a sharded cluster (several
   * groups, each with its own log and indexes), absent on a cluster of one group.
   */
  readonly group?: number;
  /** The log index of the entry that made these changes (of `group`'s log, when sharded). */
  readonly index: number;
  readonly changes: readonly WatchChange[];
  /**
   * On a sharded cluster: where a new watch resumes right after this batch, per group
   * (group → first index not yet seen). Persist it and pass it back as `WatchOptions.from`
   * to continue later with nothing skipped and nothing repeated. Plain JSON.
   */
  readonly resumeFrom?: Readonly<Record<number, number>>;
}

export interface WatchOptions {
  /** Key changes under this prefix (`''`: every key). Default: every key, unless `lease` or `partitions` is given. */
  prefix?: string;
  /** Lease holder changes for lease names under this prefix. */
  lease?: string;
  /** Partition leadership changes (`partition` changes) of the sets whose name starts with this. */
  partitions?: string;
  /**
   * Start at this log index (default: the next change). A cluster of one group only: a
   * sharded cluster has one log per group, so `fromIndex` is refused there with a
   * `ClientError` (`INVALID_ARGUMENT`); give `from` instead.
   */
  fromIndex?: number;
  /**
   * Start of a sharded watch, per group: group → first index to deliver (a batch's
   * `resumeFrom`). Groups not listed start at their next change. Against a cluster of one
   * group, only group 0 may be named, and its index acts as `fromIndex`.
   */
  from?: Readonly<Record<number, number>> | ReadonlyMap<number, number>;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /**
   * Called when a member says everything up to `index` was sent: right after each
   * connection (so a caller knows the stream is live from there), then every few seconds.
   * On a sharded cluster this comes per group, with `group` set; everything of that group
   * up to `index` was sent, so `index + 1` is where that group resumes.
   */
  onProgress?: (index: number, group?: number) => void;
}

/** The index asked for is older than any member keeps: start again from `oldestIndex` (after a fresh read). */
export class WatchCompactedError extends ClientError {
  constructor(
    readonly fromIndex: number,
    readonly oldestIndex: number,
    /** The group whose log no longer holds `fromIndex` (sharded clusters). */
    readonly group?: number,
  ) {
    super(
      'INVALID_ARGUMENT',
      group === undefined
        ? `no member keeps the changes at index ${fromIndex} any more (oldest: ${oldestIndex}); read the current state and watch from there`
        : `no member keeps the changes of group ${group} at index ${fromIndex} any more (oldest: ${oldestIndex}); read the current state and watch from there`,
      false,
    );
    this.name = 'WatchCompactedError';
  }
}

/** `fromIndex` given for a cluster that keeps one log per group. */
function fromIndexOnShardedError(groups: number | null): ClientError {
  return new ClientError(
    'INVALID_ARGUMENT',
    `this cluster shards its keys over ${groups ?? 'several'} Raft groups, each with its own log index, so a watch cannot start at one fromIndex: pass \`from\` (group → index, e.g. a batch's resumeFrom) instead`,
    false,
  );
}

/** `from` as a map, checked: groups are integers from 0, indexes integers from 1. */
function startPositions(from: WatchOptions['from']): Map<number, number> {
  const out = new Map<number, number>();
  if (from === undefined) return out;
  const entries: [unknown, unknown][] =
    from instanceof Map ? [...from.entries()] : Object.entries(from as Record<string, unknown>);
  for (const [k, v] of entries) {
    const g = Number(k);
    if (!Number.isInteger(g) || g < 0 || !Number.isSafeInteger(v) || (v as number) < 1) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        `watch \`from\` maps a group (an integer from 0) to a log index (an integer from 1); got ${String(k)} → ${String(v)}`,
        false,
      );
    }
    out.set(g, v as number);
  }
  return out;
}

/** `g:i,…`, the form members take and give resume points of a sharded watch in. */
function formatFrom(pos: ReadonlyMap<number, number>): string {
  return [...pos]
    .sort((a, b) => a[0] - b[0])
    .map(([g, i]) => `${g}:${i}`)
    .join(',');
}

function parseFrom(s: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of s.split(',')) {
    const m = /^(\d+):(\d+)$/.exec(part.trim());
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

/** A group count from a header value or a hello: a positive integer, or null. */
function groupCount(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : Number.NaN;
  return Number.isInteger(n) && n >= 1 ? n : null;
}

interface SseEvent {
  event: string;
  data: string;
}

async function* sse(body: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<SseEvent> {
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

const dec = new TextDecoder();

/**
 * A change as a wire carries it: SSE sends values as base64 text, the client protocol as
 * bytes.
 */
function toChange(c: Record<string, unknown>): WatchChange {
  if (c.type === 'put') {
    const value =
      c.value instanceof Uint8Array ? c.value : new Uint8Array(Buffer.from(String(c.value ?? ''), 'base64'));
    return {
      type: 'put',
      key: String(c.key),
      value,
      version: Number(c.version),
      text: () => dec.decode(value),
    };
  }
  if (c.type === 'delete') return { type: 'delete', key: String(c.key) };
  if (c.type === 'partition') {
    return {
      type: 'partition',
      set: String(c.set),
      partition: Number(c.partition),
      leader: (c.leader as string | null) ?? null,
      epoch: Number(c.epoch),
      leaderEpoch: Number(c.leaderEpoch),
      eligible: Array.isArray(c.eligible) ? c.eligible.map(String) : [],
    };
  }
  return {
    type: 'lease',
    name: String(c.name),
    holder: (c.holder as string | null) ?? null,
    token: (c.token as number | null) ?? null,
  };
}

/** One event of a watch stream, whatever the wire. */
type StreamEvent =
  | { kind: 'batch'; batch: WatchBatch }
  /** Everything up to `index` was sent (of `group`, on a sharded member). */
  | { kind: 'progress'; index: number; group?: number }
  /**
   * The member cut the stream (a slow reader): resume from here, an index on a cluster of
   * one group, `g:i,…` on a sharded one.
   */
  | { kind: 'closed'; resumeFrom: number | string | undefined };

/** What opening a watch on one member gives: a stream, or why not. */
type Opened =
  /** `sharded`: the member keeps a log per group (positions are per group). */
  | { kind: 'stream'; sharded: boolean; events: AsyncIterable<StreamEvent>; close(): void }
  | { kind: 'compacted'; oldestIndex: number; group?: number }
  /** `groups`: what the member said of its sharding, when it said (null: not known). */
  | { kind: 'refused'; why: string; groups: number | null }
  /** Unreachable or failing for now: try the next member after a pause. */
  | { kind: 'retry' };

interface WatchQuery {
  prefix?: string;
  lease?: string;
  partitions?: string;
  fromIndex?: number;
  /** A sharded watch's start, `g:i,…`. */
  from?: string;
}

/** What `watch()` knows of the cluster before it opens anything. */
export interface WatchContext {
  /** Groups the client has learned the cluster shards over (1 until an answer said otherwise). */
  knownGroups(): number;
}

/**
 * The watch loop both wires share: open on a member, deliver, and after any break resume
 * exactly after the last index delivered or heard of as sent, on the next member.
 *
 * Positions: a cluster of one group has one log, so one index says where to resume
 * (`next`). A sharded cluster has a log per group: `pos` maps each group to the first index
 * of it not yet delivered nor heard of as sent, and a resumed watch names every group in
 * it (`from=g:i,…`); a group it cannot name yet (never heard of) starts at its next change,
 * as the whole watch did. Which kind of cluster it is comes from the first member that
 * answers (and from the client, when it already knows).
 */
async function* watchLoop(
  endpoints: readonly string[],
  opts: WatchOptions,
  cx: WatchContext,
  open: (endpoint: string, q: WatchQuery) => Promise<Opened>,
): AsyncGenerator<WatchBatch> {
  if (opts.fromIndex !== undefined && opts.from !== undefined)
    throw new ClientError('INVALID_ARGUMENT', 'watch takes `fromIndex` or `from`, not both', false);
  const pos = startPositions(opts.from);
  const byGroup = opts.from !== undefined;
  /** Whether the cluster keeps a log per group: null until a member (or the client) says. */
  let sharded: boolean | null = cx.knownGroups() > 1 ? true : null;
  if (sharded && opts.fromIndex !== undefined) throw fromIndexOnShardedError(cx.knownGroups());
  let next = opts.fromIndex;
  // Members in the order given, the first first; after a break, the next one.
  let turn = 0;
  let failures = 0;
  let compacted = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  while (!opts.signal?.aborted) {
    const endpoint = endpoints[turn++ % endpoints.length]!;
    // Positions by group while the cluster is (or, with `from`, may be) sharded.
    const perGroup = sharded ?? byGroup;
    const q: WatchQuery = {
      ...(opts.prefix !== undefined || (opts.lease === undefined && opts.partitions === undefined)
        ? { prefix: opts.prefix ?? '' }
        : {}),
      ...(opts.lease !== undefined ? { lease: opts.lease } : {}),
      ...(opts.partitions !== undefined ? { partitions: opts.partitions } : {}),
      ...(perGroup
        ? pos.size > 0
          ? { from: formatFrom(pos) }
          : {}
        : next !== undefined
          ? { fromIndex: next }
          : {}),
    };
    const o = await open(endpoint, q);
    if (o.kind === 'refused') {
      if (q.fromIndex !== undefined && o.groups !== null && o.groups > 1)
        throw fromIndexOnShardedError(o.groups);
      throw new ClientError('INVALID_ARGUMENT', `watch refused by ${endpoint}: ${o.why}`, false);
    }
    if (o.kind === 'compacted') {
      // Another member may still keep it (this one may have restarted from a snapshot).
      if (++compacted >= endpoints.length) {
        if (o.group !== undefined)
          throw new WatchCompactedError(pos.get(o.group) ?? 0, o.oldestIndex, o.group);
        throw new WatchCompactedError(next ?? 0, o.oldestIndex);
      }
      continue;
    }
    if (o.kind === 'retry') {
      if (opts.signal?.aborted) return;
      await sleep(Math.min(1000, 50 * 2 ** failures++));
      continue;
    }
    failures = 0;
    compacted = 0;
    sharded = o.sharded;
    if (!sharded && q.from !== undefined) {
      // A member of a one-group cluster ignores `from`: its one log is group 0's, whose
      // index is a plain fromIndex. Watch again with that.
      o.close();
      const other = [...pos.keys()].find((g) => g !== 0);
      if (other !== undefined) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          `watch \`from\` names group ${other}, but this cluster has one group (group 0)`,
          false,
        );
      }
      next = pos.get(0);
      pos.clear();
      turn--;
      continue;
    }
    const stop = () => o.close();
    opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const ev of o.events) {
        if (ev.kind === 'batch') {
          const g = ev.batch.group;
          if (g === undefined) {
            next = ev.batch.index + 1;
            yield ev.batch;
          } else {
            pos.set(g, ev.batch.index + 1);
            yield { ...ev.batch, resumeFrom: Object.fromEntries(pos) };
          }
        } else if (ev.kind === 'progress') {
          if (ev.group === undefined) {
            if (next === undefined || ev.index + 1 > next) next = ev.index + 1;
            opts.onProgress?.(ev.index);
          } else {
            if (ev.index + 1 > (pos.get(ev.group) ?? 0)) pos.set(ev.group, ev.index + 1);
            opts.onProgress?.(ev.index, ev.group);
          }
        } else {
          if (typeof ev.resumeFrom === 'number') next = ev.resumeFrom;
          else if (typeof ev.resumeFrom === 'string') {
            // Never behind what was delivered: that would repeat it.
            for (const [g, i] of parseFrom(ev.resumeFrom)) if (i > (pos.get(g) ?? 0)) pos.set(g, i);
          }
          break;
        }
      }
    } catch {
      // The connection broke: resume on the next member.
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      o.close();
    }
    if (opts.signal?.aborted) return;
  }
}

/** A batch as a wire carries it (`group` on a sharded member). */
function toBatch(b: { group?: unknown; index: number; changes: Record<string, unknown>[] }): WatchBatch {
  return {
    ...(typeof b.group === 'number' ? { group: b.group } : {}),
    index: b.index,
    changes: b.changes.map(toChange),
  };
}

/** An HTTP error body's `error` object (`{error: {code, message, ...}}`), or {}. */
async function errorBody(res: Awaited<ReturnType<typeof request>>): Promise<Record<string, unknown>> {
  const body = (await res.body.json().catch(() => ({}))) as { error?: Record<string, unknown> };
  return body && typeof body.error === 'object' && body.error !== null ? body.error : {};
}

/** `watch()` over Server-Sent Events (`GET /watch`). */
export async function* watchChanges(
  endpoints: readonly string[],
  headers: Record<string, string>,
  opts: WatchOptions,
  cx: WatchContext,
  tls?: ClientTls,
): AsyncGenerator<WatchBatch> {
  const dispatcher = tls ? new Agent({ connect: { ...tls } }) : undefined;
  const open = async (endpoint: string, w: WatchQuery): Promise<Opened> => {
    const q = new URLSearchParams();
    if (w.prefix !== undefined) q.set('prefix', w.prefix);
    if (w.lease !== undefined) q.set('lease', w.lease);
    if (w.partitions !== undefined) q.set('partitions', w.partitions);
    if (w.fromIndex !== undefined) q.set('fromIndex', String(w.fromIndex));
    if (w.from !== undefined) q.set('from', w.from);
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${endpoint}/watch?${q}`, {
        method: 'GET',
        headers: { ...headers, accept: 'text/event-stream' },
        headersTimeout: 5_000,
        // Progress comes every 5 s: silence for longer means the member is gone.
        bodyTimeout: 15_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(dispatcher ? { dispatcher } : {}),
      });
    } catch {
      return { kind: 'retry' };
    }
    const groups = groupCount(res.headers['x-quorate-groups']);
    if (res.statusCode === 410) {
      const e = await errorBody(res);
      return {
        kind: 'compacted',
        oldestIndex: Number(e.oldestIndex ?? 0),
        ...(typeof e.group === 'number' ? { group: e.group } : {}),
      };
    }
    if (res.statusCode !== 200) {
      if (res.statusCode === 401 || res.statusCode === 400) {
        const e = await errorBody(res);
        const why =
          typeof e.code === 'string' ? `${e.code}: ${String(e.message ?? '')}` : `HTTP ${res.statusCode}`;
        return { kind: 'refused', why, groups };
      }
      await res.body.dump().catch(() => {});
      return { kind: 'retry' };
    }
    const body = res.body;
    return {
      kind: 'stream',
      sharded: (groups ?? 1) > 1,
      close: () => body.destroy(),
      events: (async function* () {
        for await (const ev of sse(body)) {
          if (ev.event === 'batch') {
            yield { kind: 'batch', batch: toBatch(JSON.parse(ev.data)) } as const;
          } else if (ev.event === 'progress') {
            const p = JSON.parse(ev.data) as { index: number; group?: unknown };
            yield {
              kind: 'progress',
              index: p.index,
              ...(typeof p.group === 'number' ? { group: p.group } : {}),
            } as const;
          } else if (ev.event === 'closed') {
            const c = JSON.parse(ev.data) as { resumeFrom?: number | string };
            yield { kind: 'closed', resumeFrom: c.resumeFrom } as const;
          }
        }
      })(),
    };
  };
  try {
    yield* watchLoop(endpoints, opts, cx, open);
  } finally {
    await dispatcher?.close();
  }
}

/**
 * `watch()` on the client protocol: the same semantics as over SSE, with the watch
 * multiplexed on the member's connection beside the client's other requests.
 */
export function watchChangesProtocol(
  endpoints: readonly string[],
  token: string | undefined,
  opts: WatchOptions,
  cx: WatchContext,
  wire: ProtocolWire,
): AsyncGenerator<WatchBatch> {
  /**
   * The groups a member's hello announced. A stream shows it in its first message; a
   * refusal does not, so this asks (a `health` request answers with the hello's count).
   */
  const helloGroups = async (endpoint: string): Promise<number | null> => {
    try {
      const r = await wire.request({
        endpoint,
        method: 'GET',
        path: '/health',
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeoutMs: 3_000,
        op: { op: 'health' },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return r.groups ?? 1;
    } catch {
      return null;
    }
  };
  const open = async (endpoint: string, q: WatchQuery): Promise<Opened> => {
    let stream: ProtocolStream | ProtocolError;
    try {
      stream = await wire.stream(endpoint, token, { op: 'watch', ...q });
    } catch {
      return { kind: 'retry' };
    }
    if (!(Symbol.asyncIterator in stream))
      return { kind: 'refused', why: `${stream.code}: ${stream.message}`, groups: null };
    const s = stream;
    // The first message tells a refusal from a stream. Giving up meanwhile ends the wait.
    const it = s[Symbol.asyncIterator]();
    const giveUp = () => s.cancel();
    opts.signal?.addEventListener('abort', giveUp, { once: true });
    let first: IteratorResult<Record<string, unknown>>;
    try {
      first = await it.next();
    } catch {
      return { kind: 'retry' };
    } finally {
      opts.signal?.removeEventListener('abort', giveUp);
    }
    const e = first.value?.e as
      | { code?: string; message?: string; status?: number; oldestIndex?: number; group?: unknown }
      | undefined;
    if (e?.code === 'COMPACTED') {
      return {
        kind: 'compacted',
        oldestIndex: e.oldestIndex ?? 0,
        ...(typeof e.group === 'number' ? { group: e.group } : {}),
      };
    }
    if (e && (e.status === 400 || e.status === 401)) {
      // Refused for fromIndex? Only a sharded member does that: find out whether it is one.
      const groups = e.status === 400 && q.fromIndex !== undefined ? await helloGroups(endpoint) : null;
      return { kind: 'refused', why: `${String(e.code)}: ${String(e.message ?? '')}`, groups };
    }
    if (e || first.done) return { kind: 'retry' };
    const toEvent = (m: Record<string, unknown>): StreamEvent | null => {
      if (m.w) return { kind: 'batch', batch: toBatch(m.w as Parameters<typeof toBatch>[0]) };
      if (typeof m.p === 'number')
        return { kind: 'progress', index: m.p, ...(typeof m.g === 'number' ? { group: m.g } : {}) };
      if (m.e) return { kind: 'closed', resumeFrom: (m.e as { resumeFrom?: number | string }).resumeFrom };
      return null;
    };
    // A sharded member names the group of every batch and progress, the first one included
    // (each group's progress is sent as soon as the watch opens).
    const m0 = first.value as Record<string, unknown>;
    const w0 = m0.w as { group?: unknown } | undefined;
    return {
      kind: 'stream',
      sharded: typeof m0.g === 'number' || typeof w0?.group === 'number',
      close: () => s.cancel(),
      events: (async function* () {
        const ev0 = toEvent(first.value);
        if (ev0) yield ev0;
        for (let r = await it.next(); !r.done; r = await it.next()) {
          const ev = toEvent(r.value);
          if (ev) yield ev;
          if (ev?.kind === 'closed') return;
        }
      })(),
    };
  };
  return watchLoop(endpoints, opts, cx, open);
}
