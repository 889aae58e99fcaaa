/**
 * The `quorate` CLI against a real cluster: keys, leases, partition sets, leadership and endpoints, with
 * `--json` output parsed and the exit statuses scripts rely on (0 done, 1 unavailable,
 * 2 usage, 3 not found, 4 refused).
 */
import { spawn } from 'node:child_process';
import { QuorateClient } from '@quorate/client';
import { LocalCluster, resolveNodeBin } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runNode, waitFor } from './helpers.js';

let cluster: LocalCluster;
let endpoints: string;
const bin = resolveNodeBin();
const q = (...args: string[]) => runNode([bin, ...args, '--endpoints', endpoints], { timeoutMs: 60_000 });
const json = async (...args: string[]) => {
  const r = await q(...args, '--json');
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};

beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp' });
  endpoints = cluster.nodes.map((n) => n.clientAddress).join(',');
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
});

it('kv put/get/list/del with --json, and the exit statuses of not found and a failed compare-and-set', async () => {
  const put = await json('kv', 'put', 'cli/a', 'one');
  expect(put).toMatchObject({ key: 'cli/a', version: 1 });
  expect(await json('kv', 'get', 'cli/a')).toMatchObject({ key: 'cli/a', value: 'one', version: 1 });
  await json('kv', 'put', 'cli/b', 'two');
  const list = await json('kv', 'list', 'cli/');
  expect(list.items.map((i: { key: string }) => i.key)).toEqual(['cli/a', 'cli/b']);
  const cas = await q('kv', 'put', 'cli/a', 'three', '--if-value', 'nope');
  expect(cas.code).toBe(4);
  expect(cas.stderr).toMatch(/CAS_FAILED/);
  expect(await json('kv', 'put', 'cli/a', 'three', '--if-version', '1')).toMatchObject({ version: 2 });
  expect(await json('kv', 'del', 'cli/b')).toMatchObject({ deleted: true });
  const missing = await q('kv', 'get', 'cli/b');
  expect(missing.code).toBe(3);
  const usage = await runNode([bin, 'kv', 'get', 'x'], { timeoutMs: 30_000 });
  expect(usage.code).toBe(2);
});

it('kv watch prints the changes it sees, one JSON line each', async () => {
  const from = (await json('kv', 'put', 'watched/x', '0')).index;
  const p = spawn(
    process.execPath,
    [
      bin,
      'kv',
      'watch',
      'watched/',
      '--from-index',
      String(from),
      '--count',
      '3',
      '--json',
      '--endpoints',
      endpoints,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  await json('kv', 'put', 'watched/x', '1');
  await json('kv', 'del', 'watched/x');
  expect(await done).toBe(0);
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(lines.map((l) => [l.type, l.key, l.value])).toEqual([
    ['put', 'watched/x', '0'],
    ['put', 'watched/x', '1'],
    ['delete', 'watched/x', undefined],
  ]);
});

it('lease acquire/get/renew/release, with refusal as exit 4', async () => {
  // A TTL no slow CLI start on a loaded machine outlasts: the refusal below must be the holder's.
  const l = await json('lease', 'acquire', 'job', '--holder', 'a', '--ttl-ms', '60000');
  expect(l).toMatchObject({ name: 'job', holder: 'a' });
  expect(await json('lease', 'get', 'job')).toMatchObject({ holder: 'a', token: l.token });
  const held = await q('lease', 'acquire', 'job', '--holder', 'b', '--ttl-ms', '60000');
  expect(held.code).toBe(4);
  expect(held.stderr).toMatch(/LEASE_HELD/);
  expect(
    await json('lease', 'renew', 'job', '--holder', 'a', '--lease-token', String(l.token)),
  ).toMatchObject({
    token: l.token,
  });
  expect(
    await json('lease', 'release', 'job', '--holder', 'a', '--lease-token', String(l.token)),
  ).toMatchObject({
    released: true,
  });
  expect((await q('lease', 'get', 'job')).code).toBe(3);
});

it('leader move and endpoint health/status over every member', async () => {
  const before = (await cluster.waitForLeader(30_000)).id;
  const to = cluster.nodes.find((n) => n.id !== before)!.id;
  expect(await json('leader', 'move', '--to', to)).toEqual({ leaderId: to });
  await waitFor(async () => (await cluster.waitForLeader(5_000)).id === to, 'the new leader everywhere');
  const status = await json('endpoint', 'status');
  expect(status).toHaveLength(3);
  for (const s of status) expect(s).toMatchObject({ ok: true });
  expect(status.filter((s: { state: string }) => s.state === 'leader')).toHaveLength(1);
  const health = await json('endpoint', 'health');
  expect(health.every((h: { ok: boolean; leaderId: string }) => h.ok && h.leaderId === to)).toBe(true);
  // A member that does not answer: exit 1, and the table says which.
  const down = await runNode([bin, 'endpoint', 'health', '--endpoints', `${endpoints},http://127.0.0.1:1`], {
    timeoutMs: 30_000,
  });
  expect(down.code).toBe(1);
  expect(down.stdout).toMatch(/127\.0\.0\.1:1\tunreachable/);
});

it('partitions create/list/show/move, with an unknown member refused as exit 4 and an unknown set as exit 3', async () => {
  const created = await json(
    'partitions',
    'create',
    'cli-set',
    '--members',
    'a,b',
    '--partitions',
    '2',
    '--replication-factor',
    '2',
  );
  expect(created.partitions.map((p: { replicas: string[] }) => p.replicas)).toEqual([
    ['a', 'b'],
    ['b', 'a'],
  ]);
  expect((await json('partitions', 'list')).sets).toContainEqual(
    expect.objectContaining({ name: 'cli-set', partitions: 2, members: 2, leaderless: 2 }),
  );
  // Two members come up (sessions long enough to need no keep-alive here): each leads its preferred partition.
  const client = new QuorateClient({ endpoints: endpoints.split(',') });
  try {
    for (const m of ['a', 'b']) {
      const s = await client.openSession(m, 60_000);
      await client.joinPartitionSet('cli-set', m, s.id);
    }
    const shown = await json('partitions', 'show', 'cli-set');
    expect(shown.partitions.map((p: { leader: string }) => p.leader)).toEqual(['a', 'b']);
    const epoch = shown.partitions[0].epoch as number;
    const text = await q('partitions', 'show', 'cli-set');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^0\ta\tleader epoch \d+\tepoch \d+\treplicas a,b\teligible a,b$/m);
    expect(await json('partitions', 'move', 'cli-set', '0', '--to', 'b')).toMatchObject({
      partition: 0,
      leader: 'b',
      epoch: epoch + 1,
    });
    const moved = await q('partitions', 'move', 'cli-set', '1', '--to', 'a');
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/cli-set\/1: led by a at leader epoch \d+ \(epoch \d+\)/);
    const stranger = await q('partitions', 'move', 'cli-set', '0', '--to', 'zed');
    expect(stranger.code).toBe(4);
    expect(stranger.stderr).toMatch(/^quorate: UNKNOWN_MEMBER: .*zed/m);
    const stale = await q('partitions', 'move', 'cli-set', '1', '--to', 'b', '--epoch', String(epoch));
    expect(stale.code).toBe(4);
    expect(stale.stderr).toMatch(/STALE_EPOCH/);
    const missing = await q('partitions', 'show', 'no-such-set');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no-such-set: no such partition set/);
  } finally {
    await client.close();
  }
});
