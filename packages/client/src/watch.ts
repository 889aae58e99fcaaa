/**
 * `watch()`: the changes of the replicated state as an async iterator, from any member,
 * over Server-Sent Events (`GET /watch`). Each item is one log entry's changes. When the
 * connection breaks (the member died, restarted, cut a slow reader off), the iterator
 * reconnects to another member and resumes exactly after the last index it delivered or
 * heard of as sent: nothing is skipped, nothing repeated.
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
  /** The log index of the entry that made these changes. */
  readonly index: number;
  readonly changes: readonly WatchChange[];
}

export interface WatchOptions {
  /** Key changes under this prefix (`''`: every key). Default: every key, unless `lease` or `partitions` is given. */
  prefix?: string;
  /** Lease holder changes for lease names under this prefix. */
  lease?: string;
  /** Partition leadership changes (`partition` changes) of the sets whose name starts with this. */
  partitions?: string;
  /** Start at this log index (default: the next change). */
  fromIndex?: number;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /**
   * Called when a member says everything up to `index` was sent: right after each
   * connection (so a caller knows the stream is live from there), then every few seconds.
   */
  onProgress?: (index: number) => void;
}

/** The index asked for is older than any member keeps: start again from `oldestIndex` (after a fresh read). */
export class WatchCompactedError extends ClientError {
  constructor(
    readonly fromIndex: number,
    readonly oldestIndex: number,
  ) {
    super(
      'INVALID_ARGUMENT',
      `no member keeps the changes at index ${fromIndex} any more (oldest: ${oldestIndex}); read the current state and watch from there`,
      false,
    );
    this.name = 'WatchCompactedError';
  }
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
  | { kind: 'progress'; index: number }
  /** The member cut the stream (a slow reader): resume from here. */
  | { kind: 'closed'; resumeFrom: number | undefined };

/** What opening a watch on one member gives: a stream, or why not. */
type Opened =
  | { kind: 'stream'; events: AsyncIterable<StreamEvent>; close(): void }
  | { kind: 'compacted'; oldestIndex: number }
  | { kind: 'refused'; why: string }
  /** Unreachable or failing for now: try the next member after a pause. */
  | { kind: 'retry' };

interface WatchQuery {
  prefix?: string;
  lease?: string;
  partitions?: string;
  fromIndex?: number;
}

/**
 * The watch loop both wires share: open on a member, deliver, and after any break resume
 * exactly after the last index delivered or heard of as sent, on the next member.
 */
async function* watchLoop(
  endpoints: readonly string[],
  opts: WatchOptions,
  open: (endpoint: string, q: WatchQuery) => Promise<Opened>,
): AsyncGenerator<WatchBatch> {
  let next = opts.fromIndex;
  // Members in the order given, the first first; after a break, the next one.
  let turn = 0;
  let failures = 0;
  let compacted = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  while (!opts.signal?.aborted) {
    const endpoint = endpoints[turn++ % endpoints.length]!;
    const q: WatchQuery = {
      ...(opts.prefix !== undefined || (opts.lease === undefined && opts.partitions === undefined)
        ? { prefix: opts.prefix ?? '' }
        : {}),
      ...(opts.lease !== undefined ? { lease: opts.lease } : {}),
      ...(opts.partitions !== undefined ? { partitions: opts.partitions } : {}),
      ...(next !== undefined ? { fromIndex: next } : {}),
    };
    const o = await open(endpoint, q);
    if (o.kind === 'refused')
      throw new ClientError('INVALID_ARGUMENT', `watch refused by ${endpoint}: ${o.why}`, false);
    if (o.kind === 'compacted') {
      // Another member may still keep it (this one may have restarted from a snapshot).
      if (++compacted >= endpoints.length) throw new WatchCompactedError(next ?? 0, o.oldestIndex);
      continue;
    }
    if (o.kind === 'retry') {
      if (opts.signal?.aborted) return;
      await sleep(Math.min(1000, 50 * 2 ** failures++));
      continue;
    }
    failures = 0;
    compacted = 0;
    const stop = () => o.close();
    opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const ev of o.events) {
        if (ev.kind === 'batch') {
          next = ev.batch.index + 1;
          yield ev.batch;
        } else if (ev.kind === 'progress') {
          if (next === undefined || ev.index + 1 > next) next = ev.index + 1;
          opts.onProgress?.(ev.index);
        } else {
          if (ev.resumeFrom !== undefined) next = ev.resumeFrom;
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

/** `watch()` over Server-Sent Events (`GET /watch`). */
export async function* watchChanges(
  endpoints: readonly string[],
  headers: Record<string, string>,
  opts: WatchOptions,
  tls?: ClientTls,
): AsyncGenerator<WatchBatch> {
  const dispatcher = tls ? new Agent({ connect: { ...tls } }) : undefined;
  const open = async (endpoint: string, w: WatchQuery): Promise<Opened> => {
    const q = new URLSearchParams();
    if (w.prefix !== undefined) q.set('prefix', w.prefix);
    if (w.lease !== undefined) q.set('lease', w.lease);
    if (w.partitions !== undefined) q.set('partitions', w.partitions);
    if (w.fromIndex !== undefined) q.set('fromIndex', String(w.fromIndex));
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
    if (res.statusCode === 410) {
      const body = (await res.body.json().catch(() => ({}))) as { oldestIndex?: number };
      return { kind: 'compacted', oldestIndex: body.oldestIndex ?? 0 };
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {});
      if (res.statusCode === 401 || res.statusCode === 400)
        return { kind: 'refused', why: `HTTP ${res.statusCode}` };
      return { kind: 'retry' };
    }
    const body = res.body;
    return {
      kind: 'stream',
      close: () => body.destroy(),
      events: (async function* () {
        for await (const ev of sse(body)) {
          if (ev.event === 'batch') {
            const b = JSON.parse(ev.data) as { index: number; changes: Record<string, unknown>[] };
            yield { kind: 'batch', batch: { index: b.index, changes: b.changes.map(toChange) } } as const;
          } else if (ev.event === 'progress') {
            yield { kind: 'progress', index: (JSON.parse(ev.data) as { index: number }).index } as const;
          } else if (ev.event === 'closed') {
            yield {
              kind: 'closed',
              resumeFrom: (JSON.parse(ev.data) as { resumeFrom?: number }).resumeFrom,
            } as const;
          }
        }
      })(),
    };
  };
  try {
    yield* watchLoop(endpoints, opts, open);
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
  wire: ProtocolWire,
): AsyncGenerator<WatchBatch> {
  const open = async (endpoint: string, q: WatchQuery): Promise<Opened> => {
    let stream: ProtocolStream | ProtocolError;
    try {
      stream = await wire.stream(endpoint, token, { op: 'watch', ...q });
    } catch {
      return { kind: 'retry' };
    }
    if (!(Symbol.asyncIterator in stream))
      return { kind: 'refused', why: `${stream.code}: ${stream.message}` };
    const s = stream;
    // The first message tells a refusal from a stream.
    const it = s[Symbol.asyncIterator]();
    let first: IteratorResult<Record<string, unknown>>;
    try {
      first = await it.next();
    } catch {
      return { kind: 'retry' };
    }
    const e = first.value?.e as { code?: string; status?: number; oldestIndex?: number } | undefined;
    if (e?.code === 'COMPACTED') return { kind: 'compacted', oldestIndex: e.oldestIndex ?? 0 };
    if (e && (e.status === 400 || e.status === 401)) return { kind: 'refused', why: String(e.code) };
    if (e || first.done) return { kind: 'retry' };
    const toEvent = (m: Record<string, unknown>): StreamEvent | null => {
      if (m.w) {
        const b = m.w as { index: number; changes: Record<string, unknown>[] };
        return { kind: 'batch', batch: { index: b.index, changes: b.changes.map(toChange) } };
      }
      if (typeof m.p === 'number') return { kind: 'progress', index: m.p };
      if (m.e) return { kind: 'closed', resumeFrom: (m.e as { resumeFrom?: number }).resumeFrom };
      return null;
    };
    return {
      kind: 'stream',
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
  return watchLoop(endpoints, opts, open);
}
