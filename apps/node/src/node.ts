/**
 * `QuorateNode`: one member of a quorate cluster — Raft (`RaftNode`), the replicated
 * key-value and lease state (`QuorateMachine`), lease expiry, and the HTTP API — over the
 * storage and transport it is given.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type LogStorage,
  type NodeId,
  RaftNode,
  type RaftNodeEvent,
  type RaftNodeOptions,
  type SnapshotStore,
  type Transport,
} from '@quorate/raft';
import type { Logger } from 'pino';
import { type ApiOptions, createApi, type Member, type MetricsEndpoint } from './server/api.js';
import { dashboardHtml } from './server/dashboard.js';
import { LeaseKeeper } from './server/lease-keeper.js';
import { PeerMonitor } from './server/peer-monitor.js';
import { type Applied, type MachineOptions, QuorateMachine } from './state/machine.js';

export interface QuorateNodeOptions {
  id: NodeId;
  members: readonly Member[];
  storage: LogStorage;
  transport: Transport;
  http: { host: string; port: number };
  api?: Partial<ApiOptions>;
  raft?: Pick<RaftNodeOptions, 'tickMs' | 'heartbeatIntervalMs' | 'electionTimeoutMs' | 'raft'>;
  machine?: MachineOptions;
  logger?: Logger;
  /** Prometheus exposition for GET /metrics, given the running RaftNode. */
  metrics?: (raft: RaftNode<Applied>) => MetricsEndpoint;
  /** Snapshots of the KV and lease state, and log compaction behind them. */
  snapshots?: { store: SnapshotStore; everyEntries?: number; keepEntries?: number };
}

export class QuorateNode {
  readonly id: NodeId;
  readonly machine: QuorateMachine;
  readonly raft: RaftNode<Applied>;
  private readonly server: Server;
  private readonly leases: LeaseKeeper;
  private readonly peers: PeerMonitor;
  private readonly log: Logger | undefined;
  private stopped: Promise<void> | null = null;

  constructor(private readonly opts: QuorateNodeOptions) {
    this.id = opts.id;
    this.log = opts.logger;
    this.machine = new QuorateMachine(opts.machine);
    const byId = new Map(opts.members.map((m) => [m.id, m]));
    this.raft = new RaftNode<Applied>({
      id: opts.id,
      storage: opts.storage,
      transport: opts.transport,
      stateMachine: this.machine,
      members: opts.members.map((m) => m.id),
      addressOf: (id) => byId.get(id)?.clientAddress ?? null,
      ...opts.raft,
      ...(opts.snapshots ? { snapshots: opts.snapshots } : {}),
    });
    this.leases = new LeaseKeeper(this.raft, this.machine);
    const token = opts.api?.token ?? null;
    this.peers = new PeerMonitor(
      opts.members.filter((m) => m.id !== opts.id),
      token,
    );
    const api = createApi({
      raft: this.raft,
      machine: this.machine,
      members: opts.members,
      leases: this.leases,
      peers: this.peers,
      options: {
        maxValueBytes: opts.api?.maxValueBytes ?? 1 << 20,
        defaultTimeoutMs: opts.api?.defaultTimeoutMs ?? 5000,
        maxTimeoutMs: opts.api?.maxTimeoutMs ?? 60_000,
        token,
      },
      metrics: opts.metrics?.(this.raft),
      dashboardHtml: dashboardHtml(opts.id),
    });
    this.server = createServer({ keepAliveTimeout: 65_000 }, api);
    this.logEvents();
  }

  private logEvents(): void {
    const log = this.log;
    if (!log) return;
    this.raft.events.on('leaderChanged', (e) => {
      if (e.leaderId !== null)
        log.info(
          { term: e.term, leaderId: e.leaderId },
          e.leaderId === this.id ? 'became leader' : 'leader changed',
        );
    });
    this.raft.events.on('electionDuration', (e) => {
      if (e.won) log.info({ term: e.term, ms: Math.round(e.ms) }, 'won election');
    });
    this.raft.events.on('steppedDown', (e) => log.warn({ term: e.term, reason: e.reason }, 'stepped down'));
    this.raft.events.on('stopped', (e: Extract<RaftNodeEvent, { type: 'stopped' }>) => {
      if (e.error) log.error({ code: e.error.code, err: e.error.message }, 'raft stopped on an error');
    });
  }

  /** Start Raft, then serve HTTP. */
  async start(): Promise<void> {
    await this.raft.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.http.port, this.opts.http.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.leases.start();
    this.peers.start();
    this.log?.info({ http: this.url, term: this.raft.term }, 'node started');
  }

  get url(): string {
    const a = this.server.address() as AddressInfo | null;
    return a ? `http://${a.address}:${a.port}` : `http://${this.opts.http.host}:${this.opts.http.port}`;
  }

  /**
   * Stop: a leader hands leadership to a caught-up follower first; requests in flight
   * finish or fail with a clear status; storage closes cleanly.
   */
  stop(opts: { transferLeadership?: boolean } = { transferLeadership: true }): Promise<void> {
    this.stopped ??= (async () => {
      this.leases.stop();
      this.peers.stop();
      await this.raft.stop({ transferLeadership: opts.transferLeadership ?? true, timeoutMs: 1000 });
      this.server.closeIdleConnections();
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          this.server.closeAllConnections();
          r();
        }, 1000);
        this.server.close(() => {
          clearTimeout(t);
          r();
        });
      });
      this.log?.info('node stopped');
    })();
    return this.stopped;
  }
}
