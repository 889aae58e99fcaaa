/**
 * Run one node from its configuration: storage, transport, metrics, the node itself,
 * logs, and a graceful stop (a leader hands over first).
 */
import { readFileSync } from 'node:fs';
import { type Config, raftRuntimeOptions } from '@quorate/config';
import { RaftMetrics, startMetricsServer } from '@quorate/metrics';
import type { MultiRaftHost } from '@quorate/multiraft';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createLogger } from './logging.js';
import { LoopMonitor } from './loop-monitor.js';
import { QuorateNode } from './node.js';
import { NodeStartError, openStorage, openTransport } from './plugs.js';
import type { Partitions } from './state/partitions.js';

export interface RunningNode {
  readonly node: QuorateNode;
  readonly log: Logger;
  /** Stop once (later calls return the same promise): hand over, close HTTP, Raft, transport, storage. */
  stop(): Promise<void>;
}

/**
 * Open everything `config` describes and start serving. A joining node (`join: true`)
 * starts with no members and waits to be added by the cluster.
 */
export async function runNode(
  config: Config,
  opts: { join?: boolean; log?: Logger } = {},
): Promise<RunningNode> {
  const log = opts.log ?? createLogger(config);
  if (opts.join && config.groups > 1)
    throw new NodeStartError(
      'MEMBERSHIP_FIXED',
      `a sharded cluster's members are fixed when it is created (groups = ${config.groups}): a node cannot --join one; list it in members when the cluster is created (docs/sharding.md)`,
    );
  const storage = await openStorage(config, log);
  let transport: Awaited<ReturnType<typeof openTransport>>;
  try {
    transport = await openTransport(config, log);
  } catch (err) {
    await storage.close();
    throw err;
  }
  const metrics = config.metrics.enabled
    ? new RaftMetrics({ prefix: config.metrics.prefix, processMetrics: config.metrics.processMetrics })
    : null;
  const sources = { transport: transport.stats, storage: storage.stats };
  const protocolMetrics = metrics
    ? {
        refused: new Counter({
          name: `${config.metrics.prefix}client_protocol_refused_total`,
          help: 'Client-protocol input refused: reason="malformed_frame", "frame_too_large", "no_hello", "bad_version", "unauthorized", "bad_request", "unknown_op", "overloaded".',
          labelNames: ['reason'],
          registers: [metrics.registry],
        }),
        requests: new Counter({
          name: `${config.metrics.prefix}client_protocol_requests_total`,
          help: 'Client-protocol requests accepted for processing.',
          registers: [metrics.registry],
        }),
      }
    : null;
  const loopDelay = metrics
    ? new Histogram({
        name: `${config.metrics.prefix}event_loop_delay_seconds`,
        help: 'How late a timer due every 20 ms fired: time the event loop (Raft runtime, transport, client servers, storage commits) was held by other work.',
        buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
        registers: [metrics.registry],
      })
    : null;
  // The data directory's free space (read by the node's disk guard), once the node exists.
  let diskOf: () => { freeBytes: number | null; full: boolean } | null = () => null;
  let leaseReadsOf: () => number = () => 0;
  let partitionsOf: () => Partitions | null = () => null;
  if (metrics) registerPartitionMetrics(metrics.registry, config.metrics.prefix, () => partitionsOf());
  let groupsOf: () => MultiRaftHost | null = () => null;
  if (metrics && config.groups > 1)
    registerGroupMetrics(metrics.registry, config.metrics.prefix, () => groupsOf());
  if (metrics) {
    new Gauge({
      name: `${config.metrics.prefix}storage_free_bytes`,
      help: 'Free bytes on the filesystem of the data directory (storage.reserveBytes is kept free).',
      registers: [metrics.registry],
      collect() {
        const d = diskOf();
        if (d?.freeBytes != null) this.set(d.freeBytes);
      },
    });
    let leaseReadsSeen = 0;
    new Counter({
      name: `${config.metrics.prefix}lease_reads_total`,
      help: 'Linearizable reads this node served as leader under its lease, without a heartbeat round (raft.leaseReads).',
      registers: [metrics.registry],
      collect() {
        const n = leaseReadsOf();
        if (n > leaseReadsSeen) this.inc(n - leaseReadsSeen);
        leaseReadsSeen = n;
      },
    });
    new Gauge({
      name: `${config.metrics.prefix}storage_full`,
      help: '1 while the data directory is below its free-space reserve and client writes are refused (STORAGE_FULL).',
      registers: [metrics.registry],
      collect() {
        this.set(diskOf()?.full ? 1 : 0);
      },
    });
  }
  const loop = new LoopMonitor({
    warnMs: raftRuntimeOptions(config).heartbeatIntervalMs,
    log,
    ...(loopDelay ? { observe: (s: number) => loopDelay.observe(s) } : {}),
  });
  const httpTls = config.http.tls.enabled
    ? {
        cert: readFileSync(config.http.tls.certFile!),
        key: readFileSync(config.http.tls.keyFile!),
        ...(config.http.tls.caFile ? { ca: readFileSync(config.http.tls.caFile) } : {}),
        requireClientCert: config.http.tls.requireClientCert,
      }
    : null;
  const rt = raftRuntimeOptions(config);
  const node = new QuorateNode({
    clusterId: config.clusterId,
    id: config.nodeId,
    members: opts.join ? [] : config.members,
    knownMembers: config.members,
    onMemberAdded: (m) => transport.addPeer(m),
    ...(storage.groups && transport.groupTransport
      ? {
          groups: {
            count: config.groups,
            transport: transport.groupTransport,
            storage: storage.groups,
          },
        }
      : { storage: storage.log, ...(transport.transport ? { transport: transport.transport } : {}) }),
    http: { ...hostPort(config.http.listen), ...(httpTls ? { tls: httpTls } : {}) },
    ...(config.client.listen
      ? {
          protocol: {
            ...hostPort(config.client.listen),
            ...(httpTls ? { tls: httpTls } : {}),
            maxFrameBytes: config.client.maxFrameBytes ?? config.kv.maxValueBytes + (64 << 10),
            maxInFlight: config.client.maxInFlight,
            ...(protocolMetrics
              ? {
                  onRefused: (reason: string) => protocolMetrics.refused.inc({ reason }),
                  onRequest: () => protocolMetrics.requests.inc(),
                }
              : {}),
          },
        }
      : {}),
    api: {
      maxValueBytes: config.kv.maxValueBytes,
      defaultTimeoutMs: config.http.defaultTimeoutMs,
      token: config.http.token ?? null,
      leaseTtlMs: { min: config.leases.minTtlMs, max: config.leases.maxTtlMs },
    },
    raft: {
      tickMs: rt.tickMs,
      heartbeatIntervalMs: rt.heartbeatIntervalMs,
      electionTimeoutMs: rt.electionTimeoutMs,
      requestTimeoutMs: rt.requestTimeoutMs,
      maxClockDriftRatio: rt.maxClockDriftRatio,
      raft: rt.raft,
    },
    machine: {
      sessionTtlEntries: config.kv.sessionExpiryEntries,
      watch: { maxEvents: config.kv.watchHistoryEvents, maxBytes: config.kv.watchHistoryBytes },
    },
    leases: { checkIntervalMs: config.leases.checkIntervalMs },
    diskGuard: { path: config.storage.dataDir, reserveBytes: config.storage.reserveBytes },
    snapshots: {
      ...(storage.groups ? {} : { store: storage.snapshots }),
      everyEntries: config.raft.snapshotEntries,
      ...(config.raft.snapshotSpread
        ? { phaseEntries: snapshotPhase(config.nodeId, config.members, config.raft.snapshotEntries) }
        : {}),
      ...(config.raft.snapshotBytes > 0 ? { everyBytes: config.raft.snapshotBytes } : {}),
      keepEntries: config.raft.snapshotTrailingEntries,
    },
    logger: log,
    ...(metrics && !config.metrics.listen
      ? {
          metrics: (raft) => {
            metrics.attach(raft, sources);
            return { contentType: metrics.registry.contentType, render: () => metrics.registry.metrics() };
          },
        }
      : {}),
  });
  diskOf = () => node.disk;
  leaseReadsOf = () => node.raft.leaseReadsServed;
  partitionsOf = () => node.machine.partitions;
  groupsOf = () => node.host;
  let metricsServer: { close(): Promise<void> } | null = null;
  try {
    if (metrics && config.metrics.listen) {
      metrics.attach(node.raft, sources);
      metricsServer = await startMetricsServer(metrics.registry, hostPort(config.metrics.listen));
    }
    await node.start();
    loop.start();
  } catch (err) {
    await node.stop().catch(() => {});
    await metricsServer?.close();
    await storage.close();
    throw err;
  }
  log.info(
    {
      http: config.http.listen,
      ...(config.client.listen ? { protocol: config.client.listen } : {}),
      transport: `${config.transport.kind} ${config.transport.listen}`,
      dataDir: config.storage.dataDir,
      members: config.members.map((m) => m.id),
      fsync: config.storage.fsync,
    },
    'configuration',
  );
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      loop.stop();
      await node.stop({ transferLeadership: true });
      await metricsServer?.close();
      await storage.close();
      log.flush();
    })();
    return stopping;
  };
  return { node, log, stop };
}

/**
 * Where this member's snapshots fall in each interval of `every` entries: the members listed
 * in the configuration spread evenly over it (in the order of their ids), so that they do not
 * all take one at the same moment. Serialising and storing a large state costs each member
 * CPU and disk for a second or more; all members at once, every write waits (three members
 * sharing two cores, 200,000 keys, 6,000 puts/s, a snapshot every 100,000 entries: p99 607
 * and 764 ms in step, 109 and 131 ms spread). A member not listed (one that joined) takes a
 * place from its id.
 */
export function snapshotPhase(nodeId: string, members: readonly { id: string }[], every: number): number {
  const ids = members.map((m) => m.id).sort();
  const at = ids.indexOf(nodeId);
  if (at >= 0) return Math.floor((every * at) / ids.length);
  let h = 2166136261;
  for (let i = 0; i < nodeId.length; i++) h = Math.imul(h ^ nodeId.charCodeAt(i), 16777619);
  return (h >>> 0) % every;
}

export function hostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(listen.slice(i + 1)) };
}

/** Sessions and partition leadership (docs/partitions.md): counts, not a series per partition. */
function registerPartitionMetrics(registry: Registry, prefix: string, of: () => Partitions | null): void {
  const gauge = (name: string, help: string, value: (p: Partitions) => number) =>
    new Gauge({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        const p = of();
        if (p) this.set(value(p));
      },
    });
  gauge('sessions', 'Live sessions (POST /sessions) in the replicated state.', (p) => p.sessions.size);
  gauge('partition_sets', 'Partition sets in the replicated state.', (p) => p.sets.size);
  gauge(
    'partitions_leaderless',
    'Partitions, over all sets, with no eligible live replica to lead them.',
    (p) => {
      let n = 0;
      for (const s of p.sets.values()) for (const x of s.partitions) if (x.leader === null) n++;
      return n;
    },
  );
  new Gauge({
    name: `${prefix}partitions_led`,
    help: 'Partitions led by each member of the partition sets, over all sets (label: member).',
    labelNames: ['member'],
    registers: [registry],
    collect() {
      const p = of();
      if (!p) return;
      this.reset();
      const led = new Map<string, number>();
      for (const s of p.sets.values()) {
        for (const m of s.members) if (!led.has(m)) led.set(m, 0);
        for (const x of s.partitions) if (x.leader !== null) led.set(x.leader, (led.get(x.leader) ?? 0) + 1);
      }
      for (const [member, n] of led) this.set({ member }, n);
    },
  });
  let seen = 0;
  new Counter({
    name: `${prefix}partition_leader_changes_total`,
    help: "Changes of a partition's leader applied on this member (hand-overs, moves, joins).",
    registers: [registry],
    collect() {
      const n = of()?.leaderChanges ?? 0;
      if (n > seen) this.inc(n - seen);
      seen = n;
    },
  });
}

/** A sharded node's groups: counts for this member, not a series per group. */
function registerGroupMetrics(registry: Registry, prefix: string, of: () => MultiRaftHost | null): void {
  const gauge = (name: string, help: string, value: (h: MultiRaftHost) => number) =>
    new Gauge({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        const h = of();
        if (h) this.set(value(h));
      },
    });
  gauge(
    'groups',
    'Raft groups this member hosts (the key space is sharded over them).',
    (h) => h.stats().groups,
  );
  gauge('groups_led', 'Groups this member leads.', (h) => h.stats().leaders);
  gauge(
    'groups_quiesced',
    'Groups idle on this member (no ticks, no heartbeats).',
    (h) => h.stats().quiesced,
  );
  gauge('groups_leaderless', 'Groups with no leader known to this member.', (h) => {
    let n = 0;
    for (const g of h.groupIds()) if (h.group(g)?.leaderId === null) n++;
    return n;
  });
}
