/**
 * The storage and transport a configuration names: LMDB on disk, and TCP or WebSocket
 * between members. Kept apart from `run.ts` so that embedding `QuorateNode` with other
 * plugs needs none of these packages' choices.
 */

import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { type Config, raftRuntimeOptions } from '@quorate/config';
import type { StorageStatsSource, TransportStats, TransportStatsSource } from '@quorate/metrics';
import type { GroupTransport, LogStorage, SnapshotStore, Transport } from '@quorate/raft';
import { LmdbGroupStore, LmdbStorage } from '@quorate/storage-lmdb';
import { TcpGroupTransport, TcpTransport } from '@quorate/transport-tcp';
import { WsTransport } from '@quorate/transport-ws';
import type { Logger } from 'pino';
import type { Member } from './server/api.js';

/** Why a node refused to start, with a stable code. */
export class NodeStartError extends Error {
  constructor(
    readonly code: 'INSECURE_TRANSPORT' | 'TLS_FILES' | 'GROUP_COUNT_MISMATCH' | 'MEMBERSHIP_FIXED',
    message: string,
  ) {
    super(message);
    this.name = 'NodeStartError';
  }
}

export interface OpenedStorage {
  /** The log and snapshots of group 0 (the only group, unless sharded). */
  readonly log: LogStorage;
  readonly snapshots: SnapshotStore;
  /** Sharded: each group's log and snapshots, in one LMDB environment. */
  readonly groups?: (group: number) => { log: LogStorage; snapshots: SnapshotStore };
  readonly stats: StorageStatsSource;
  close(): Promise<void>;
}

/** Where a data directory records how many groups its cluster was created with. */
const GROUPS_FILE = 'quorate-groups.json';

/**
 * The group count is fixed when a cluster is created: a data directory written with
 * another count (or one group) is refused before anything is opened.
 */
export function checkGroupCount(dataDir: string, groups: number): void {
  const file = join(dataDir, GROUPS_FILE);
  let recorded = 1;
  if (existsSync(file)) {
    try {
      recorded = Number((JSON.parse(readFileSync(file, 'utf8')) as { groups?: unknown }).groups);
    } catch {
      recorded = Number.NaN;
    }
  } else if (existsSync(join(dataDir, 'data.mdb'))) {
    recorded = 1;
  } else {
    // A new data directory: the count is recorded, durably, before any log exists.
    if (groups > 1) writeDurably(dataDir, GROUPS_FILE, `${JSON.stringify({ groups })}\n`);
    return;
  }
  if (Number.isNaN(recorded)) {
    throw new NodeStartError(
      'GROUP_COUNT_MISMATCH',
      `${file} cannot be read: it records how many groups this data directory's cluster was created with. Restore it (as {"groups": N}, N the count every member is configured with) or start a new cluster in an empty data directory`,
    );
  }
  if (recorded !== groups) {
    throw new NodeStartError(
      'GROUP_COUNT_MISMATCH',
      `${dataDir} holds a cluster created with groups = ${recorded}, and this configuration says ${groups}: the group count is fixed when a cluster is created (resharding is not supported yet). Set groups back, or start a new cluster in an empty data directory`,
    );
  }
}

/** Write a small file so that a crash leaves either none or all of it: temp, fsync, rename, fsync the directory. */
function writeDurably(dir: string, name: string, text: string): void {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${name}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  const d = openSync(dir, 'r');
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}

export async function openStorage(config: Config, log: Logger): Promise<OpenedStorage> {
  if (!config.storage.fsync) {
    log.warn('storage.fsync is off: a crash or power loss can lose acknowledged writes (benchmarks only)');
  }
  checkGroupCount(config.storage.dataDir, config.groups);
  if (config.groups > 1) {
    const gs = await LmdbGroupStore.open({
      dir: config.storage.dataDir,
      clusterId: config.clusterId,
      nodeId: config.nodeId,
      unsafeNoSync: !config.storage.fsync,
    });
    const g0 = gs.group(0);
    return {
      log: g0,
      snapshots: g0.snapshots,
      groups: (g) => {
        const l = gs.group(g);
        return { log: l, snapshots: l.snapshots };
      },
      stats: {
        storageStats: () => {
          const st = gs.storageStats();
          return { writes: st.batches, syncs: st.commits, bytesWritten: 0 };
        },
      },
      close: () => gs.close(),
    };
  }
  const store = await LmdbStorage.open({
    dir: config.storage.dataDir,
    clusterId: config.clusterId,
    nodeId: config.nodeId,
    unsafeNoSync: !config.storage.fsync,
  });
  return {
    log: store,
    snapshots: store.snapshots,
    stats: { storageStats: () => store.storageStats() },
    close: () => store.close(),
  };
}

export interface OpenedTransport {
  /** One group's transport (null when sharded). */
  readonly transport: Transport | null;
  /** Sharded: every group's messages over one connection per peer. */
  readonly groupTransport?: GroupTransport;
  readonly stats: TransportStatsSource;
  /** A member learnt from a membership change: connect to it from now on. */
  addPeer(m: Member): void;
}

const LOOPBACK = /^(127\.|localhost$|\[?::1\]?$)/;

/**
 * The shared secret of the transport handshake. A cluster on loopback may run without
 * one (a fixed development secret, said at info level); anything reachable from another
 * machine must set `transport.clusterSecret`.
 */
export function clusterSecret(config: Config, log: Logger): string {
  if (config.transport.clusterSecret) return config.transport.clusterSecret;
  const hosts = [config.transport.listen, ...config.members.map((m) => m.peerAddress)].map((a) =>
    a.slice(0, a.lastIndexOf(':')),
  );
  if (hosts.every((h) => LOOPBACK.test(h))) {
    // Said, not warned: this is the normal local setup (`pnpm start`), and nothing is at risk.
    log.info(
      'transport.clusterSecret is not set: every member is on loopback, so a development secret is used (set one before any member listens beyond loopback)',
    );
    return `quorate-development-secret/${config.clusterId}`;
  }
  throw new NodeStartError(
    'INSECURE_TRANSPORT',
    'transport.clusterSecret is not set and members are reachable from other machines: set it (QUORATE_TRANSPORT_CLUSTER_SECRET, at least 16 characters, the same on every member)',
  );
}

function peerAddress(kind: 'tcp' | 'ws', m: Member): { address: string; clientAddress: string } {
  return {
    address: kind === 'ws' ? `ws://${m.peerAddress}/raft` : m.peerAddress,
    clientAddress: m.clientAddress,
  };
}

export async function openTransport(config: Config, log: Logger): Promise<OpenedTransport> {
  const kind = config.transport.kind;
  const peers: Record<string, { address: string; clientAddress: string }> = {};
  for (const m of config.members) peers[m.id] = peerAddress(kind, m);
  const listenAt = config.transport.listen;
  const i = listenAt.lastIndexOf(':');
  const listen = { host: listenAt.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listenAt.slice(i + 1)) };
  const logger = { warn: (msg: string) => log.warn(msg), info: (msg: string) => log.info(msg) };
  const rt = raftRuntimeOptions(config);
  const common = {
    id: config.nodeId,
    // Members that shard over different group counts would place keys in different groups:
    // the count is part of the cluster's name on the wire, so such peers refuse each other
    // (CLUSTER_MISMATCH, logged by the transport) instead of forming groups.
    clusterId: config.groups > 1 ? `${config.clusterId}/groups=${config.groups}` : config.clusterId,
    secret: clusterSecret(config, log),
    peers,
    maxFrameBytes: Math.max(64 * 1024, config.raft.maxMsgBytes * 2 + 64 * 1024),
    // A link this node sends over and hears nothing on is opened again: well past the
    // heartbeat interval (a follower answers each heartbeat) and an election timeout.
    silenceTimeoutMs: Math.max(1000, 4 * rt.heartbeatIntervalMs, rt.electionTimeoutMs),
    logger,
  };
  if (config.groups > 1) {
    const gt = new TcpGroupTransport({ ...common, listen });
    return {
      transport: null,
      groupTransport: gt,
      stats: { transportStats: () => transportStats(gt) },
      addPeer: (m) => {
        peers[m.id] = peerAddress(kind, m);
        gt.setPeers({ ...peers });
      },
    };
  }
  const transport =
    kind === 'ws' ? new WsTransport({ ...common, listen }) : new TcpTransport({ ...common, listen });
  return {
    transport,
    stats: { transportStats: () => transportStats(transport) },
    addPeer: (m) => {
      peers[m.id] = peerAddress(kind, m);
      transport.setPeers({ ...peers });
      log.info({ peer: m.id, address: peers[m.id]?.address }, 'learnt a new member');
    },
  };
}

/** The transport's counters in the shape the metrics read. */
function transportStats(t: TcpTransport | WsTransport | TcpGroupTransport): TransportStats {
  const s = t.stats();
  return {
    framesRejected: s.framesRejected,
    peers: Object.entries(s.peers).map(([peer, p]) => ({
      peer,
      connected: p.state === 'open',
      messagesSent: p.messagesSent,
      bytesSent: p.bytesSent,
      messagesReceived: p.messagesReceived,
      bytesReceived: p.bytesReceived,
      messagesDropped: p.messagesDropped,
    })),
  };
}
