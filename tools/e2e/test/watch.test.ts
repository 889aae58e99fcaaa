/**
 * Watch against real processes: a watcher sees every write of a 10,000-write run over ten
 * keys, in order, with no gap, across a kill of the member it streams from (it resumes by
 * index on another); a watcher from a compacted index is refused with 410; a watcher that
 * stops reading is cut off with a reason while the node's memory stays bounded. The lease
 * stream follows a holder change (`LeaderElector.observe`).
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { LeaderElector, QuorateClient, type WatchBatch, WatchCompactedError } from '@quorate/client';
import { LocalCluster } from '@quorate/loadgen';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from './helpers.js';

const clusters: LocalCluster[] = [];
const clients: QuorateClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const c of clusters.splice(0)) await c.stop().catch(() => {});
});

async function start(extraArgs: string[] = []): Promise<LocalCluster> {
  const c = await LocalCluster.start({ n: 3, transport: 'tcp', extraArgs });
  clusters.push(c);
  return c;
}

function client(endpoints: string[]): QuorateClient {
  const c = new QuorateClient({ endpoints });
  clients.push(c);
  return c;
}

type Wire = 'http' | 'protocol';
const address = (n: { clientAddress: string; protocolAddress: string }, wire: Wire) =>
  wire === 'http' ? n.clientAddress : n.protocolAddress;

it.each<Wire>(['http', 'protocol'])(
  'sees all 10,000 writes over 10 keys in order, with no gap, across a kill of its member (over %s)',
  async (wire) => {
    const cluster = await start();
    const leader = await cluster.waitForLeader(30_000);
    const others = cluster.nodes.filter((n) => n !== leader);
    // The watcher streams from the leader first: killing it makes the watcher resume elsewhere.
    const watcher = client([address(leader, wire), ...others.map((n) => address(n, wire))]);
    const writer = client(cluster.nodes.map((n) => address(n, wire)));
    const seen: WatchBatch[] = [];
    const stop = new AbortController();
    const watching = (async () => {
      for await (const b of watcher.watch({ prefix: 'w/', fromIndex: 1, signal: stop.signal })) seen.push(b);
    })();
    const acked = new Map<number, { key: string; value: string }>();
    let issued = 0;
    let killed = false;
    const TOTAL = 10_000;
    await Promise.all(
      Array.from({ length: 32 }, async (_, w) => {
        for (;;) {
          const i = issued++;
          if (i >= TOTAL) return;
          if (i === TOTAL / 2 && !killed) {
            killed = true;
            cluster.kill(leader);
          }
          const key = `w/${i % 10}`;
          const value = `v${i}-${w}`;
          try {
            const r = await writer.put(key, value);
            acked.set(r.index, { key, value });
          } catch {
            // An outcome the client could not learn (the kill): the watcher may or may not show it.
          }
        }
      }),
    );
    expect(acked.size).toBeGreaterThan(TOTAL * 0.95);
    const last = [...acked.keys()].reduce((m, i) => Math.max(m, i), 0);
    await waitFor(
      () => (seen.at(-1)?.index ?? 0) >= last,
      'the watcher to reach the last acknowledged write',
      30_000,
    );
    stop.abort();
    await watching;

    // Commit order, one batch per index, strictly increasing.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.index).toBeGreaterThan(seen[i - 1]!.index);
    // Every acknowledged write at its index, with its value.
    const byIndex = new Map(seen.map((b) => [b.index, b]));
    for (const [index, w] of acked) {
      const b = byIndex.get(index);
      expect(b, `the write at ${index}`).toBeDefined();
      const c = b!.changes.find((x) => x.type === 'put' && x.key === w.key);
      expect(c && c.type === 'put' ? c.text() : null).toBe(w.value);
    }
    // No gap: each key's versions go up by one from its first change (coalesced or dropped
    // events would skip a version).
    const version = new Map<string, number>();
    for (const b of seen) {
      for (const c of b.changes) {
        if (c.type !== 'put') continue;
        const prev = version.get(c.key);
        if (prev !== undefined) expect(c.version, `${c.key} at ${b.index}`).toBe(prev + 1);
        else expect(c.version).toBe(1);
        version.set(c.key, c.version);
      }
    }
    expect(version.size).toBe(10);
  },
  240_000,
);

it('a watcher from a compacted index gets 410 with the oldest index (WatchCompactedError on both wires)', async () => {
  const cluster = await start(['--kv.watch-history-events', '50']);
  const c = client(cluster.nodes.map((n) => n.clientAddress));
  const p = client(cluster.nodes.map((n) => n.protocolAddress));
  for (let i = 0; i < 200; i++) await c.put(`c/${i % 5}`, `x${i}`);
  const leader = await cluster.waitForLeader(30_000);
  const res = await fetch(`${leader.clientAddress}/watch?fromIndex=1`);
  expect(res.status).toBe(410);
  const { error: body } = (await res.json()) as { error: { code: string; oldestIndex: number } };
  expect(body.code).toBe('COMPACTED');
  expect(body.oldestIndex).toBeGreaterThan(100);
  const err = await (async () => {
    for await (const _ of c.watch({ fromIndex: 1 })) return null;
    return null;
  })().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WatchCompactedError);
  const overProtocol = await (async () => {
    for await (const _ of p.watch({ fromIndex: 1 })) return null;
    return null;
  })().catch((e: unknown) => e);
  expect(overProtocol).toBeInstanceOf(WatchCompactedError);
  // From the oldest index it names, the watch works.
  const it2 = c.watch({ prefix: 'c/', fromIndex: body.oldestIndex });
  const first = await it2.next();
  expect(first.value?.index).toBeGreaterThanOrEqual(body.oldestIndex);
  await it2.return(undefined);
}, 120_000);

it('a watcher that stops reading is cut off with a reason; the node does not buffer without bound', async () => {
  const cluster = await start();
  const leader = await cluster.waitForLeader(30_000);
  const c = client([leader.clientAddress]);
  const rss = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${leader.proc!.pid}/status`, 'utf8'));
    return Number(m![1]) * 1024;
  };
  // A raw HTTP watcher whose socket is paused: it reads nothing until the end.
  const url = new URL(`${leader.clientAddress}/watch?prefix=s/`);
  let text = '';
  let paused: (() => void) | null = null;
  const ended = new Promise<void>((resolve, reject) => {
    const req = request(url, (res) => {
      expect(res.statusCode).toBe(200);
      res.pause();
      paused = () => {
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve());
        res.resume();
      };
    });
    req.on('error', reject);
    req.end();
  });
  await waitFor(() => paused, 'the watch stream to open');
  const before = rss();
  const value = 'x'.repeat(100_000);
  for (let i = 0; i < 400; i++) await c.put(`s/${i % 20}`, value);
  const after = rss();
  paused!();
  await ended;
  const closed = text.slice(text.lastIndexOf('event: closed'));
  expect(closed).toMatch(/^event: closed\ndata: .*"code":"SLOW_WATCHER"/);
  expect(JSON.parse(closed.split('\ndata: ')[1]!).resumeFrom).toBeGreaterThan(0);
  // 40 MB of changes went by; the node stopped sending at its 8 MiB buffer limit (what
  // arrived is that plus what the kernel's socket buffers held), and its memory did not
  // grow by the 40 MB a watcher it kept writing to would have cost on top of its history.
  expect(text.length).toBeLessThan(24 * 1024 * 1024);
  expect(after - before).toBeLessThan(400 * 1024 * 1024);
}, 180_000);

it('LeaderElector.observe follows the holder of a name without campaigning', async () => {
  const cluster = await start();
  const endpoints = cluster.nodes.map((n) => n.clientAddress);
  const cl = client(endpoints);
  const observer = new LeaderElector({
    cluster: cl,
    name: 'job',
    holderId: 'watcher',
    ttlMs: 3000,
    renewEveryMs: 500,
  });
  const stop = new AbortController();
  const holders: (string | null)[] = [];
  const following = (async () => {
    for await (const h of observer.observe({ signal: stop.signal })) holders.push(h.holder);
  })();
  await waitFor(() => holders.length >= 1, 'the first holder');
  expect(holders[0]).toBeNull();
  const a = await cl.acquireLease('job', 'worker-a', 3000);
  await waitFor(() => holders.at(-1) === 'worker-a', 'worker-a to show');
  await cl.releaseLease('job', 'worker-a', a.token);
  await waitFor(() => holders.at(-1) === null, 'the release to show');
  await cl.acquireLease('job', 'worker-b', 3000);
  await waitFor(() => holders.at(-1) === 'worker-b', 'worker-b to show');
  stop.abort();
  await following;
  expect(holders).toEqual([null, 'worker-a', null, 'worker-b']);
}, 120_000);
