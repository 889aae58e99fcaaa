/**
 * Membership changes, one member at a time.
 *
 * Why one at a time rather than joint consensus (thesis §4.1–4.3): adding or removing a
 * single voter changes the voter set so that any majority of the old set and any
 * majority of the new one share a member, so two disjoint majorities can never exist —
 * without the extra joint state. New members join as learners (they vote in nothing
 * and count toward nothing), catch up, and are then promoted: one voter change. Two
 * restrictions make this safe, both enforced by the leader:
 *
 * - At most one change is in flight: a new one is refused until the previous one has
 *   been applied (`pendingConfIndex`).
 * - A new leader proposes no change before it has committed an entry of its own term
 *   (the fix to the single-server change bug found after the thesis; see Ongaro,
 *   raft-dev, 2015): otherwise a change from a deposed leader and one from the new
 *   leader could each have a majority that the other does not see.
 *
 * A change takes effect on every node when the entry is applied.
 */
import { RaftError, RaftErrorCode } from '../errors.js';
import { type ConfChange, type ConfState, type Entry, EntryType, type HardState } from '../types.js';

const reject = (why: string) => new RaftError(RaftErrorCode.ConfChangeRejected, why);

/** The configuration after `cc`; throws `CONF_CHANGE_REJECTED` for an invalid change. */
export function applyChange(conf: ConfState, cc: ConfChange): ConfState {
  if (conf.votersOutgoing.length > 0) throw reject('joint configurations are not supported');
  const voters = conf.voters.filter((v) => v !== cc.node);
  const learners = conf.learners.filter((l) => l !== cc.node);
  switch (cc.kind) {
    case 'addVoter':
      voters.push(cc.node);
      break;
    case 'addLearner':
      learners.push(cc.node);
      break;
    case 'remove':
      if (!conf.voters.includes(cc.node) && !conf.learners.includes(cc.node)) {
        throw reject(`${cc.node} is not a member`);
      }
      break;
  }
  if (voters.length === 0) throw reject(`removing ${cc.node} would leave no voter`);
  return { voters, learners, votersOutgoing: [] };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return enc.encode(JSON.stringify({ kind: cc.kind, node: cc.node, ...(cc.meta ? { meta: cc.meta } : {}) }));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(data));
  } catch {
    throw reject('undecodable membership change');
  }
  const o = v as { kind?: unknown; node?: unknown; meta?: unknown };
  if (
    (o.kind !== 'addVoter' && o.kind !== 'addLearner' && o.kind !== 'remove') ||
    typeof o.node !== 'string' ||
    o.node.length === 0 ||
    (o.meta !== undefined &&
      (typeof o.meta !== 'object' ||
        o.meta === null ||
        Object.values(o.meta).some((x) => typeof x !== 'string')))
  ) {
    throw reject('malformed membership change');
  }
  return { kind: o.kind, node: o.node, ...(o.meta ? { meta: o.meta as Record<string, string> } : {}) };
}

/**
 * The first entries of a brand-new cluster's log, identical on every founding member:
 * one change per member (voters, then learners, sorted), all of term 1 and committed.
 * Keeping the founding membership in the log (not only in a snapshot) lets a member
 * that joins later learn it by replication like everything else.
 */
export function bootstrapEntries(conf: ConfState): { entries: Entry[]; hardState: HardState } {
  const changes: ConfChange[] = [
    ...[...conf.voters].sort().map((node) => ({ kind: 'addVoter' as const, node })),
    ...[...conf.learners].sort().map((node) => ({ kind: 'addLearner' as const, node })),
  ];
  const entries = changes.map((cc, i) => ({
    index: i + 1,
    term: 1,
    type: EntryType.ConfChange,
    data: encodeConfChange(cc),
  }));
  return { entries, hardState: { term: 1, vote: null, commit: entries.length } };
}

export function sameConf(a: ConfState, b: ConfState): boolean {
  const eq = (x: readonly string[], y: readonly string[]) =>
    x.length === y.length && x.every((v) => y.includes(v));
  return eq(a.voters, b.voters) && eq(a.learners, b.learners) && eq(a.votersOutgoing, b.votersOutgoing);
}
