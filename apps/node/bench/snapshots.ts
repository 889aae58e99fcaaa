/**
 * Snapshots of the reference node's state with 1 M keys: how long writes pause while the
 * snapshot takes its consistent view, how long serialising and storing it durably in LMDB
 * takes and how big it is, and how long a restart needs to restore it (time to ready,
 * before the log tail).
 *
 *   pnpm --filter @quorate/node bench [-- --keys 1000000]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LmdbStorage } from '@quorate/storage-lmdb';
import { encodeCommand } from '../src/state/commands.js';
import { QuorateMachine } from '../src/state/machine.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' } } });
const n = Number(values.keys);
const enc = new TextEncoder();
const mb = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const dir = mkdtempSync(join(tmpdir(), 'quorate-snap-bench-'));

try {
  const m = new QuorateMachine();
  let t = performance.now();
  const value = enc.encode('v'.repeat(64));
  for (let i = 1; i <= n; i++) {
    m.apply({
      index: i,
      term: 1,
      type: 0,
      data: encodeCommand({ op: 'put', key: `key/${String(i).padStart(8, '0')}`, value }),
    } as never);
  }
  console.log(
    `state: ${n} keys of 64-byte values, applied in ${(performance.now() - t).toFixed(0)} ms; heap ${mb(process.memoryUsage().heapUsed)}`,
  );

  t = performance.now();
  const chunks = m.snapshot();
  const pause = performance.now() - t;

  const store = await LmdbStorage.open({ dir: join(dir, 'a'), clusterId: 'bench', nodeId: 'n1' });
  const meta = { index: n, term: 1, conf: { voters: ['n1'], learners: [], votersOutgoing: [] } } as never;
  // How long the event loop went without a turn while the snapshot was serialised and
  // stored: a turn-less stretch longer than the election timeout is a missed heartbeat.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  t = performance.now();
  const w = await store.snapshots.create(meta);
  let bytes = 0;
  let count = 0;
  for (const c of chunks) {
    bytes += c.byteLength;
    count++;
    await w.write(c);
  }
  await w.commit();
  const written = performance.now() - t;
  loop.disable();
  await store.close();
  console.log(
    `snapshot: writes paused ${pause.toFixed(1)} ms; serialised and stored durably (LMDB, fsync) in ${written.toFixed(0)} ms; ${mb(bytes)} in ${count} chunks`,
  );
  console.log(
    `event loop while serialising and storing: delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`,
  );

  // A restart: open the store, stream the snapshot into a fresh machine.
  t = performance.now();
  const again = await LmdbStorage.open({ dir: join(dir, 'a'), clusterId: 'bench', nodeId: 'n1' });
  const latest = again.snapshots.latest();
  if (!latest) throw new Error('no snapshot after reopening');
  const fresh = new QuorateMachine();
  await fresh.restore(latest, again.snapshots.read(latest));
  const restore = performance.now() - t;
  const same = fresh.hash() === m.hash();
  await again.close();
  console.log(
    `restart: store opened and ${n} keys restored in ${restore.toFixed(0)} ms (time to ready before the log tail); state hash ${same ? 'equal' : 'DIFFERENT'}`,
  );
  if (!same) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
