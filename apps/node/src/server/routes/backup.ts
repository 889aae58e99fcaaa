/**
 * `GET /admin/snapshot`: a backup of the replicated state (see `backup.ts` for the format),
 * after a linearizable read barrier, so it holds every write acknowledged before the call.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { backupStream } from '../../backup.js';
import type { ApiContext } from '../api.js';
import { HttpError } from '../errors.js';

export async function backup(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (ctx.shards)
    throw new HttpError(
      501,
      'NOT_SUPPORTED_SHARDED',
      `backups of a cluster sharded over ${ctx.shards.count} groups are not built yet (a backup holds one group's state); back up each member's data directory while it is stopped (docs/sharding.md)`,
    );
  await ctx.raft.read({ timeoutMs: ctx.options.defaultTimeoutMs });
  // The view is taken by the first step of the stream, in this same turn as the barrier.
  const parts = backupStream(ctx.machine, {
    clusterId: ctx.clusterId ?? 'quorate',
    nodeId: ctx.raft.id,
    term: ctx.raft.term,
  });
  const first = parts.next();
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': `attachment; filename="quorate-${ctx.raft.id}-${ctx.machine.appliedIndex}.backup"`,
    'Cache-Control': 'no-store',
  });
  let aborted = false;
  req.on('close', () => {
    aborted = true;
  });
  if (!first.done) res.write(first.value);
  for (const b of parts) {
    if (aborted) return;
    if (!res.write(b)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  }
  res.end();
}
