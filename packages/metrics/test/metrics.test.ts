import { MemoryNetwork, MemoryStorage, RaftNode } from '@quorate/raft';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MetricsError, MetricsErrorCode, RaftMetrics, startMetricsServer } from '../src/index.js';
import { metricsCluster, parseExposition } from './cluster.js';

const scrape = async (m: RaftMetrics) => parseExposition((await m.exposition()).body);

describe('RaftMetrics', () => {
  it('prefixes every name, and can leave out the process metrics', async () => {
    const m = new RaftMetrics({ prefix: 'kv_', processMetrics: false });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names).toContain('kv_raft_elections_total');
    expect(
      names.every(
        (n) =>
          n.startsWith('kv_raft_') ||
          n.startsWith('kv_transport_') ||
          n.startsWith('kv_storage_') ||
          n.startsWith('kv_snapshot'),
      ),
    ).toBe(true);
    const withProcess = new RaftMetrics();
    expect((await withProcess.registry.getMetricsAsJSON()).map((x) => x.name)).toContain(
      'quorate_process_cpu_seconds_total',
    );
  });

  it('rejects a prefix that is not a metric name, with a stable code', () => {
    expect(() => new RaftMetrics({ prefix: 'bad-prefix' })).toThrow(MetricsError);
    try {
      new RaftMetrics({ prefix: '1x' });
    } catch (e) {
      expect((e as MetricsError).code).toBe(MetricsErrorCode.InvalidOption);
    }
  });

  it('shares a registry with the application', async () => {
    const registry = new Registry();
    const m = new RaftMetrics({ registry, processMetrics: false });
    expect(m.registry).toBe(registry);
    expect(registry.getSingleMetric('quorate_raft_term')).toBeDefined();
  });

  it('refuses to observe one node twice, and stops counting once detached', async () => {
    const m = new RaftMetrics({ processMetrics: false });
    await using c = await metricsCluster(m);
    const leader = await c.leader();
    expect(() => m.attach(leader)).toThrow(
      expect.objectContaining({ code: MetricsErrorCode.AlreadyAttached }),
    );
    await leader.propose(new Uint8Array([1]));
    const before = (await scrape(m)).find(
      (x) => x.name === 'quorate_raft_proposals_total' && x.labels.node === leader.id,
    )!;
    expect(before.value).toBe(1);
    m.detach(leader.id);
    await leader.propose(new Uint8Array([2]));
    const after = await scrape(m);
    expect(
      after.find((x) => x.name === 'quorate_raft_proposals_total' && x.labels.node === leader.id)!.value,
    ).toBe(1);
    // A detached node's gauges are no longer read.
    expect(
      after
        .filter((x) => x.name === 'quorate_raft_term')
        .map((x) => x.labels.node)
        .sort(),
    ).toHaveLength(2);
  });

  it('scrapes cleanly before a node starts and after it stops', async () => {
    const m = new RaftMetrics({ processMetrics: false });
    const node = new RaftNode<null>({
      id: 'solo',
      members: ['solo'],
      storage: new MemoryStorage(),
      transport: new MemoryNetwork().transport('solo'),
      stateMachine: { apply: () => null },
    });
    m.attach(node);
    let s = await scrape(m);
    expect(s.filter((x) => x.name === 'quorate_raft_term')).toEqual([]);
    expect(s.find((x) => x.name === 'quorate_raft_elections_total' && x.labels.kind === 'vote')!.value).toBe(
      0,
    );
    await node.start();
    await node.stop();
    s = await scrape(m);
    expect(s.find((x) => x.name === 'quorate_raft_up')!.value).toBe(0);
    expect(s.find((x) => x.name === 'quorate_raft_is_leader')!.value).toBe(0);
  });
});

describe('startMetricsServer', () => {
  it('answers GET and HEAD on its path, 405 for other methods and 404 elsewhere', async () => {
    const m = new RaftMetrics({ processMetrics: false });
    const server = await startMetricsServer(m.registry);
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const get = await fetch(server.url);
      expect(get.status).toBe(200);
      expect(await get.text()).toContain('# TYPE quorate_raft_elections_total counter');
      const head = await fetch(server.url, { method: 'HEAD' });
      expect([head.status, await head.text()]).toEqual([200, '']);
      const post = await fetch(server.url, { method: 'POST' });
      expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
      await post.text();
      const other = await fetch(new URL('/other', server.url));
      expect(other.status).toBe(404);
      await other.text();
    } finally {
      await server.close();
    }
  });
});
