/**
 * `GET /watch`: the changes of the replicated state as Server-Sent Events, from any member.
 *
 * - `prefix=<p>`: puts and deletes of keys starting with `p` (`prefix=` alone: every key);
 *   `lease=<n>`: holder changes of leases whose name starts with `n`. Either or both; with
 *   neither, every key change.
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
  }
}

export function watch(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const q = url.searchParams;
  const keyPrefix = q.has('prefix') || !q.has('lease') ? (q.get('prefix') ?? '') : null;
  const leasePrefix = q.get('lease');
  const hub = ctx.machine.changes;
  const applied = ctx.raft.applied;
  let from = applied + 1;
  const raw = q.get('fromIndex');
  if (raw !== null) {
    if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) {
      throw new HttpError(
        400,
        'INVALID_ARGUMENT',
        `fromIndex must be a log index (a positive integer), got ${JSON.stringify(raw)}`,
      );
    }
    from = Number(raw);
  }
  const backlog = hub.since(from);
  if (backlog === null) {
    throw new HttpError(
      410,
      'COMPACTED',
      `changes at index ${from} are no longer kept by ${ctx.raft.id}; the oldest index to watch from is ${hub.oldestIndex}`,
      { oldestIndex: hub.oldestIndex },
    );
  }
  const pick = (b: ChangeBatch): unknown[] => {
    const out: unknown[] = [];
    for (const c of b.changes) {
      if (
        c.type === 'lease'
          ? leasePrefix !== null && c.name.startsWith(leasePrefix)
          : keyPrefix !== null && c.key.startsWith(keyPrefix)
      )
        out.push(wire(c));
    }
    return out;
  };
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'Access-Control-Allow-Origin': '*',
  });
  /** Everything up to this index has been sent (or filtered out). */
  let sentThrough = from - 1;
  let closed = false;
  const close = (reason: string | null) => {
    if (closed) return;
    closed = true;
    unsubscribe();
    clearInterval(timer);
    if (reason !== null) {
      res.end(
        `event: closed\ndata: ${JSON.stringify({ code: reason, message: 'the watcher read too slowly; resume from resumeFrom', resumeFrom: sentThrough + 1 })}\n\n`,
      );
    }
  };
  const send = (b: ChangeBatch) => {
    if (closed || b.index < from) return;
    const changes = pick(b);
    if (changes.length > 0)
      res.write(`id: ${b.index}\nevent: batch\ndata: ${JSON.stringify({ index: b.index, changes })}\n\n`);
    sentThrough = b.index;
    if (res.writableLength > WATCH_MAX_BUFFERED_BYTES) close('SLOW_WATCHER');
  };
  const progress = () => {
    const a = ctx.raft.applied;
    if (a > sentThrough && a >= from) sentThrough = a;
    res.write(`event: progress\ndata: ${JSON.stringify({ index: sentThrough })}\n\n`);
    if (res.writableLength > WATCH_MAX_BUFFERED_BYTES) close('SLOW_WATCHER');
  };
  for (const b of backlog) send(b);
  // From here on every batch arrives as it is applied, in order, after the backlog.
  const unsubscribe = hub.subscribe(send);
  progress();
  const timer = setInterval(progress, PROGRESS_MS);
  req.on('close', () => close(null));
  res.on('error', () => close(null));
}
