/** LeaderElector (from @quorate/client) against real nodes: in-process Raft, real HTTP. */
import {
  ElectorConfigError,
  HttpWire,
  LeaderElector,
  QuorateClient,
  type Wire,
  WireError,
  type WireRequest,
} from '@quorate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
beforeAll(async () => {
  c = await inProcessCluster(3);
  await waitFor(() => c.leader(), 'a leader');
});
afterAll(() => c.stop());

/** The real HTTP wire, with a switch that cuts this one client off (a network fault). */
class CuttableWire implements Wire {
  cut = false;
  private readonly inner = new HttpWire();
  request(req: WireRequest) {
    if (this.cut) return Promise.reject(new WireError('cut off from the cluster', false, false));
    return this.inner.request(req);
  }
  close() {
    return this.inner.close();
  }
}

function instance(
  name: string,
  holderId: string,
  ttlMs = 1000,
  renewEveryMs = 200,
  extra: Partial<ConstructorParameters<typeof LeaderElector>[0]> = {},
) {
  const wire = new CuttableWire();
  const client = new QuorateClient({
    endpoints: c.members.map((m) => m.clientAddress),
    wire,
    timeoutMs: 2000,
  });
  const elector = new LeaderElector({ cluster: client, name, holderId, ttlMs, renewEveryMs, ...extra });
  return { wire, client, elector };
}

/** Wait until the monotonic clock reads at least `t` (a point the test's promise names). */
async function sleepUntil(t: number): Promise<void> {
  while (performance.now() < t) await new Promise((r) => setTimeout(r, Math.max(1, t - performance.now())));
}

describe('LeaderElector', () => {
  it('refuses a renewal interval that is not well under the TTL', () => {
    const client = new QuorateClient({ endpoints: ['http://127.0.0.1:1'] });
    expect(
      () => new LeaderElector({ cluster: client, name: 'x', holderId: 'a', ttlMs: 1000, renewEveryMs: 400 }),
    ).toThrow(ElectorConfigError);
    expect(
      () => new LeaderElector({ cluster: client, name: 'x', holderId: 'a', ttlMs: 50, renewEveryMs: 10 }),
    ).toThrow(/ttlMs/);
    for (const bad of [{ safetyMarginMs: -1 }, { safetyMarginMs: 600 }, { maxDrift: Number.NaN }]) {
      expect(
        () =>
          new LeaderElector({
            cluster: client,
            name: 'x',
            holderId: 'a',
            ttlMs: 1000,
            renewEveryMs: 200,
            ...bad,
          }),
      ).toThrow(ElectorConfigError);
    }
  });

  it('options given as undefined take their defaults: a cut-off holder still stops in time', async () => {
    // Regression: spreading the options over the defaults made these NaN, and a NaN
    // deadline never passes, so a holder cut off from the cluster led forever.
    const a = instance('job-undefined', 'a', 1000, 200, {
      maxDrift: undefined,
      safetyMarginMs: undefined,
      now: undefined,
    });
    a.elector.start();
    await waitFor(() => a.elector.isLeader, 'a to lead');
    const cutAt = performance.now();
    a.wire.cut = true;
    // Its last successful renewal was sent before the cut: by the time its TTL could run
    // out anywhere, `isLeader` (which reads the clock) must say no, however late we look.
    await sleepUntil(cutAt + 1000);
    expect(a.elector.isLeader).toBe(false);
    a.wire.cut = false;
    await a.elector.stop();
    await a.client.close();
  });

  it('exactly one of three instances leads, and a resignation hands over well under the TTL', async () => {
    const all = ['a', 'b', 'c'].map((h) => instance('job-1', h, 3000, 300));
    for (const i of all) i.elector.start();
    const first = await waitFor(() => all.find((i) => i.elector.isLeader), 'a leader among the instances');
    await waitFor(() => all.filter((i) => i.elector.isLeader).length === 1, 'a single leader');
    expect(first.elector.health()).toMatchObject({ status: 'healthy', role: 'leader' });
    const standby = all.find((i) => i !== first)!;
    await waitFor(() => standby.elector.health().status === 'standby', 'a standby');
    const token = first.elector.fencingToken!;
    const t0 = performance.now();
    await first.elector.resign();
    const next = await waitFor(() => all.find((i) => i.elector.isLeader), 'a successor', 3000);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(next).not.toBe(first);
    expect(next.elector.fencingToken!).toBeGreaterThan(token);
    for (const i of all) await i.elector.stop();
    for (const i of all) await i.client.close();
  });

  it('a holder cut off from the cluster stops leading before its TTL could expire anywhere', async () => {
    const a = instance('job-2', 'a', 1000, 200);
    const b = instance('job-2', 'b', 1000, 200);
    a.elector.start();
    await waitFor(() => a.elector.isLeader, 'a to lead');
    b.elector.start();
    const aborted: number[] = [];
    a.elector.runWhileLeader(async (signal) => {
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      aborted.push(performance.now());
    });
    const cutAt = performance.now();
    a.wire.cut = true;
    // It gave up within the TTL of its last successful renewal (sent before the cut): by
    // then `isLeader` (which reads the clock) says no, however late we look.
    await sleepUntil(cutAt + 1000);
    expect(a.elector.isLeader).toBe(false);
    const gaveUp = performance.now();
    await waitFor(() => aborted.length === 1, 'the task to be aborted');
    expect(a.elector.health().status).toBe('unhealthy');
    const bWon = await waitFor(() => (b.elector.isLeader ? performance.now() : 0), 'b to take over', 3000);
    expect(bWon).toBeGreaterThan(gaveUp);
    a.wire.cut = false;
    await a.elector.stop();
    await b.elector.stop();
    await a.client.close();
    await b.client.close();
  });

  it('the task is aborted when the deadline passes, even when its timer fires early by the clock', async () => {
    // A clock 10 % slow: each timer fires before `now()` says its time came (as Node's
    // timers, rounded to whole milliseconds, often do by a little). The elector must look
    // again then, not leave the task running until its next renewal attempt.
    const t0 = performance.now();
    const slow = () => t0 + (performance.now() - t0) * 0.9;
    const a = instance('job-slow-clock', 'a', 1500, 500, { now: slow, safetyMarginMs: 0, maxDrift: 0 });
    a.elector.start();
    await waitFor(() => a.elector.isLeader, 'a to lead');
    let abortedAt = 0;
    a.elector.runWhileLeader(async (signal) => {
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      abortedAt = performance.now();
    });
    const cutAt = performance.now();
    a.wire.cut = true;
    await waitFor(() => abortedAt, 'the task to be aborted', 5000);
    // The last successful renewal was sent before the cut: the deadline (1,500 ms on the
    // slow clock, 1,667 ms real) passed at most 1,667 ms after the cut; 300 ms of slack for a loaded machine.
    // Without the second look the task ran on until the next attempt: 2,115-2,124 ms in 4 runs.
    expect(abortedAt - cutAt).toBeLessThan(1667 + 300);
    a.wire.cut = false;
    await a.elector.stop();
    await a.client.close();
  });

  it('the lease survives a Raft leader failover: the holder keeps it', async () => {
    const a = instance('job-3', 'a', 2000, 200);
    a.elector.start();
    await waitFor(() => a.elector.isLeader, 'a to lead');
    const token = a.elector.fencingToken;
    const lost: unknown[] = [];
    a.elector.on((e) => {
      if (e.type === 'lost') lost.push(e);
    });
    const raftLeader = c.leader()!;
    const target = c.nodes.find((n) => n !== raftLeader)!.id;
    await raftLeader.raft.transferLeadership(target);
    await waitFor(() => c.leader()?.id === target, 'a new Raft leader');
    // Several renewals later, still the same leadership.
    const renewed: number[] = [];
    a.elector.on((e) => {
      if (e.type === 'renewed') renewed.push(e.token);
    });
    await waitFor(() => renewed.length >= 3, 'renewals through the new Raft leader');
    expect(a.elector.isLeader).toBe(true);
    expect(a.elector.fencingToken).toBe(token);
    expect(lost).toEqual([]);
    await a.elector.stop();
    await a.client.close();
  });

  it('runWhileLeader runs the task with the fencing token, and again after re-election', async () => {
    const a = instance('job-4', 'a', 1000, 200);
    const runs: number[] = [];
    a.elector.runWhileLeader((_signal, token) => {
      runs.push(token);
    });
    a.elector.start();
    await waitFor(() => runs.length === 1, 'the task to run');
    await a.elector.resign();
    // After standing by for a TTL, it campaigns again and wins (nobody else wants it).
    await waitFor(() => runs.length === 2, 'the task to run again', 5000);
    expect(runs[1]!).toBeGreaterThan(runs[0]!);
    await a.elector.stop();
    await a.client.close();
  });
});

describe('LeaderElector metrics', () => {
  it('exports is_leader, acquisitions, renewal failures and renewal latency, valid for promtool', async () => {
    const { ElectorMetrics } = await import('@quorate/metrics');
    const { Registry } = await import('prom-client');
    const { execFileSync } = await import('node:child_process');
    const registry = new Registry();
    const metrics = new ElectorMetrics(registry);
    const a = instance('job-5', 'a', 1000, 100);
    metrics.attach(a.elector, 'job-5', 'a');
    a.elector.start();
    let renewed = 0;
    a.elector.on((e) => {
      if (e.type === 'renewed') renewed++;
    });
    await waitFor(() => renewed >= 2, 'two renewals');
    const text = await registry.metrics();
    expect(text).toMatch(/quorate_elector_is_leader\{lease="job-5",holder="a"\} 1/);
    expect(text).toMatch(/quorate_elector_leadership_acquired_total\{lease="job-5",holder="a"\} 1/);
    expect(text).toMatch(/quorate_elector_renewal_failures_total\{lease="job-5",holder="a"\} 0/);
    expect(text).toMatch(/quorate_elector_renewal_latency_seconds_count\{lease="job-5",holder="a"\} [1-9]/);
    execFileSync('promtool', ['check', 'metrics'], { input: text });
    await a.elector.stop();
    await a.client.close();
  });
});
