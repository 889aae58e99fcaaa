/**
 * The exposition of a live three-node cluster, served by a real HTTP server, is what
 * Prometheus accepts (`promtool check metrics`), says what happened, and has every series
 * the dashboard and the alerts query.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RaftError } from '@quorate/raft';
import { beforeAll, describe, expect, it } from 'vitest';
import { RaftMetrics, startMetricsServer } from '../src/index.js';
import { metricsCluster, parseExposition, waitFor } from './cluster.js';

const pkg = join(import.meta.dirname, '..');
let body = '';
let contentType = '';
let transferredTo = '';

beforeAll(async () => {
  const metrics = new RaftMetrics();
  await using cluster = await metricsCluster(metrics);
  let leader = await cluster.leader();
  for (let i = 0; i < 200; i++) await leader.propose(new TextEncoder().encode(`entry ${i}`));
  // A proposal at a follower fails with NOT_LEADER.
  const follower = cluster.nodes.find((n) => n !== leader)!;
  await expect(follower.propose(new Uint8Array([1]))).rejects.toBeInstanceOf(RaftError);
  // A hand-over: a transfer campaign and a second leader change everywhere.
  transferredTo = follower.id;
  await leader.transferLeadership(follower.id, { timeoutMs: 30_000 });
  leader = await waitFor(
    () => cluster.nodes.find((n) => n.isLeader && n.id === follower.id),
    'the new leader',
  );
  await leader.propose(new Uint8Array([2]));
  // The followers acknowledge what the leader sent (lag 0) before we look.
  await waitFor(() => {
    const p = leader.status().progress!;
    return Object.values(p).every((x) => x.match === leader.status().lastIndex);
  }, 'followers caught up');
  metrics.observeSnapshot(leader.id, { kind: 'create', ok: true, ms: 12, bytes: 4096 });

  const server = await startMetricsServer(metrics.registry, { host: '127.0.0.1', port: 0 });
  try {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    contentType = res.headers.get('content-type') ?? '';
    body = await res.text();
  } finally {
    await server.close();
  }
}, 120_000);

describe('a live three-node cluster', () => {
  it('serves an exposition that promtool check metrics accepts', () => {
    expect(contentType).toContain('text/plain');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(r.error, 'promtool must be installed (Debian package prometheus)').toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('reports what happened: one leader, elections, leader changes, proposals, disk and transport', () => {
    const s = parseExposition(body);
    const get = (name: string, labels: Record<string, string> = {}) =>
      s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    const sum = (name: string, labels: Record<string, string> = {}) =>
      get(name, labels).reduce((a, x) => a + x.value, 0);

    expect(sum('quorate_raft_is_leader')).toBe(1);
    expect(get('quorate_raft_state', { state: 'leader' }).filter((x) => x.value === 1)).toHaveLength(1);
    expect(sum('quorate_raft_state')).toBe(3);
    const leader = get('quorate_raft_is_leader').find((x) => x.value === 1)!.labels.node!;
    expect(sum('quorate_raft_elections_total', { kind: 'vote' })).toBeGreaterThanOrEqual(1);
    expect(sum('quorate_raft_elections_total', { kind: 'transfer', node: transferredTo })).toBe(1);
    expect(leader).toBe(transferredTo);
    for (const n of ['n1', 'n2', 'n3']) {
      expect(sum('quorate_raft_leader_changes_total', { node: n })).toBeGreaterThanOrEqual(2);
      expect(sum('quorate_raft_commit_index', { node: n })).toBeGreaterThanOrEqual(202);
      expect(sum('quorate_raft_up', { node: n })).toBe(1);
    }
    expect(sum('quorate_raft_election_duration_seconds_count', { outcome: 'won' })).toBeGreaterThanOrEqual(2);
    expect(sum('quorate_raft_proposals_total')).toBe(202);
    expect(sum('quorate_raft_proposals_failed_total', { code: 'NOT_LEADER' })).toBe(1);
    expect(sum('quorate_raft_append_duration_seconds_count', { sync: 'true' })).toBeGreaterThan(0);
    expect(sum('quorate_raft_persisted_entries_total', { node: leader })).toBeGreaterThanOrEqual(202);
    expect(sum('quorate_raft_apply_duration_seconds_count')).toBeGreaterThan(0);
    expect(sum('quorate_raft_term', { node: leader })).toBeGreaterThanOrEqual(2);

    // Per-peer lag and reachability come from the leader only, one series per follower.
    const lag = get('quorate_raft_peer_lag_entries');
    expect(lag.map((x) => x.labels.node)).toEqual([leader, leader]);
    expect(lag.map((x) => x.value)).toEqual([0, 0]);
    expect(get('quorate_raft_peer_reachable').every((x) => x.value === 1 && x.labels.node === leader)).toBe(
      true,
    );

    expect(sum('quorate_transport_messages_sent_total')).toBeGreaterThan(400);
    expect(sum('quorate_transport_bytes_received_total')).toBeGreaterThan(0);
    expect(get('quorate_transport_peer_connected')).toHaveLength(6);
    expect(sum('quorate_storage_syncs_total')).toBeGreaterThan(0);
    expect(sum('quorate_snapshots_total', { kind: 'create', result: 'ok' })).toBe(1);
    expect(get('quorate_process_cpu_seconds_total')).toHaveLength(1);
  });

  it('has every series the dashboard and the alert rules query', () => {
    const names = new Set(parseExposition(body).map((x) => x.name));
    const dashboard = readFileSync(join(pkg, 'grafana', 'quorate-dashboard.json'), 'utf8');
    const alerts = readFileSync(join(pkg, 'prometheus', 'alerts.yaml'), 'utf8');
    const used = new Set([...`${dashboard}\n${alerts}`.matchAll(/\bquorate_[a-z0-9_]+/g)].map((m) => m[0]));
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter((n) => !names.has(n));
    expect(missing).toEqual([]);
  });
});
