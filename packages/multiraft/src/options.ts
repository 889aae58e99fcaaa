/**
 * Host options: defaults, a pure validator that lists every problem, and the resolved form
 * the host runs on.
 */
import type { CoreOptions, GroupTransport, NodeId, RandomInt, TimerProvider } from '@quorate/raft';
import { MultiRaftConfigError } from './errors.js';

export interface MultiRaftHostOptions {
  /** This member's id, the same in every group it belongs to. */
  id: NodeId;
  /** Carries every group's messages: one connection per peer (`TcpGroupTransport`, or in memory). */
  transport: GroupTransport;
  /** Milliseconds per tick of the one shared ticker. Default 10. */
  tickMs?: number;
  /** Each group's leader heartbeat interval, while the group is awake. Default 50 ms. */
  heartbeatIntervalMs?: number;
  /** Each group's minimum election timeout (drawn from (this, 2 × this]). Default 150 ms. */
  electionTimeoutMs?: number;
  /** Deadline of proposals and reads that pass none. Default 5000 ms. */
  requestTimeoutMs?: number;
  /**
   * Core options for every group. `leaseReads` cannot be combined with quiescence (a lease
   * needs heartbeat rounds): turn `quiesce` off to use it.
   */
  raft?: Partial<Omit<CoreOptions, 'electionTicks' | 'heartbeatTicks'>>;
  /**
   * Stop ticking and heartbeating groups with nothing to do (see the README's rules).
   * Default true.
   */
  quiesce?: boolean;
  /**
   * How long a leader must find its group idle (every live member caught up, nothing in
   * flight) before it quiesces it, in ms. Default 2 × `heartbeatIntervalMs`.
   */
  quiesceAfterMs?: number;
  /**
   * Send the heartbeats and heartbeat answers that the awake groups address to one peer
   * in one turn of the event loop as one `beats` host message. Default true. Every member
   * must understand `beats` (this version or later): while upgrading a cluster from an
   * older one, turn it off until every member runs the new version.
   */
  coalesceHeartbeats?: boolean;
  /** One `alive` host message to each peer per this interval. Default `heartbeatIntervalMs`. */
  livenessIntervalMs?: number;
  /**
   * A peer heard from by no message for this long is taken as down: the quiesced groups it
   * led elect a new leader. Default: the larger of 2 × `livenessIntervalMs` and
   * `electionTimeoutMs` (150 ms at the defaults), so that such a group has a new leader
   * within two election timeouts of its leader's crash.
   */
  livenessTimeoutMs?: number;
  /** Real time: the one shared ticker, deadlines, `defer`. Default the system's. */
  timers?: TimerProvider;
  /** Each group's randomness (election timeouts). Default `Math.random`. */
  random?: (group: number) => RandomInt;
  /**
   * Identifies this process's life in its `alive` messages: peers that see it change know
   * this host restarted (and lost every leadership). Default: a random 32-bit number.
   */
  incarnation?: number;
  /** The client-facing address of a member, for not-leader answers. */
  addressOf?: (id: NodeId) => string | null;
}

export interface ResolvedHostOptions {
  readonly id: NodeId;
  readonly tickMs: number;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly quiesce: boolean;
  readonly coalesceHeartbeats: boolean;
  readonly quiesceAfterTicks: number;
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  readonly livenessIntervalTicks: number;
  readonly livenessTimeoutMs: number;
  readonly incarnation: number;
}

export const defaultHostOptions = Object.freeze({
  tickMs: 10,
  heartbeatIntervalMs: 50,
  electionTimeoutMs: 150,
  requestTimeoutMs: 5000,
  quiesce: true,
  coalesceHeartbeats: true,
});

/** Every problem with `o`, as sentences; empty when usable. Pure. */
export function hostOptionIssues(o: MultiRaftHostOptions): string[] {
  const issues: string[] = [];
  if (typeof o.id !== 'string' || o.id.length === 0) issues.push('id must be a non-empty string');
  if (!o.transport || typeof o.transport.send !== 'function' || typeof o.transport.sendHost !== 'function') {
    issues.push('transport must be a GroupTransport (send, sendHost, start, close)');
  }
  const pos = (name: keyof MultiRaftHostOptions) => {
    const v = o[name];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      issues.push(`${name} must be a positive number (got ${String(v)})`);
  };
  for (const k of [
    'tickMs',
    'heartbeatIntervalMs',
    'electionTimeoutMs',
    'requestTimeoutMs',
    'quiesceAfterMs',
    'livenessIntervalMs',
    'livenessTimeoutMs',
  ] as const)
    pos(k);
  const tick = o.tickMs ?? defaultHostOptions.tickMs;
  const hb = o.heartbeatIntervalMs ?? defaultHostOptions.heartbeatIntervalMs;
  const et = o.electionTimeoutMs ?? defaultHostOptions.electionTimeoutMs;
  if (hb < tick) issues.push(`heartbeatIntervalMs (${hb}) must be at least tickMs (${tick})`);
  if (et < 2 * hb)
    issues.push(`electionTimeoutMs (${et}) must be at least twice heartbeatIntervalMs (${hb})`);
  const interval = o.livenessIntervalMs ?? hb;
  if (o.livenessTimeoutMs !== undefined && o.livenessTimeoutMs < 2 * interval) {
    issues.push(
      `livenessTimeoutMs (${o.livenessTimeoutMs}) must be at least twice livenessIntervalMs (${interval}), or one lost message marks a live peer down`,
    );
  }
  if ((o.quiesce ?? true) && o.raft?.leaseReads) {
    issues.push(
      'quiescence cannot be combined with raft.leaseReads: a lease is renewed by heartbeat rounds, which a quiesced group does not send; set quiesce: false to use leases',
    );
  }
  return issues;
}

export function resolveHostOptions(o: MultiRaftHostOptions): ResolvedHostOptions {
  const issues = hostOptionIssues(o);
  if (issues.length > 0) throw new MultiRaftConfigError(issues);
  const d = defaultHostOptions;
  const tickMs = o.tickMs ?? d.tickMs;
  const hb = o.heartbeatIntervalMs ?? d.heartbeatIntervalMs;
  const et = o.electionTimeoutMs ?? d.electionTimeoutMs;
  const interval = o.livenessIntervalMs ?? hb;
  const ticks = (ms: number) => Math.max(1, Math.round(ms / tickMs));
  return {
    id: o.id,
    tickMs,
    heartbeatIntervalMs: hb,
    electionTimeoutMs: et,
    requestTimeoutMs: o.requestTimeoutMs ?? d.requestTimeoutMs,
    quiesce: o.quiesce ?? d.quiesce,
    coalesceHeartbeats: o.coalesceHeartbeats ?? d.coalesceHeartbeats,
    quiesceAfterTicks: ticks(o.quiesceAfterMs ?? 2 * hb),
    heartbeatTicks: ticks(hb),
    electionTicks: Math.max(2, Math.round(et / tickMs)),
    livenessIntervalTicks: ticks(interval),
    livenessTimeoutMs: o.livenessTimeoutMs ?? Math.max(2 * interval, et),
    incarnation: o.incarnation ?? Math.floor(Math.random() * 0x1_0000_0000),
  };
}
