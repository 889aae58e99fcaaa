/**
 * Options shared by the network transports: defaults, a pure validator that lists every
 * problem, and the resolved form the engine runs on.
 */

import {
  defaultWireLimits,
  isNodeId,
  MAX_FRAME_LIMIT,
  secretBytes,
  TransportConfigError,
  type WireLimits,
} from '@quorate/codec';
import type { NodeId } from '@quorate/raft';

/** Where a member is reached: its Raft address, and the address its clients use. */
export interface PeerAddress {
  /** What this transport dials: `host:port` for TCP, a `ws://` or `wss://` URL for WebSocket. */
  readonly address: string;
  /** The member's client-facing address (for example its HTTP API), for leader hints. */
  readonly clientAddress?: string;
}

/** Receives the transport's warnings; one line per event, with the peer's address. */
export interface TransportLogger {
  warn(message: string): void;
  info?(message: string): void;
}

export interface NetworkTransportOptions {
  /** This member's id. */
  id: NodeId;
  /** Names the cluster; peers of another cluster are refused. */
  clusterId: string;
  /** Shared by every member; proves membership in the handshake. At least 16 bytes. */
  secret: string | Uint8Array;
  /**
   * The members and their addresses, as an address or `{ address, clientAddress }`. May
   * include this member (its `clientAddress` then answers `addressOf(id)`). Only listed ids
   * are accepted as peers.
   */
  peers: Readonly<Record<NodeId, string | PeerAddress>>;
  /** Largest frame in either direction, in bytes. Default 16 MiB; at least 64 KiB. */
  maxFrameBytes?: number;
  /** Messages queued per peer before new ones are dropped. Default 4096. */
  maxQueueMessages?: number;
  /** Bytes queued per peer (not yet handed to the socket) before new ones are dropped. Default 32 MiB. */
  maxQueueBytes?: number;
  /** Stop handing data to a peer's socket while it buffers this much. Default 4 MiB. */
  writeHighWaterBytes?: number;
  /** Give up a connection attempt (dial and handshake) after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Give up the dial alone (the TCP or WebSocket connection, before the handshake) after
   * this long, and dial again after the backoff. A dial whose SYN was lost (a partition)
   * otherwise waits for the kernel's retransmissions, 1, 3, 7 s apart, and reaches a healed
   * peer seconds late. Default 750 ms.
   */
  dialTimeoutMs?: number;
  /**
   * While this node sends to a peer over an open connection and hears nothing at all from
   * that peer for this long, the connection is presumed dead and opened again. Across a
   * partition TCP keeps retransmitting into the void with a growing timeout, so a
   * connection that was open when the partition began carries nothing for seconds after
   * it heals; a new connection gets through at once. Raft peers answer what they are sent
   * (a follower answers every heartbeat), so silence while sending means trouble. Must
   * exceed the heartbeat interval by a wide margin. 0: never. Default 1000 ms.
   */
  silenceTimeoutMs?: number;
  /** Close an inbound connection that has not authenticated within this long. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** First delay before redialling a peer; doubles per failure up to `backoffMaxMs`. Default 50 ms. */
  backoffInitialMs?: number;
  /** Longest delay between redials. Default 1000 ms. */
  backoffMaxMs?: number;
  /** Close a connection whose peer has not taken any data for this long. Default 10000 ms. */
  stallTimeoutMs?: number;
  /** How long `close()` waits for queued data to drain. Default 2000 ms. */
  closeTimeoutMs?: number;
  /** Inbound connections allowed to be mid-handshake at once; more are closed at once. Default 64. */
  maxPendingHandshakes?: number;
  /**
   * Of those, how many may come from one remote host, so that one host holding slots open
   * (a slow-loris) cannot lock every member out. Default 16.
   */
  maxPendingHandshakesPerHost?: number;
  /** Bounds on decoded messages. */
  limits?: Partial<WireLimits>;
  /** Where warnings go. Default: `console`; `null` silences them. */
  logger?: TransportLogger | null;
  /** Uniform random number in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
}

export interface ResolvedOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly secret: Uint8Array;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly maxFrameBytes: number;
  readonly maxQueueMessages: number;
  readonly maxQueueBytes: number;
  readonly writeHighWaterBytes: number;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly stallTimeoutMs: number;
  readonly dialTimeoutMs: number;
  readonly silenceTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  readonly maxPendingHandshakesPerHost: number;
  readonly limits: WireLimits;
  readonly logger: TransportLogger | null;
  readonly random: () => number;
}

export const MIN_SECRET_BYTES = 16;
export const MIN_FRAME_BYTES = 64 * 1024;
/** Frames before authentication are small: a handshake frame is well under 1 KiB. */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096;

export const defaultNetworkOptions = Object.freeze({
  maxFrameBytes: 16 * 1024 * 1024,
  maxQueueMessages: 4096,
  maxQueueBytes: 32 * 1024 * 1024,
  writeHighWaterBytes: 4 * 1024 * 1024,
  connectTimeoutMs: 5000,
  dialTimeoutMs: 750,
  silenceTimeoutMs: 1000,
  handshakeTimeoutMs: 5000,
  backoffInitialMs: 50,
  backoffMaxMs: 1000,
  stallTimeoutMs: 10_000,
  closeTimeoutMs: 2000,
  maxPendingHandshakes: 64,
  maxPendingHandshakesPerHost: 16,
});

const consoleLogger: TransportLogger = {
  warn: (m) => console.warn(m),
  info: (m) => console.info(m),
};

/** Normalise the peer table: every entry as `{ address, clientAddress? }`. */
export function normalisePeers(
  peers: Readonly<Record<NodeId, string | PeerAddress>>,
): Map<NodeId, PeerAddress> {
  const out = new Map<NodeId, PeerAddress>();
  for (const [id, p] of Object.entries(peers)) out.set(id, typeof p === 'string' ? { address: p } : p);
  return out;
}

/** Every problem with `o`, as sentences; empty when the options are usable. Pure. */
export function networkOptionIssues(o: NetworkTransportOptions): string[] {
  const issues: string[] = [];
  if (!isNodeId(o.id))
    issues.push(`id must be a non-empty string of at most 256 characters (got ${String(o.id)})`);
  if (typeof o.clusterId !== 'string' || o.clusterId.length === 0 || o.clusterId.length > 256) {
    issues.push('clusterId must be a non-empty string of at most 256 characters');
  }
  if (typeof o.secret !== 'string' && !(o.secret instanceof Uint8Array)) {
    issues.push('secret must be a string or bytes shared by every member');
  } else if (secretBytes(o.secret).byteLength < MIN_SECRET_BYTES) {
    issues.push(`secret must be at least ${MIN_SECRET_BYTES} bytes; use a long random value`);
  }
  if (o.peers === null || typeof o.peers !== 'object') {
    issues.push('peers must map each member id to its address');
  } else {
    for (const [id, p] of Object.entries(o.peers)) {
      if (!isNodeId(id)) issues.push(`peers has an invalid member id ${JSON.stringify(id)}`);
      const address = typeof p === 'string' ? p : p?.address;
      if (typeof address !== 'string' || address.length === 0) {
        if (id !== o.id) issues.push(`peers.${id} needs an address`);
      }
      if (typeof p === 'object' && p?.clientAddress !== undefined && typeof p.clientAddress !== 'string') {
        issues.push(`peers.${id}.clientAddress must be a string`);
      }
    }
  }
  const int = (name: keyof typeof defaultNetworkOptions, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      issues.push(`${name} must be an integer in [${min}, ${max}] (got ${String(v)})`);
    }
  };
  int('maxFrameBytes', MIN_FRAME_BYTES, MAX_FRAME_LIMIT);
  int('maxQueueMessages', 1);
  int('maxQueueBytes', 1);
  int('writeHighWaterBytes', 1);
  int('connectTimeoutMs', 1);
  int('dialTimeoutMs', 1);
  int('silenceTimeoutMs', 0);
  int('handshakeTimeoutMs', 1);
  int('backoffInitialMs', 1);
  int('backoffMaxMs', 1);
  int('stallTimeoutMs', 1);
  int('closeTimeoutMs', 0);
  int('maxPendingHandshakes', 1);
  int('maxPendingHandshakesPerHost', 1);
  if (
    (o.backoffMaxMs ?? defaultNetworkOptions.backoffMaxMs) <
    (o.backoffInitialMs ?? defaultNetworkOptions.backoffInitialMs)
  ) {
    issues.push('backoffMaxMs must be at least backoffInitialMs');
  }
  const limits = o.limits ?? {};
  for (const k of ['maxEntries', 'maxMembers', 'maxIdLength'] as const) {
    const v = limits[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      issues.push(`limits.${k} must be a positive integer`);
  }
  return issues;
}

/** Validate and fill in defaults; throws `TransportConfigError` listing every problem. */
export function resolveNetworkOptions(o: NetworkTransportOptions): ResolvedOptions {
  const issues = networkOptionIssues(o);
  if (issues.length > 0) throw new TransportConfigError(issues);
  const d = defaultNetworkOptions;
  return {
    id: o.id,
    clusterId: o.clusterId,
    secret: secretBytes(o.secret),
    peers: normalisePeers(o.peers),
    maxFrameBytes: o.maxFrameBytes ?? d.maxFrameBytes,
    maxQueueMessages: o.maxQueueMessages ?? d.maxQueueMessages,
    maxQueueBytes: o.maxQueueBytes ?? d.maxQueueBytes,
    writeHighWaterBytes: o.writeHighWaterBytes ?? d.writeHighWaterBytes,
    connectTimeoutMs: o.connectTimeoutMs ?? d.connectTimeoutMs,
    dialTimeoutMs: o.dialTimeoutMs ?? d.dialTimeoutMs,
    silenceTimeoutMs: o.silenceTimeoutMs ?? d.silenceTimeoutMs,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    backoffInitialMs: o.backoffInitialMs ?? d.backoffInitialMs,
    backoffMaxMs: o.backoffMaxMs ?? d.backoffMaxMs,
    stallTimeoutMs: o.stallTimeoutMs ?? d.stallTimeoutMs,
    closeTimeoutMs: o.closeTimeoutMs ?? d.closeTimeoutMs,
    maxPendingHandshakes: o.maxPendingHandshakes ?? d.maxPendingHandshakes,
    maxPendingHandshakesPerHost: o.maxPendingHandshakesPerHost ?? d.maxPendingHandshakesPerHost,
    limits: { ...defaultWireLimits, ...o.limits },
    logger: o.logger === undefined ? consoleLogger : o.logger,
    random: o.random ?? Math.random,
  };
}
