/**
 * Prometheus metrics for quorate nodes, by subscription: the node's event stream feeds the
 * counters and histograms; gauges (role, term, indexes, per-peer lag) and the transport
 * and storage counters are read from `status()` and the stats sources when Prometheus
 * scrapes, so the hot path pays only for a few additions per batch.
 *
 * The core never imports prom-client; this package imports only types from the core.
 */
import type { NodeStatus, RaftNodeEvent, Role } from '@quorate/raft';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import {
  BATCH_BUCKETS,
  DISK_BUCKETS_SECONDS,
  ELECTION_BUCKETS_SECONDS,
  SNAPSHOT_BUCKETS_SECONDS,
} from './buckets.js';
import { type CounterCell, FastCounter, FastHistogram, type HistogramCell } from './cells.js';
import { MetricsError, MetricsErrorCode } from './errors.js';
import type {
  PeerTransportStats,
  SnapshotEvent,
  StorageStats,
  StorageStatsSource,
  TransportStatsSource,
} from './stats.js';

/** What the metrics need from a node: `RaftNode` satisfies it. */
export interface ObservedNode {
  readonly id: string;
  readonly events: { onAny(fn: (e: RaftNodeEvent) => void): () => void };
  status(): NodeStatus;
}

export interface RaftMetricsOptions {
  /** Default: a new registry. */
  registry?: Registry;
  /** Prefix of every metric name, default `quorate_`. */
  prefix?: string;
  /** Register prom-client's default process metrics (with the same prefix). Default true. */
  processMetrics?: boolean;
}

export interface AttachOptions {
  transport?: TransportStatsSource;
  storage?: StorageStatsSource;
}

const ROLES: readonly Role[] = ['follower', 'precandidate', 'candidate', 'leader'];

/** Pre-bound children for one node, so an event costs a property lookup, not a label hash. */
interface Bound {
  readonly node: ObservedNode;
  readonly transport: TransportStatsSource | undefined;
  readonly storage: StorageStatsSource | undefined;
  lastLeader: string | null;
  unsubscribe: () => void;
  readonly electionsPre: CounterCell;
  readonly electionsVote: CounterCell;
  readonly electionsTransfer: CounterCell;
  readonly electionWon: HistogramCell;
  readonly electionLost: HistogramCell;
  readonly leaderChanges: CounterCell;
  readonly proposals: CounterCell;
  readonly persistSync: HistogramCell;
  readonly persistNoSync: HistogramCell;
  readonly persistBatch: HistogramCell;
  readonly persistedEntries: CounterCell;
  readonly persistedBytes: CounterCell;
  readonly apply: HistogramCell;
  readonly appliedEntries: CounterCell;
}

export class RaftMetrics {
  readonly registry: Registry;
  readonly prefix: string;
  private readonly nodes = new Map<string, Bound>();
  private statusCache: Map<string, NodeStatus | null> | null = null;

  private readonly elections: FastCounter;
  private readonly electionDuration: FastHistogram;
  private readonly leaderChanges: FastCounter;
  private readonly stepDowns: FastCounter;
  private readonly proposals: FastCounter;
  private readonly proposalsFailed: FastCounter;
  private readonly appendDuration: FastHistogram;
  private readonly appendBatch: FastHistogram;
  private readonly persistedEntries: FastCounter;
  private readonly persistedBytes: FastCounter;
  private readonly applyDuration: FastHistogram;
  private readonly appliedEntries: FastCounter;
  private readonly anomalies: FastCounter;
  private readonly snapshots: FastCounter;
  private readonly snapshotDuration: FastHistogram;
  private readonly snapshotBytes: FastCounter;

  constructor(opts: RaftMetricsOptions = {}) {
    const prefix = opts.prefix ?? 'quorate_';
    if (!/^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
      throw new MetricsError(MetricsErrorCode.InvalidOption, `"${prefix}" is not a valid metric name prefix`);
    }
    this.prefix = prefix;
    const registry = opts.registry ?? new Registry();
    this.registry = registry;
    const registers = [registry];
    const p = prefix;
    // Fed by events on the hot path: plain cells (see cells.ts), read at scrape time.

    // ------------------------------------------------------------ from events
    this.elections = new FastCounter(
      `${p}raft_elections_total`,
      'Campaigns started: kind="prevote" (asks without raising the term), "vote" (raises it), "transfer" (leadership hand-over).',
      ['node', 'kind'],
      registry,
    );
    this.electionDuration = new FastHistogram(
      `${p}raft_election_duration_seconds`,
      'From the first campaign to becoming leader (outcome="won") or following another (outcome="lost").',
      ['node', 'outcome'],
      [...ELECTION_BUCKETS_SECONDS],
      registry,
    );
    this.leaderChanges = new FastCounter(
      `${p}raft_leader_changes_total`,
      'Times this node learned of a new leader (itself included).',
      ['node'],
      registry,
    );
    this.stepDowns = new FastCounter(
      `${p}raft_step_downs_total`,
      'Times this node stopped leading: reason="checkQuorum" (lost its majority) or "higherTerm".',
      ['node', 'reason'],
      registry,
    );
    this.proposals = new FastCounter(
      `${p}raft_proposals_total`,
      'Proposals that reached an outcome on this node (applied or failed).',
      ['node'],
      registry,
    );
    this.proposalsFailed = new FastCounter(
      `${p}raft_proposals_failed_total`,
      'Proposals that failed, by error code (NOT_LEADER, TIMEOUT, PROPOSAL_DROPPED, OVERLOADED, ...).',
      ['node', 'code'],
      registry,
    );
    this.appendDuration = new FastHistogram(
      `${p}raft_append_duration_seconds`,
      'Time to persist one batch of log entries and hard state; sync="true" when it was fsynced.',
      ['node', 'sync'],
      [...DISK_BUCKETS_SECONDS],
      registry,
    );
    this.appendBatch = new FastHistogram(
      `${p}raft_append_batch_entries`,
      'Entries per persisted batch (group commit).',
      ['node'],
      [...BATCH_BUCKETS],
      registry,
    );
    this.persistedEntries = new FastCounter(
      `${p}raft_persisted_entries_total`,
      'Log entries persisted.',
      ['node'],
      registry,
    );
    this.persistedBytes = new FastCounter(
      `${p}raft_persisted_bytes_total`,
      'Bytes of entry data persisted.',
      ['node'],
      registry,
    );
    this.applyDuration = new FastHistogram(
      `${p}raft_apply_duration_seconds`,
      'Time for the state machine to apply one batch of committed entries.',
      ['node'],
      [...DISK_BUCKETS_SECONDS],
      registry,
    );
    this.appliedEntries = new FastCounter(
      `${p}raft_applied_entries_total`,
      'Committed entries applied to the state machine.',
      ['node'],
      registry,
    );
    this.anomalies = new FastCounter(
      `${p}raft_anomalies_total`,
      'Unexpected situations the core recovered from (see the logs); should stay 0.',
      ['node'],
      registry,
    );
    this.snapshots = new FastCounter(
      `${p}snapshots_total`,
      'Snapshots created, installed or sent, by result.',
      ['node', 'kind', 'result'],
      registry,
    );
    this.snapshotDuration = new FastHistogram(
      `${p}snapshot_duration_seconds`,
      'Time to create, install or send a snapshot.',
      ['node', 'kind'],
      [...SNAPSHOT_BUCKETS_SECONDS],
      registry,
    );
    this.snapshotBytes = new FastCounter(
      `${p}snapshot_bytes_total`,
      'Bytes of snapshots created, installed or sent.',
      ['node', 'kind'],
      registry,
    );

    // ------------------------------------------------------------ polled at scrape time
    this.registerStatusGauges(p, registers);
    this.registerTransportMetrics(p, registers);
    this.registerStorageMetrics(p, registers);

    if (opts.processMetrics ?? true) registerProcessMetrics(registry, p);
  }

  /**
   * Observe `node`; optionally also read its transport's and store's counters at scrape
   * time. Returns a function that stops observing (counters keep their values).
   */
  attach(node: ObservedNode, opts: AttachOptions = {}): () => void {
    const id = node.id;
    if (this.nodes.has(id)) {
      throw new MetricsError(
        MetricsErrorCode.AlreadyAttached,
        `node ${id} is already observed by these metrics`,
      );
    }
    const b: Bound = {
      node,
      transport: opts.transport,
      storage: opts.storage,
      lastLeader: null,
      unsubscribe: () => {},
      electionsPre: this.elections.cell({ node: id, kind: 'prevote' }),
      electionsVote: this.elections.cell({ node: id, kind: 'vote' }),
      electionsTransfer: this.elections.cell({ node: id, kind: 'transfer' }),
      electionWon: this.electionDuration.cell({ node: id, outcome: 'won' }),
      electionLost: this.electionDuration.cell({ node: id, outcome: 'lost' }),
      leaderChanges: this.leaderChanges.cell({ node: id }),
      proposals: this.proposals.cell({ node: id }),
      persistSync: this.appendDuration.cell({ node: id, sync: 'true' }),
      persistNoSync: this.appendDuration.cell({ node: id, sync: 'false' }),
      persistBatch: this.appendBatch.cell({ node: id }),
      persistedEntries: this.persistedEntries.cell({ node: id }),
      persistedBytes: this.persistedBytes.cell({ node: id }),
      apply: this.applyDuration.cell({ node: id }),
      appliedEntries: this.appliedEntries.cell({ node: id }),
    };
    // Every cell above exists from now on, at zero, so rate() and absent() behave from the first scrape.
    b.unsubscribe = node.events.onAny((e) => this.onEvent(b, e));
    this.nodes.set(id, b);
    return () => this.detach(id);
  }

  /** Stop observing the node `id`. */
  detach(id: string): void {
    const b = this.nodes.get(id);
    if (!b) return;
    b.unsubscribe();
    this.nodes.delete(id);
  }

  /** Record a snapshot operation of node `nodeId` (for storage and snapshot code). */
  observeSnapshot(nodeId: string, e: SnapshotEvent): void {
    this.snapshots.cell({ node: nodeId, kind: e.kind, result: e.ok ? 'ok' : 'failed' }).inc();
    this.snapshotDuration.cell({ node: nodeId, kind: e.kind }).observe(e.ms / 1000);
    this.snapshotBytes.cell({ node: nodeId, kind: e.kind }).inc(e.bytes);
  }

  /** The exposition, as Prometheus scrapes it. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private onEvent(b: Bound, e: RaftNodeEvent): void {
    switch (e.type) {
      case 'snapshotTaken':
        this.observeSnapshot(b.node.id, { kind: 'create', ok: true, ms: e.ms, bytes: e.bytes });
        break;
      case 'snapshotSent':
        this.observeSnapshot(b.node.id, { kind: 'send', ok: e.ok, ms: e.ms, bytes: 0 });
        break;
      case 'snapshotInstalled':
        this.observeSnapshot(b.node.id, { kind: 'install', ok: true, ms: e.ms, bytes: 0 });
        break;
      case 'persisted':
        (e.synced ? b.persistSync : b.persistNoSync).observe(e.ms / 1000);
        if (e.entries > 0) {
          b.persistBatch.observe(e.entries);
          b.persistedEntries.inc(e.entries);
          b.persistedBytes.inc(e.bytes);
        }
        break;
      case 'appliedBatch':
        b.apply.observe(e.ms / 1000);
        b.appliedEntries.inc(e.entries);
        break;
      case 'proposal':
        b.proposals.inc();
        if (!e.ok) this.proposalsFailed.cell({ node: b.node.id, code: e.code ?? 'UNKNOWN' }).inc();
        break;
      case 'electionStarted':
        (e.preVote ? b.electionsPre : e.transfer ? b.electionsTransfer : b.electionsVote).inc();
        break;
      case 'electionDuration':
        (e.won ? b.electionWon : b.electionLost).observe(e.ms / 1000);
        break;
      case 'leaderChanged':
        if (e.leaderId !== null && e.leaderId !== b.lastLeader) b.leaderChanges.inc();
        if (e.leaderId !== null) b.lastLeader = e.leaderId;
        break;
      case 'steppedDown':
        this.stepDowns.cell({ node: b.node.id, reason: e.reason }).inc();
        break;
      case 'anomaly':
        this.anomalies.cell({ node: b.node.id }).inc();
        break;
      default:
        break;
    }
  }

  /** Every node's status, read once per scrape (all collect callbacks run in one turn). */
  private statuses(): Map<string, NodeStatus | null> {
    if (this.statusCache) return this.statusCache;
    const m = new Map<string, NodeStatus | null>();
    for (const [id, b] of this.nodes) {
      try {
        m.set(id, b.node.status());
      } catch {
        m.set(id, null); // not started yet
      }
    }
    this.statusCache = m;
    queueMicrotask(() => {
      this.statusCache = null;
    });
    return m;
  }

  private registerStatusGauges(p: string, registers: Registry[]): void {
    const self = this;
    const perNode = (name: string, help: string, value: (s: NodeStatus) => number) =>
      new Gauge({
        name: `${p}${name}`,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const [node, s] of self.statuses()) if (s) this.set({ node }, value(s));
        },
      });
    new Gauge({
      name: `${p}raft_state`,
      help: 'The role of the node: 1 for the current state, 0 for the others.',
      labelNames: ['node', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [node, s] of self.statuses()) {
          if (!s) continue;
          for (const r of ROLES) this.set({ node, state: r }, s.role === r && s.running ? 1 : 0);
        }
      },
    });
    perNode('raft_is_leader', '1 if this node is the leader, else 0.', (s) =>
      s.role === 'leader' && s.running ? 1 : 0,
    );
    perNode('raft_has_leader', '1 if this node knows a leader (itself included), else 0.', (s) =>
      s.leaderId !== null && s.running ? 1 : 0,
    );
    perNode('raft_up', '1 while the node runs, 0 once it stopped (or failed).', (s) => (s.running ? 1 : 0));
    perNode('raft_term', 'Current term.', (s) => s.term);
    perNode('raft_commit_index', 'Highest log index known to be committed.', (s) => s.commit);
    perNode('raft_applied_index', 'Highest log index applied to the state machine.', (s) => s.applied);
    perNode('raft_last_log_index', 'Index of the last entry in the log.', (s) => s.lastIndex);
    perNode('raft_voters', 'Voting members in the current configuration.', (s) => s.voters.length);

    const perPeer = (
      name: string,
      help: string,
      value: (s: NodeStatus, match: number, active: boolean) => number,
    ) =>
      new Gauge({
        name: `${p}${name}`,
        help,
        labelNames: ['node', 'peer'],
        registers,
        collect() {
          this.reset();
          for (const [node, s] of self.statuses()) {
            if (!s?.progress || !s.running) continue;
            for (const [peer, pr] of Object.entries(s.progress)) {
              if (peer === node) continue;
              this.set({ node, peer }, value(s, pr.match, pr.recentActive));
            }
          }
        },
      });
    perPeer(
      'raft_peer_lag_entries',
      "Entries the peer's log is behind the leader's (exported by the leader only).",
      (s, match) => Math.max(0, s.lastIndex - match),
    );
    perPeer(
      'raft_peer_match_index',
      'Highest index known to be replicated on the peer (leader only).',
      (_s, m) => m,
    );
    perPeer(
      'raft_peer_reachable',
      '1 if the peer answered the leader within the last election timeout (leader only).',
      (_s, _m, active) => (active ? 1 : 0),
    );
  }

  private registerTransportMetrics(p: string, registers: Registry[]): void {
    const self = this;
    const perPeer = (name: string, help: string, pick: (x: PeerTransportStats) => number) =>
      new Counter({
        name: `${p}${name}`,
        help,
        labelNames: ['node', 'peer'],
        registers,
        collect() {
          this.reset();
          for (const [node, b] of self.nodes) {
            if (!b.transport) continue;
            for (const st of b.transport.transportStats().peers) this.inc({ node, peer: st.peer }, pick(st));
          }
        },
      });
    perPeer('transport_messages_sent_total', 'Raft messages sent to the peer.', (x) => x.messagesSent);
    perPeer('transport_bytes_sent_total', 'Bytes sent to the peer.', (x) => x.bytesSent);
    perPeer(
      'transport_messages_received_total',
      'Raft messages received from the peer.',
      (x) => x.messagesReceived,
    );
    perPeer('transport_bytes_received_total', 'Bytes received from the peer.', (x) => x.bytesReceived);
    perPeer(
      'transport_messages_dropped_total',
      'Messages to the peer discarded (queue full, not connected, closed).',
      (x) => x.messagesDropped,
    );
    new Counter({
      name: `${p}transport_frames_rejected_total`,
      help: 'Incoming frames refused: malformed, oversized, unauthenticated or from another cluster.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const [node, b] of self.nodes)
          if (b.transport) this.inc({ node }, b.transport.transportStats().framesRejected);
      },
    });
    new Gauge({
      name: `${p}transport_peer_connected`,
      help: '1 while a connection to the peer is established.',
      labelNames: ['node', 'peer'],
      registers,
      collect() {
        this.reset();
        for (const [node, b] of self.nodes) {
          if (!b.transport) continue;
          for (const st of b.transport.transportStats().peers)
            this.set({ node, peer: st.peer }, st.connected ? 1 : 0);
        }
      },
    });
  }

  private registerStorageMetrics(p: string, registers: Registry[]): void {
    const self = this;
    const counter = (name: string, help: string, pick: (s: StorageStats) => number) =>
      new Counter({
        name: `${p}${name}`,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const [node, b] of self.nodes)
            if (b.storage) this.inc({ node }, pick(b.storage.storageStats()));
        },
      });
    counter('storage_writes_total', 'Write transactions committed by the log store.', (s) => s.writes);
    counter('storage_syncs_total', 'Write transactions synced to disk.', (s) => s.syncs);
    counter('storage_bytes_written_total', 'Bytes written by the log store.', (s) => s.bytesWritten);
    new Gauge({
      name: `${p}storage_size_bytes`,
      help: "The log store's size on disk.",
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const [node, b] of self.nodes) {
          const size = b.storage?.storageStats().sizeBytes;
          if (size !== undefined) this.set({ node }, size);
        }
      },
    });
  }
}

/**
 * prom-client's default process metrics, less three gauges whose names end in `_total`
 * (`nodejs_active_{handles,requests,resources}_total`), which `promtool check metrics`
 * rejects: only counters may end in `_total`. The same counts stay available by type
 * (`nodejs_active_handles{type}`, `nodejs_active_requests{type}`, `nodejs_active_resources{type}`).
 */
function registerProcessMetrics(registry: Registry, p: string): void {
  collectDefaultMetrics({ register: registry, prefix: p });
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(`${p}${name}`);
  }
}
