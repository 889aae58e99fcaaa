/**
 * A member whose data directory's filesystem drops below `storage.reserveBytes`: the
 * cluster refuses client writes with STORAGE_FULL (507), reads and deletes go on, and
 * writes resume once space is freed, without a restart. The filesystem is a real tmpfs
 * of 16 MiB, filled with a ballast file (needs root to mount; skipped, and said, when not).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

const root = process.getuid?.() === 0 && process.platform === 'linux';
const MiB = 1 << 20;
let c: InProcessCluster;
let mnt = '';

beforeAll(async () => {
  if (!root) return;
  mnt = mkdtempSync(join(tmpdir(), 'quorate-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
  c = await inProcessCluster(3, null, {
    diskGuard: (id) => (id === 'n2' ? { path: mnt, reserveBytes: 4 * MiB, intervalMs: 50 } : undefined),
  });
  await waitFor(() => c.leader(), 'a leader');
});
afterAll(async () => {
  await c?.stop();
  if (mnt) {
    execFileSync('umount', ['-l', mnt]);
    rmdirSync(mnt);
  }
});

/** Fill the tmpfs until `keep` bytes are left. */
function fill(keep: number): void {
  const fd = openSync(join(mnt, 'ballast'), 'w');
  const out = execFileSync('df', ['-B1', '--output=avail', mnt]).toString().trim().split('\n')[1]!;
  let left = Number(out) - keep;
  const chunk = Buffer.alloc(MiB, 1);
  while (left > 0) left -= writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  closeSync(fd);
}

const put = (url: string, key: string, v: string) => fetch(`${url}/kv/${key}`, { method: 'PUT', body: v });

it.skipIf(!root)(
  'a member below its free-space reserve makes the cluster refuse writes with 507 STORAGE_FULL, until space is freed',
  async () => {
    const leaderUrl = () => c.url(c.leader()!.id);
    expect((await put(leaderUrl(), 'a', 'before')).status).toBe(200);
    expect((await put(leaderUrl(), 'gone', 'x')).status).toBe(200);
    fill(2 * MiB);
    // n2 says so on /health, and the leader learns it from there (its peer monitor, once a second).
    await waitFor(
      async () => ((await (await fetch(`${c.url('n2')}/health`)).json()) as { diskFull: boolean }).diskFull,
      'n2 to report a full disk',
    );
    const refused = await waitFor(async () => {
      // (a key of its own: writes until the leader hears of n2's disk are accepted)
      const r = await put(leaderUrl(), 'probe', 'during');
      return r.status === 507 ? ((await r.json()) as { error: { code: string; retryable: boolean } }) : null;
    }, 'the leader to refuse a write');
    expect(refused.error.code).toBe('STORAGE_FULL');
    expect(refused.error.retryable).toBe(false);
    // n2 itself refuses, naming its own directory's shortage.
    const own = await put(c.url('n2'), 'a', 'during');
    expect(own.status).toBe(507);
    expect(((await own.json()) as { error: { message: string } }).error.message).toMatch(/reserve/);
    // Reads go on; deletes pass (they shrink the state).
    const got = await fetch(`${leaderUrl()}/kv/a`);
    expect(await got.text()).toBe('before');
    expect((await fetch(`${leaderUrl()}/kv/gone`, { method: 'DELETE' })).status).toBe(200);
    // Space back: writes resume, no restart.
    rmSync(join(mnt, 'ballast'));
    await waitFor(
      async () => (await put(leaderUrl(), 'a', 'after')).status === 200,
      'writes to resume',
      15_000,
    );
    expect(await (await fetch(`${leaderUrl()}/kv/a`)).text()).toBe('after');
  },
);
