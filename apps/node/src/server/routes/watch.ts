/**
 * `GET /watch`: the changes of the replicated state as Server-Sent Events, from any member.
 *
 * - `prefix=<p>`: puts and deletes of keys starting with `p` (`prefix=` alone: every key);
 *   `lease=<n>`: holder changes of leases whose name starts with `n`; `partitions=<s>`:
 *   leadership changes of partitions of sets whose name starts with `s`
 *   (docs/partitions.md). Any of them; with none, every key change.
 * - `fromIndex=<i>`: start at log index `i` (default: the next change after now). An index
 *   not applied yet is waited for; one whose changes this member no longer keeps answers
 *   `410 COMPACTED` with `oldestIndex`, the oldest it can start from.
 *
 * Each log entry's changes come as one `batch` event: `{"index":i,"changes":[...]}`, the id
 * being `i`; values are base64. A `progress` event (`{"index":a}`) every few seconds says
 * that everything up to `a` was sent, so a client resumes from `a + 1` even when nothing
 * it watches changed. A watcher that reads too slowly is cut off once this member buffers
 * `maxBufferedBytes` for it: a final `closed` event says why and where to resume.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Change, ChangeBatch } from '../../state/watch-hub.js';
import type { ApiContext } from '../api.js';
import { HttpError } from '../errors.js';

/** Bytes buffered for one slow watcher before it is cut off. */
export const WATCH_MAX_BUFFERED_BYTES = 8 << 20;
const PROGRESS_MS = 5_000;

function wire(c: Change): unknown {
  switch (c.type) {
    case 'put':
      return { type: 'put', key: c.key, value: Buffer.from(c.value).toString('base64'), version: c.version };
    case 'delete':
      return { type: 'delete', key: c.key };
    case 'lease':
      return { type: 'lease', name: c.name, holder: c.holder, token: c.token };
    case 'partition':
      return c;
  }
}

/** Where a watch sends what it sees: SSE on HTTP, frames on the client protocol. */
export interface WatchSink {
  /** One log entry's changes (already filtered, never empty). */
  batch(index: number, changes: Change[]): void;
  /** Everything up to `index` was sent. */
  progress(index: number): void;
  /** Bytes the sink holds unsent (a slow reader). */
  buffered(): number;
  /** The watch was cut off (`SLOW_WATCHER`); resume from `resumeFrom`. */
  cutOff(code: string, resumeFrom: number): void;
}

export interface WatchParams {
  /** Key changes under this prefix, or none (null). */
  keyPrefix: string | null;
  /** Lease changes for names under this prefix, or none (null). */
  leasePrefix: string | null;
  /** Partition leadership changes of sets whose name starts with this, or none (null/absent). */
  partitionPrefix?: string | null;
  /** First index; default the next change. */
  fromIndex?: number;
}

/**
 * Start a watch: the backlog from `fromIndex`, then each batch as it is applied, progress
 * every few seconds. Throws `410 COMPACTED` when `fromIndex` is no longer kept. Returns
 * the function that stops it.
 */
export function openWatch(ctx: ApiContext, p: WatchParams, sink: WatchSink): () => void {
  const hub = ctx.machine.changes;
  const from = p.fromIndex ?? ctx.raft.applied + 1;
  const backlog = hub.since(from);
  if (backlog === null) {
    throw new HttpError(
      410,
      'COMPACTED',
      `changes at index ${from} are no longer kept by ${ctx.raft.id}; the oldest index to watch from is ${hub.oldestIndex}`,
      { oldestIndex: hub.oldestIndex },
    );
  }
  const pick = (b: ChangeBatch): Change[] =>
    b.changes.filter((c) =>
      c.type === 'lease'
        ? p.leasePrefix !== null && c.name.startsWith(p.leasePrefix)
        : c.type === 'partition'
          ? typeof p.partitionPrefix === 'string' && c.set.startsWith(p.partitionPrefix)
          : p.keyPrefix !== null && c.key.startsWith(p.keyPrefix),
    );
  /** Everything up to this index has been sent (or filtered out). */
  let sentThrough = from - 1;
  let closed = false;
  // Set once the backlog is sent; a watcher cut off during the backlog never subscribes.
  let unsubscribe: (() => void) | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  const stop = () => {
    if (closed) return;
    closed = true;
    unsubscribe?.();
    if (timer) clearInterval(timer);
  };
  const check = () => {
    if (sink.buffered() > WATCH_MAX_BUFFERED_BYTES) {
      stop();
      sink.cutOff('SLOW_WATCHER', sentThrough + 1);
    }
  };
  const send = (b: ChangeBatch) => {
    if (closed || b.index < from) return;
    const changes = pick(b);
    if (changes.length > 0) sink.batch(b.index, changes);
    sentThrough = b.index;
    check();
  };
  const progress = () => {
    if (closed) return;
    const a = ctx.raft.applied;
    if (a > sentThrough && a >= from) sentThrough = a;
    sink.progress(sentThrough);
    check();
  };
  for (const b of backlog) send(b);
  if (closed) return stop;
  // From here on every batch arrives as it is applied, in order, after the backlog.
  unsubscribe = hub.subscribe(send);
  timer = setInterval(progress, PROGRESS_MS);
  progress();
  return stop;
}

/** Writes the event stream's headers once, whoever calls first. */
function sseHead(res: ServerResponse): () => void {
  let headed = false;
  return () => {
    if (headed) return;
    headed = true;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'Access-Control-Allow-Origin': '*',
    });
  };
}

export function watch(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (ctx.shards) {
    watchGroups(ctx, req, res, url);
    return;
  }
  const q = url.searchParams;
  const raw = q.get('fromIndex');
  let fromIndex: number | undefined;
  if (raw !== null) {
    if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) {
      throw new HttpError(
        400,
        'INVALID_ARGUMENT',
        `fromIndex must be a log index (a positive integer), got ${JSON.stringify(raw)}`,
      );
    }
    fromIndex = Number(raw);
  }
  const params: WatchParams = {
    keyPrefix: q.has('prefix') || !(q.has('lease') || q.has('partitions')) ? (q.get('prefix') ?? '') : null,
    leasePrefix: q.get('lease'),
    partitionPrefix: q.get('partitions'),
    ...(fromIndex !== undefined ? { fromIndex } : {}),
  };
  const head = sseHead(res);
  const stop = openWatch(ctx, params, {
    batch: (index, changes) => {
      head();
      res.write(
        `id: ${index}\nevent: batch\ndata: ${JSON.stringify({ index, changes: changes.map(wire) })}\n\n`,
      );
    },
    progress: (index) => {
      head();
      res.write(`event: progress\ndata: ${JSON.stringify({ index })}\n\n`);
    },
    buffered: () => res.writableLength,
    cutOff: (code, resumeFrom) =>
      res.end(
        `event: closed\ndata: ${JSON.stringify({ code, message: 'the watcher read too slowly; resume from resumeFrom', resumeFrom })}\n\n`,
      ),
  });
  head();
  req.on('close', stop);
  res.on('error', stop);
}

/**
 * Parse `from=<group>:<index>,…` (a sharded watch's resume point): each listed group
 * starts at its index, the others at their next change.
 */
export function parseFrom(raw: string | null, groups: number): Map<number, number> {
  const out = new Map<number, number>();
  if (raw === null || raw === '') return out;
  for (const part of raw.split(',')) {
    const m = /^(\d{1,5}):(\d{1,15})$/.exec(part);
    const g = m ? Number(m[1]) : -1;
    const i = m ? Number(m[2]) : 0;
    if (!m || g >= groups || i < 1 || out.has(g)) {
      throw new HttpError(
        400,
        'INVALID_ARGUMENT',
        `from must list <group>:<index> pairs, each group (0 to ${groups - 1}) once and each index a positive integer; got ${JSON.stringify(part)}`,
      );
    }
    out.set(g, i);
  }
  return out;
}

/** Where a watch over many groups sends what it sees. */
export interface GroupWatchSink {
  batch(group: number, index: number, changes: Change[]): void;
  progress(group: number, index: number): void;
  buffered(): number;
  /** Cut off (`SLOW_WATCHER`): resume with `from=<resumeFrom>`. */
  cutOff(code: string, resumeFrom: string): void;
}

/**
 * A watch on a sharded node: one watch per group, merged into one stream. Each group has
 * its own log, so positions are per group: every event names its group, progress comes
 * per group, and a client resumes with `from=<group>:<index>,…` (docs/sharding.md).
 * Leases and partition sets live in group 0, so their changes come from group 0 alone.
 * Throws `410 COMPACTED` (naming the group) before anything is sent.
 */
export function openGroupWatches(
  ctx: ApiContext,
  p: {
    keyPrefix: string | null;
    leasePrefix: string | null;
    partitionPrefix: string | null;
    from: Map<number, number>;
  },
  sink: GroupWatchSink,
): () => void {
  const shards = ctx.shards!;
  const targets = p.keyPrefix === null ? [shards.ctx(0)] : shards.all();
  for (const g of targets) {
    const start = p.from.get(g.group ?? 0);
    const hub = g.machine.changes;
    if (start !== undefined && hub.since(start) === null) {
      throw new HttpError(
        410,
        'COMPACTED',
        `changes of group ${g.group ?? 0} at index ${start} are no longer kept by ${g.raft.id}; the oldest index to watch it from is ${hub.oldestIndex}`,
        { group: g.group ?? 0, oldestIndex: hub.oldestIndex },
      );
    }
  }
  /** Per group: everything up to this index was sent. */
  const through = new Map<number, number>();
  const stops: (() => void)[] = [];
  let ended = false;
  const stopAll = () => {
    for (const s of stops.splice(0)) s();
  };
  // Every group's position is known before any opens: a cut-off names them all.
  for (const g of targets) through.set(g.group ?? 0, (p.from.get(g.group ?? 0) ?? g.raft.applied + 1) - 1);
  try {
    for (const g of targets) {
      // Cut off while an earlier group replayed its backlog: open nothing more.
      if (ended) break;
      const group = g.group ?? 0;
      const start = p.from.get(group);
      const params: WatchParams = {
        keyPrefix: p.keyPrefix,
        leasePrefix: group === 0 ? p.leasePrefix : null,
        partitionPrefix: group === 0 ? p.partitionPrefix : null,
        ...(start !== undefined ? { fromIndex: start } : {}),
      };
      stops.push(
        openWatch(g, params, {
          batch: (index, changes) => {
            through.set(group, index);
            sink.batch(group, index, changes);
          },
          progress: (index) => {
            through.set(group, index);
            sink.progress(group, index);
          },
          buffered: () => sink.buffered(),
          cutOff: (code) => {
            if (ended) return;
            ended = true;
            stopAll();
            sink.cutOff(code, [...through].map(([k, v]) => `${k}:${v + 1}`).join(','));
          },
        }),
      );
    }
  } catch (err) {
    stopAll();
    throw err;
  }
  return stopAll;
}

function watchGroups(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const q = url.searchParams;
  const shards = ctx.shards!;
  if (q.has('fromIndex')) {
    throw new HttpError(
      400,
      'INVALID_ARGUMENT',
      `this cluster shards its keys over ${shards.count} groups, each with its own log index: resume with from=<group>:<index>,… (the ids of the events you saw), not fromIndex`,
    );
  }
  const head = sseHead(res);
  // Every 410 is raised before the first group's watch opens (openGroupWatches checks them
  // all first), so writing at once is safe, and the slow-reader limit holds from the start.
  const write = (chunk: string) => {
    if (res.writableEnded) return;
    head();
    res.write(chunk);
  };
  const stop = openGroupWatches(
    ctx,
    {
      keyPrefix: q.has('prefix') || !(q.has('lease') || q.has('partitions')) ? (q.get('prefix') ?? '') : null,
      leasePrefix: q.get('lease'),
      partitionPrefix: q.get('partitions'),
      from: parseFrom(q.get('from'), shards.count),
    },
    {
      batch: (group, index, changes) =>
        write(
          `id: ${group}:${index}\nevent: batch\ndata: ${JSON.stringify({ group, index, changes: changes.map(wire) })}\n\n`,
        ),
      progress: (group, index) => write(`event: progress\ndata: ${JSON.stringify({ group, index })}\n\n`),
      buffered: () => res.writableLength,
      cutOff: (code, resumeFrom) => {
        head();
        res.end(
          `event: closed\ndata: ${JSON.stringify({ code, message: 'the watcher read too slowly; resume with from=<resumeFrom>', resumeFrom })}\n\n`,
        );
      },
    },
  );
  head();
  req.on('close', stop);
  res.on('error', stop);
}
