/**
 * Backup and restore with real processes: `quorate snapshot save` under write load, then
 * `quorate snapshot restore` into three empty data directories and a new cluster started
 * on them, whose state hash equals the source's at the backup's index. Damaged, truncated
 * and misdirected restores are refused with a clear error.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuorateClient } from '@quorate/client';
import { LocalCluster, resolveNodeBin } from '@quorate/loadgen';
import { afterAll, expect, it } from 'vitest';
import { runNode, waitFor } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'quorate-backup-'));
const clusters: LocalCluster[] = [];
const clients: QuorateClient[] = [];
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const c of clusters) await c.stop().catch(() => {});
  rmSync(work, { recursive: true, force: true });
});

const bin = resolveNodeBin();
const quorate = (...args: string[]) => runNode([bin, ...args], { timeoutMs: 120_000 });

it('a backup taken under write load restores into a new cluster with the same state', async () => {
  const source = await LocalCluster.start({ n: 3, transport: 'tcp' });
  clusters.push(source);
  const endpoints = source.nodes.map((n) => n.clientAddress);
  const c = new QuorateClient({ endpoints });
  clients.push(c);
  let writing = true;
  let ackedBefore = 0;
  let saving = false;
  let written = 0;
  const load = Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; writing; i++) {
        const r = await c.put(`b/${(i * 8 + w) % 50}`, `w${w}-${i}`);
        written++;
        if (!saving) ackedBefore = Math.max(ackedBefore, r.index);
      }
    }),
  );
  while (written < 500) await new Promise((r) => setTimeout(r, 20));
  const file = join(work, 'state.backup');
  saving = true;
  const saved = await quorate('snapshot', 'save', file, '--endpoints', endpoints.join(','), '--json');
  const afterSave = written;
  writing = false;
  await load;
  expect(saved.code, saved.stderr).toBe(0);
  const info = JSON.parse(saved.stdout) as { index: number; stateHash: string; bytes: number };
  // Everything acknowledged before the backup began is in it; writes went on during it.
  expect(info.index).toBeGreaterThanOrEqual(ackedBefore);
  expect(afterSave).toBeGreaterThan(500);

  // Three members of a new cluster, each seeded from the backup.
  const base = join(work, 'restored');
  for (const id of ['n1', 'n2', 'n3']) {
    const r = await quorate(
      'snapshot',
      'restore',
      file,
      '--data-dir',
      join(base, id),
      '--node-id',
      id,
      '--members',
      'local:3',
      '--cluster-id',
      'loadgen',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ index: info.index, clusterId: 'loadgen' });
  }
  const restored = await LocalCluster.start({ n: 3, transport: 'tcp', baseDir: base });
  clusters.push(restored);
  for (const n of restored.nodes) {
    // A leader is up; each member answers once its own server listens and it has applied
    // what the backup holds (a loaded machine starts some processes later than others).
    const h = await waitFor(
      async () => {
        const r = await fetch(`${n.clientAddress}/admin/state-hash`);
        const b = (await r.json()) as { appliedIndex: number; hash: string };
        return b.appliedIndex >= info.index ? b : null;
      },
      `${n.id} to serve the restored state`,
      60_000,
    );
    expect(h.hash, `${n.id}'s state`).toBe(info.stateHash);
    expect(h.appliedIndex).toBeGreaterThanOrEqual(info.index);
  }
  // And it serves: a read, then a write on top of the restored state.
  const rc = new QuorateClient({ endpoints: restored.nodes.map((n) => n.clientAddress) });
  clients.push(rc);
  expect((await rc.get('b/0'))?.text()).toMatch(/^w\d-\d+$/);
  const w = await rc.put('after/restore', 'yes');
  expect(w.index).toBeGreaterThan(info.index);

  // Refused: a damaged backup, a truncated one, and a data directory that is not empty.
  const bytes = readFileSync(file);
  const damaged = Buffer.from(bytes);
  damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
  writeFileSync(join(work, 'damaged.backup'), damaged);
  writeFileSync(join(work, 'short.backup'), bytes.subarray(0, bytes.length - 100));
  const args = (f: string, dir: string) => [
    'snapshot',
    'restore',
    f,
    '--data-dir',
    dir,
    '--node-id',
    'n1',
    '--members',
    'local:3',
  ];
  const bad = await quorate(...args(join(work, 'damaged.backup'), join(work, 'x1')));
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/BACKUP_CORRUPT/);
  const short = await quorate(...args(join(work, 'short.backup'), join(work, 'x2')));
  expect(short.code).toBe(2);
  expect(short.stderr).toMatch(/BACKUP_TRUNCATED/);
  const busy = await quorate(...args(file, join(base, 'n1')));
  expect(busy.code).toBe(2);
  expect(busy.stderr).toMatch(/RESTORE_REFUSED: .* is not empty/);
}, 300_000);
