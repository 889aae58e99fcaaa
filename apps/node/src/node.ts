/**
 * `QuorateNode`: one member of a quorate cluster — Raft (`RaftNode`), the replicated
 * key-value and lease state (`QuorateMachine`), lease expiry, and the HTTP API — over the
 * storage and transport it is given.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { groupOfKey } from '@quorate/client';
import { MultiRaftHost, type MultiRaftHostOptions } from '@quorate/multiraft';
import {
  type GroupTransport,
  type LogStorage,
  type NodeId,
  RaftNode,
  type RaftNodeEvent,
  type RaftNodeOptions,
  type SnapshotStore,
  type Transport,
} from '@quorate/raft';
import type { Logger } from 'pino';
import { Balancer } from './balancer.js';
import { DiskGuard } from './disk-guard.js';
import {
  type ApiContext,
  type ApiOptions,
  createApi,
  type Member,
  type MetricsEndpoint,
  type Shards,
} from './server/api.js';
import { dashboardHtml } from './server/dashboard.js';
import { PeerMonitor } from './server/peer-monitor.js';
import { ProtocolServer, type ProtocolServerOptions } from './server/protocol-server.js';
import { StatusHistory } from './server/status-history.js';
import { LeaseKeeper } from './state/lease-keeper.js';
import { type Applied, type MachineOptions, QuorateMachine } from './state/machine.js';
import { WATCH_HISTORY_DEFAULTS } from './state/watch-hub.js';

export interface QuorateNodeOptions {
  id: NodeId;
  /** The cluster's id, written into backups. Default `quorate`. */
  clusterId?: string;
  /** The founding voters (used only when the storage is empty). Empty for a joining node. */
  members: readonly Member[];
  /** Addresses of members known from configuration (default: `members`). */
  knownMembers?: readonly Member[];
  /** Called when a member joins (its addresses came with the membership change). */
  onMemberAdded?: (m: Member) => void;
  /** Lease expiry checks on the leader. */
  leases?: { checkIntervalMs?: number };
  /** The Raft log (one group; unused with `groups`). */
  storage?: LogStorage;
  /** Messages between members (one group; unused with `groups`). */
  transport?: Transport;
  /**
   * Shard the key space over `count` Raft groups hosted together (docs/sharding.md): one
   * connection per peer for all groups, one storage environment. Group 0 also holds the
   * leases, sessions, partition sets and membership.
   */
  groups?: {
    count: number;
    transport: GroupTransport;
    /** Each group's log and snapshot store. */
    storage(group: number): { log: LogStorage; snapshots: SnapshotStore };
    /** Host options other than timing (quiescence, liveness). */
    host?: Omit<MultiRaftHostOptions, 'id' | 'transport'>;
    /** How often a member checks whether it leads more than its share of groups. Default 2000 ms. */
    balanceIntervalMs?: number;
  };
  http: {
    host: string;
    port: number;
    /** Serve HTTPS; with `requireClientCert`, only to clients with a certificate signed by `ca`. */
    tls?: { cert: Buffer; key: Buffer; ca?: Buffer; requireClientCert?: boolean };
  };
  /** The client protocol (docs/client-protocol.md) on a port of its own; unset: not served. */
  protocol?: Omit<ProtocolServerOptions, 'tls'> & { tls?: ProtocolServerOptions['tls'] };
  api?: Partial<ApiOptions>;
  raft?: Pick<
    RaftNodeOptions,
    | 'tickMs'
    | 'heartbeatIntervalMs'
    | 'electionTimeoutMs'
    | 'requestTimeoutMs'
    | 'raft'
    | 'maxClockDriftRatio'
  >;
  machine?: MachineOptions;
  logger?: Logger;
  /** Prometheus exposition for GET /metrics, given the running RaftNode. */
  metrics?: (raft: RaftNode<Applied>) => MetricsEndpoint;
  /** Refuse client writes while the data directory's filesystem is low on space. */
  diskGuard?: { path: string; reserveBytes: number; intervalMs?: number };
  /** Snapshots of the KV and lease state, and log compaction behind them (`store` unused with `groups`). */
  snapshots?: {
    store?: SnapshotStore;
    everyEntries?: number;
    everyBytes?: number;
    keepEntries?: number;
    phaseEntries?: number;
  };
}

/** One Raft group of a sharded node: its node and its state. */
export interface Shard {
  readonly group: number;
  readonly raft: RaftNode<Applied>;
  readonly machine: QuorateMachine;
}

/** Why a node cannot be built from its options, with a stable code. */
export class NodeOptionsError extends Error {
  readonly code = 'INVALID_NODE_OPTIONS';
  constructor(message: string) {
    super(message);
    this.name = 'NodeOptionsError';
  }
}

/**
 * Each of `groups` groups keeps 1/groups of the watch history the options give the node,
 * but at least 64 changes and 64 KiB (so that a watcher can resume across a short break
 * in any group): a node keeps at most the configured bound or 64 KiB per group, whichever
 * is more (docs/sharding.md).
 */
function shareWatchBudget(m: MachineOptions | undefined, groups: number): MachineOptions {
  const events = m?.watch?.maxEvents ?? WATCH_HISTORY_DEFAULTS.maxEvents;
  const bytes = m?.watch?.maxBytes ?? WATCH_HISTORY_DEFAULTS.maxBytes;
  return {
    ...m,
    watch: {
      maxEvents: Math.max(64, Math.ceil(events / groups)),
      maxBytes: Math.max(64 << 10, Math.ceil(bytes / groups)),
    },
  };
}

/** The most groups a node hosts (a larger count is refused by the configuration). */
export const MAX_GROUPS = 4096;

export class QuorateNode {
  readonly id: NodeId;
  readonly machine: QuorateMachine;
  readonly raft: RaftNode<Applied>;
  /** Every group, group 0 first (one entry when the key space is not sharded). */
  readonly shards: readonly Shard[];
  /** The host of the groups, when sharded. */
  readonly host: MultiRaftHost | null;
  private readonly balancer: Balancer | null;
  /** Everything we know of members' addresses: configuration plus membership changes. */
  private readonly addressBook = new Map<NodeId, Member>();
  private readonly server: Server;
  private readonly protocolServer: ProtocolServer | null;
  private readonly leases: LeaseKeeper;
  private readonly peers: PeerMonitor;
  private readonly guard: DiskGuard | null;
  private readonly history: StatusHistory;
  private readonly log: Logger | undefined;
  private stopped: Promise<void> | null = null;

  constructor(private readonly opts: QuorateNodeOptions) {
    this.id = opts.id;
    this.log = opts.logger;
    // Sharded: the watch history's budget is the node's, shared by its groups.
    const machineOptions = opts.groups ? shareWatchBudget(opts.machine, opts.groups.count) : opts.machine;
    this.machine = new QuorateMachine(machineOptions);
    for (const m of opts.knownMembers ?? opts.members) this.addressBook.set(m.id, m);
    for (const m of opts.members) this.addressBook.set(m.id, m);
    const byId = this.addressBook;
    const g = opts.groups;
    const memberIds = opts.members.length > 0 ? { members: opts.members.map((m) => m.id) } : {};
    const addressOf = (id: NodeId) => byId.get(id)?.clientAddress ?? null;
    const snapshotPolicy = (store: SnapshotStore | undefined) => {
      if (!opts.snapshots || !store) return {};
      const { store: _, ...policy } = opts.snapshots;
      return { snapshots: { ...policy, store } };
    };
    if (g) {
      if (!Number.isInteger(g.count) || g.count < 1 || g.count > MAX_GROUPS)
        throw new NodeOptionsError(
          `groups.count must be an integer from 1 to ${MAX_GROUPS} (got ${g.count})`,
        );
      const rt = opts.raft ?? {};
      this.host = new MultiRaftHost({
        ...g.host,
        id: opts.id,
        transport: g.transport,
        ...(rt.tickMs !== undefined ? { tickMs: rt.tickMs } : {}),
        ...(rt.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: rt.heartbeatIntervalMs } : {}),
        ...(rt.electionTimeoutMs !== undefined ? { electionTimeoutMs: rt.electionTimeoutMs } : {}),
        ...(rt.requestTimeoutMs !== undefined ? { requestTimeoutMs: rt.requestTimeoutMs } : {}),
        ...(rt.raft ? { raft: rt.raft } : {}),
        addressOf,
      });
      const shards: Shard[] = [];
      for (let i = 0; i < g.count; i++) {
        const machine = i === 0 ? this.machine : new QuorateMachine(machineOptions);
        const st = g.storage(i);
        const raft = this.host.createGroup<Applied>({
          group: i,
          storage: st.log,
          stateMachine: machine,
          ...memberIds,
          ...snapshotPolicy(st.snapshots),
        });
        shards.push({ group: i, raft, machine });
      }
      this.shards = shards;
      this.raft = shards[0]!.raft;
    } else {
      if (!opts.storage || !opts.transport)
        throw new NodeOptionsError('a node needs `storage` and `transport` (or `groups`, to shard)');
      this.host = null;
      this.raft = new RaftNode<Applied>({
        id: opts.id,
        storage: opts.storage,
        transport: opts.transport,
        stateMachine: this.machine,
        ...memberIds,
        addressOf,
        ...opts.raft,
        ...snapshotPolicy(opts.snapshots?.store),
      });
      this.shards = [{ group: 0, raft: this.raft, machine: this.machine }];
    }
    this.leases = new LeaseKeeper(this.raft, this.machine);
    this.history = new StatusHistory(this.raft as RaftNode<unknown>);
    const token = opts.api?.token ?? null;
    const tls = opts.http.tls;
    this.peers = new PeerMonitor(
      () => this.members().filter((m) => m.id !== opts.id),
      token,
      1000,
      tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : undefined,
    );
    const dg = opts.diskGuard;
    this.guard =
      dg && dg.reserveBytes > 0
        ? new DiskGuard(dg.path, dg.reserveBytes, dg.intervalMs, (full, free) =>
            full
              ? this.log?.error(
                  { freeBytes: free, reserveBytes: dg.reserveBytes, path: dg.path },
                  'the data directory is below its free-space reserve: client writes are refused (STORAGE_FULL) until space is freed',
                )
              : this.log?.warn(
                  { freeBytes: free, path: dg.path },
                  'free space is back above the reserve: writes resume',
                ),
          )
        : null;
    const apiContext = {
      disk: this.guard,
      raft: this.raft,
      machine: this.machine,
      members: () => this.members(),
      leases: this.leases,
      peers: this.peers,
      options: {
        maxValueBytes: opts.api?.maxValueBytes ?? 1 << 20,
        defaultTimeoutMs: opts.api?.defaultTimeoutMs ?? 5000,
        maxTimeoutMs: opts.api?.maxTimeoutMs ?? 60_000,
        token,
        ...(opts.api?.leaseTtlMs ? { leaseTtlMs: opts.api.leaseTtlMs } : {}),
      },
      metrics: opts.metrics?.(this.raft),
      dashboardHtml: dashboardHtml(opts.id),
      history: this.history,
      clusterId: opts.clusterId ?? 'quorate',
    };
    let ctx: ApiContext = apiContext;
    if (g) {
      const contexts: ApiContext[] = [];
      const shards: Shards = {
        count: g.count,
        ofKey: (key) => groupOfKey(key, g.count),
        ctx: (i) => contexts[i]!,
        all: () => contexts,
        host: this.host!,
      };
      for (const sh of this.shards)
        contexts.push({ ...apiContext, raft: sh.raft, machine: sh.machine, group: sh.group, shards });
      ctx = contexts[0]!;
      this.balancer = new Balancer(this.host!, this.shards, g.balanceIntervalMs ?? 2000, this.log);
    } else {
      this.balancer = null;
    }
    const api = createApi(ctx);
    this.protocolServer = opts.protocol ? new ProtocolServer(ctx, opts.protocol) : null;
    this.server = tls
      ? createHttpsServer(
          {
            keepAliveTimeout: 65_000,
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca ? { ca: tls.ca } : {}),
            requestCert: tls.requireClientCert ?? false,
            rejectUnauthorized: tls.requireClientCert ?? false,
          },
          api,
        )
      : createServer({ keepAliveTimeout: 65_000 }, api);
    this.raft.events.on('membershipApplied', (e) => {
      const meta = e.change.meta;
      if (e.change.kind === 'remove') {
        this.machine.recordMember(e.change.node, null);
      } else if (meta?.peerAddress && meta.clientAddress) {
        const m = {
          id: e.change.node,
          peerAddress: meta.peerAddress,
          clientAddress: meta.clientAddress,
          ...(meta.protocolAddress ? { protocolAddress: meta.protocolAddress } : {}),
        };
        this.machine.recordMember(m.id, m);
        this.learnMember(m);
      }
    });
    // A snapshot (restored at start or installed from the leader) brings the addresses of
    // members added before it, whose membership changes are no longer in the log.
    this.raft.events.on('snapshotInstalled', () => {
      for (const [id, a] of this.machine.memberAddresses) this.learnMember({ id, ...a });
    });
    this.logEvents();
  }

  /**
   * Record a member's addresses (from a membership change, or told by the cluster when
   * joining); `onMemberAdded` hears of it when it is new or has moved.
   */
  learnMember(m: Member): void {
    if (m.id === this.id) return;
    const known = this.addressBook.get(m.id);
    this.addressBook.set(m.id, m);
    if (!known || known.peerAddress !== m.peerAddress) this.opts.onMemberAdded?.(m);
  }

  /** The current members (voters, then learners) with their addresses, as far as known. */
  members(): Member[] {
    const s = this.raft.status();
    return [...s.voters, ...s.learners].map(
      (id) => this.addressBook.get(id) ?? { id, peerAddress: 'unknown', clientAddress: 'unknown' },
    );
  }

  private logEvents(): void {
    const log = this.log;
    if (!log) return;
    this.machine.changes.subscribe((b) => {
      for (const c of b.changes)
        if (c.type === 'partition' && c.unclean)
          log.warn(
            { set: c.set, partition: c.partition, leader: c.leader, epoch: c.epoch, index: b.index },
            'unclean partition hand-over: acknowledged data of the old in-sync replicas may be lost',
          );
    });
    for (const sh of this.shards) {
      const raft = sh.raft;
      // Sharded: every line names its group; leader changes of groups other than 0 at
      // debug (a thousand groups electing at start would flood the log).
      const g = this.host ? { group: sh.group } : {};
      const leaderLevel = sh.group === 0 ? 'info' : 'debug';
      raft.events.on('leaderChanged', (e) => {
        if (e.leaderId !== null)
          log[leaderLevel](
            { ...g, term: e.term, leaderId: e.leaderId },
            e.leaderId === this.id ? 'became leader' : 'leader changed',
          );
      });
      raft.events.on('electionDuration', (e) => {
        // At debug: the leadership change itself is logged once, above.
        if (e.won) log.debug({ ...g, term: e.term, ms: Math.round(e.ms) }, 'won election');
      });
      raft.events.on('snapshotTaken', (e) =>
        log.info(
          { ...g, index: e.index, bytes: e.bytes, ms: Math.round(e.ms), pauseMs: Math.round(e.pauseMs) },
          'snapshot taken',
        ),
      );
      raft.events.on('snapshotSent', (e) => {
        if (e.ok) log.info({ ...g, to: e.to, index: e.index, ms: Math.round(e.ms) }, 'snapshot sent');
        else log.warn({ ...g, to: e.to, index: e.index }, 'snapshot transfer failed; it will be retried');
      });
      raft.events.on('snapshotInstalled', (e) =>
        log.info({ ...g, index: e.index, ms: Math.round(e.ms) }, 'snapshot installed'),
      );
      raft.events.on('steppedDown', (e) =>
        // Groups other than 0 step down whenever the balancer moves them: only CheckQuorum warns.
        log[sh.group === 0 || e.reason === 'checkQuorum' ? 'warn' : 'debug'](
          { ...g, term: e.term, reason: e.reason },
          'stepped down',
        ),
      );
      raft.events.on('stopped', (e: Extract<RaftNodeEvent, { type: 'stopped' }>) => {
        if (e.error)
          log.error({ ...g, code: e.error.code, err: e.error.message }, 'raft stopped on an error');
      });
    }
  }

  /** Start Raft, then serve HTTP. */
  async start(): Promise<void> {
    if (this.host) {
      await this.host.start();
      for (const sh of this.shards) await this.host.startGroup(sh.group);
    } else {
      await this.raft.start();
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.http.port, this.opts.http.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    try {
      await this.protocolServer?.listen();
    } catch (err) {
      this.server.close();
      throw err;
    }
    this.leases.start(this.opts.leases?.checkIntervalMs);
    await this.guard?.start();
    this.peers.start();
    this.balancer?.start();
    this.log?.info(
      {
        http: this.url,
        ...(this.protocolUrl ? { protocol: this.protocolUrl } : {}),
        term: this.raft.term,
        ...(this.host ? { groups: this.shards.length } : {}),
      },
      'node started',
    );
  }

  /** Where the client protocol listens (`quorate://host:port`), when served. */
  get protocolUrl(): string | null {
    const a = this.protocolServer?.address;
    if (!a) return null;
    return `${this.opts.protocol?.tls ? 'quorates' : 'quorate'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** The data directory's free space at the last reading, and whether it is below the reserve. */
  get disk(): { freeBytes: number | null; full: boolean } | null {
    return this.guard ? { freeBytes: this.guard.free, full: this.guard.full } : null;
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
      this.guard?.stop();
      this.peers.stop();
      this.balancer?.stop();
      this.history.close();
      const wasLeader = this.raft.isLeader && this.raft.status().voters.length > 1;
      const term = this.raft.term;
      // Every group hands over at once (each to a caught-up follower of its own).
      await Promise.all(
        this.shards.map((sh) =>
          sh.raft.stop({ transferLeadership: opts.transferLeadership ?? true, timeoutMs: 1000 }),
        ),
      );
      await this.host?.stop();
      if (wasLeader) {
        const to = this.raft.leaderId;
        if (to && to !== this.id)
          this.log?.info({ leaderId: to, term }, 'handed leadership over before stopping');
        else
          this.log?.warn({ term }, 'stopped as leader without handing over (no caught-up follower answered)');
      }
      await this.protocolServer?.close();
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
