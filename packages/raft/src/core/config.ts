/**
 * The core's configuration, in ticks and bytes. `defaultCoreConfig` and
 * `validateCoreConfig` are pure; the runtime converts milliseconds to ticks.
 */
import { InvalidConfigError } from '../errors.js';
import type { NodeId } from '../types.js';
import type { RaftEvent } from './events.js';
import type { RandomInt } from './random.js';

export interface CoreOptions {
  /** Ticks without hearing from a leader before a follower may campaign; also the
   * CheckQuorum window and the leader-stickiness lease. Default 15. */
  electionTicks: number;
  /** Ticks between a leader's heartbeats. Must be well below `electionTicks`. Default 5. */
  heartbeatTicks: number;
  /** Ask for pre-votes before raising the term (thesis §9.6). Default true. */
  preVote: boolean;
  /** Leaders step down without a quorum heard from within `electionTicks`; followers
   * that heard from a leader within that time refuse to vote (stickiness). Default true. */
  checkQuorum: boolean;
  /** Largest append message, in bytes of entries (one entry is always allowed). Default 1 MiB. */
  maxSizePerMsg: number;
  /** Most entries in one append message. Default 4096. */
  maxEntriesPerMsg: number;
  /** Append messages in flight to one follower. Default 256. */
  maxInflightMsgs: number;
  /** Bytes in flight to one follower. Default 32 MiB. */
  maxInflightBytes: number;
  /** Leader refuses proposals while this many bytes are proposed but not committed. Default 64 MiB. */
  maxUncommittedBytes: number;
  /** Largest single proposal. Default 1 MiB. */
  maxEntryBytes: number;
  /** Committed bytes handed out to apply per ready, and outstanding unapplied. Default 16 MiB. */
  maxApplyBytes: number;
  /** Upper bound of the election backoff: after k failed campaigns in a row the random
   * part of the election timeout spans (1 + min(k, this)) election timeouts. Default 3. */
  maxElectionBackoff: number;
  /**
   * Leader leases for reads (thesis §6.4.1): every heartbeat carries a round that followers
   * acknowledge, and `leaseRead()` tells the host since which tick a quorum has promised
   * not to elect anyone else; the host turns that into time and decides. Followers refuse
   * votes for an election timeout after they start, as after hearing from a leader, so a
   * restarted node cannot help elect a rival inside a lease. Needs `checkQuorum`; every
   * member must agree on it. Default false.
   */
  leaseReads: boolean;
}

export interface CoreConfig extends Partial<CoreOptions> {
  id: NodeId;
  /** Integer in [0, n): the only randomness the core uses. */
  random: RandomInt;
  /** The applied index the state machine starts from (0 for an in-memory one). */
  applied?: number;
  /** Synchronous observer of core events (metrics, logs). Must not throw or call back in. */
  onEvent?: (event: RaftEvent) => void;
}

export const defaultCoreOptions: Readonly<CoreOptions> = Object.freeze({
  electionTicks: 15,
  heartbeatTicks: 5,
  preVote: true,
  checkQuorum: true,
  maxSizePerMsg: 1 << 20,
  maxEntriesPerMsg: 4096,
  maxInflightMsgs: 256,
  maxInflightBytes: 32 << 20,
  maxUncommittedBytes: 64 << 20,
  maxEntryBytes: 1 << 20,
  maxApplyBytes: 16 << 20,
  maxElectionBackoff: 3,
  leaseReads: false,
});

/** Every problem with `c`, as readable sentences; empty when valid. */
export function coreConfigIssues(c: CoreConfig & CoreOptions): string[] {
  const issues: string[] = [];
  const posInt = (name: keyof CoreOptions, min = 1) => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      issues.push(`${name} must be an integer >= ${min} (got ${String(v)})`);
    }
  };
  if (typeof c.id !== 'string' || c.id.length === 0) issues.push('id must be a non-empty string');
  if (typeof c.random !== 'function') issues.push('random must be a function returning an integer in [0, n)');
  posInt('electionTicks', 2);
  posInt('heartbeatTicks');
  posInt('maxSizePerMsg');
  posInt('maxEntriesPerMsg');
  posInt('maxInflightMsgs');
  posInt('maxInflightBytes', 0);
  posInt('maxUncommittedBytes');
  posInt('maxEntryBytes');
  posInt('maxApplyBytes');
  posInt('maxElectionBackoff', 0);
  if (c.leaseReads && !c.checkQuorum)
    issues.push(
      'leaseReads needs checkQuorum: a lease rests on followers refusing votes while a leader is live',
    );
  if (issues.length === 0 && c.heartbeatTicks * 2 > c.electionTicks) {
    issues.push(
      `electionTicks (${c.electionTicks}) must be at least twice heartbeatTicks (${c.heartbeatTicks}), ` +
        'or followers time out between heartbeats; 3x or more is recommended',
    );
  }
  return issues;
}

export function resolveCoreConfig(c: CoreConfig): CoreConfig & CoreOptions {
  const full = { ...defaultCoreOptions, ...stripUndefined(c) } as CoreConfig & CoreOptions;
  const issues = coreConfigIssues(full);
  if (issues.length > 0) throw new InvalidConfigError(issues);
  return full;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
