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
    };

export interface WatchBatch {
  /** The log index of the entry that made these changes. */
  readonly index: number;
  readonly changes: readonly WatchChange[];
}

export interface WatchOptions {
  /** Key changes under this prefix (`''`: every key). Default: every key, unless `lease` is given. */
  prefix?: string;
  /** Lease holder changes for lease names under this prefix. */
  lease?: string;
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

function toChange(c: Record<string, unknown>): WatchChange {
  if (c.type === 'put') {
    const value = new Uint8Array(Buffer.from(String(c.value), 'base64'));
    return {
      type: 'put',
      key: String(c.key),
      value,
      version: Number(c.version),
      text: () => dec.decode(value),
    };
  }
  if (c.type === 'delete') return { type: 'delete', key: String(c.key) };
  return {
    type: 'lease',
    name: String(c.name),
    holder: (c.holder as string | null) ?? null,
    token: (c.token as number | null) ?? null,
  };
}

export async function* watchChanges(
  endpoints: readonly string[],
  headers: Record<string, string>,
  opts: WatchOptions,
  tls?: ClientTls,
): AsyncGenerator<WatchBatch> {
  const dispatcher = tls ? new Agent({ connect: { ...tls } }) : undefined;
  try {
    yield* watchLoop(endpoints, headers, opts, dispatcher);
  } finally {
    await dispatcher?.close();
  }
}

async function* watchLoop(
  endpoints: readonly string[],
  headers: Record<string, string>,
  opts: WatchOptions,
  dispatcher: Agent | undefined,
): AsyncGenerator<WatchBatch> {
  let next = opts.fromIndex;
  // Members in the order given, the first first; after a break, the next one.
  let turn = 0;
  let failures = 0;
  let compacted = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  while (!opts.signal?.aborted) {
    const endpoint = endpoints[turn++ % endpoints.length]!;
    const q = new URLSearchParams();
    if (opts.prefix !== undefined || opts.lease === undefined) q.set('prefix', opts.prefix ?? '');
    if (opts.lease !== undefined) q.set('lease', opts.lease);
    if (next !== undefined) q.set('fromIndex', String(next));
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
      if (opts.signal?.aborted) return;
      await sleep(Math.min(1000, 50 * 2 ** failures++));
      continue;
    }
    if (res.statusCode === 410) {
      const body = (await res.body.json().catch(() => ({}))) as { oldestIndex?: number };
      // Another member may still keep it (this one may have restarted from a snapshot).
      if (++compacted >= endpoints.length) throw new WatchCompactedError(next ?? 0, body.oldestIndex ?? 0);
      continue;
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {});
      if (res.statusCode === 401 || res.statusCode === 400) {
        throw new ClientError('INVALID_ARGUMENT', `watch refused by ${endpoint} (${res.statusCode})`, false);
      }
      await sleep(Math.min(1000, 50 * 2 ** failures++));
      continue;
    }
    failures = 0;
    compacted = 0;
    try {
      for await (const ev of sse(res.body)) {
        if (ev.event === 'batch') {
          const b = JSON.parse(ev.data) as { index: number; changes: Record<string, unknown>[] };
          next = b.index + 1;
          yield { index: b.index, changes: b.changes.map(toChange) };
        } else if (ev.event === 'progress') {
          const p = JSON.parse(ev.data) as { index: number };
          if (next === undefined || p.index + 1 > next) next = p.index + 1;
          opts.onProgress?.(p.index);
        } else if (ev.event === 'closed') {
          const c = JSON.parse(ev.data) as { resumeFrom?: number };
          if (c.resumeFrom !== undefined) next = c.resumeFrom;
          break;
        }
      }
    } catch {
      // The connection broke: resume on the next member.
    } finally {
      res.body.destroy();
    }
    if (opts.signal?.aborted) return;
  }
}

/** A change as the client protocol sends it (values are bytes). */
function fromFrame(c: Record<string, unknown>): WatchChange {
  if (c.type === 'put') {
    const value = c.value instanceof Uint8Array ? c.value : new Uint8Array(0);
    return {
      type: 'put',
      key: String(c.key),
      value,
      version: Number(c.version),
      text: () => dec.decode(value),
    };
  }
  if (c.type === 'delete') return { type: 'delete', key: String(c.key) };
  return {
    type: 'lease',
    name: String(c.name),
    holder: (c.holder as string | null) ?? null,
    token: (c.token as number | null) ?? null,
  };
}

/**
 * `watch()` on the client protocol: the same semantics as over SSE (resume after the last
 * index delivered or heard of as sent, on the next member after a break), with the watch
 * multiplexed on the member's connection beside the client's other requests.
 */
export async function* watchChangesProtocol(
  endpoints: readonly string[],
  token: string | undefined,
  opts: WatchOptions,
  wire: ProtocolWire,
): AsyncGenerator<WatchBatch> {
  let next = opts.fromIndex;
  let turn = 0;
  let failures = 0;
  let compacted = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  while (!opts.signal?.aborted) {
    const endpoint = endpoints[turn++ % endpoints.length]!;
    const op = {
      op: 'watch' as const,
      ...(opts.prefix !== undefined || opts.lease === undefined ? { prefix: opts.prefix ?? '' } : {}),
      ...(opts.lease !== undefined ? { lease: opts.lease } : {}),
      ...(next !== undefined ? { fromIndex: next } : {}),
    };
    let stream: ProtocolStream | ProtocolError;
    try {
      stream = await wire.stream(endpoint, token, op);
    } catch {
      if (opts.signal?.aborted) return;
      await sleep(Math.min(1000, 50 * 2 ** failures++));
      continue;
    }
    if (!(Symbol.asyncIterator in stream)) {
      throw new ClientError(
        'INVALID_ARGUMENT',
        `watch refused by ${endpoint}: ${stream.code}: ${stream.message}`,
        false,
      );
    }
    const s = stream;
    const stop = () => s.cancel();
    opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const m of s) {
        if (m.w) {
          const b = m.w as { index: number; changes: Record<string, unknown>[] };
          failures = 0;
          compacted = 0;
          next = b.index + 1;
          yield { index: b.index, changes: b.changes.map(fromFrame) };
        } else if (typeof m.p === 'number') {
          failures = 0;
          compacted = 0;
          if (next === undefined || m.p + 1 > next) next = m.p + 1;
          opts.onProgress?.(m.p);
        } else if (m.e) {
          const e = m.e as { code?: string; status?: number; oldestIndex?: number; resumeFrom?: number };
          if (e.code === 'COMPACTED') {
            // Another member may still keep it (this one may have restarted from a snapshot).
            if (++compacted >= endpoints.length) throw new WatchCompactedError(next ?? 0, e.oldestIndex ?? 0);
          } else if (e.code === 'SLOW_WATCHER') {
            if (e.resumeFrom !== undefined) next = e.resumeFrom;
          } else if (e.status === 400 || e.status === 401) {
            throw new ClientError('INVALID_ARGUMENT', `watch refused by ${endpoint}: ${e.code}`, false);
          } else await sleep(Math.min(1000, 50 * 2 ** failures++));
        }
      }
    } catch (err) {
      if (err instanceof ClientError) throw err;
      // The connection broke: resume on the next member.
      await sleep(Math.min(1000, 50 * 2 ** failures++));
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      s.cancel();
    }
    if (opts.signal?.aborted) return;
  }
}
