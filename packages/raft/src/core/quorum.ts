/**
 * Quorum math, kept apart from everything else so it can be tested against a naive
 * version. A configuration is either one majority (a voter set) or, during a joint
 * consensus change (thesis §4.3), two of them that must both agree.
 */
import type { NodeId } from '../types.js';

export type VoteResult = 'pending' | 'won' | 'lost';

const scratch: number[] = [];

/**
 * The largest index that a majority of `voters` has reached, by `matchOf` (absent = 0).
 * An empty voter set imposes no constraint: it returns +Infinity, so that the joint
 * combination `min(incoming, outgoing)` reduces to the non-empty side.
 */
export function majorityIndex(
  voters: readonly NodeId[],
  matchOf: (id: NodeId) => number | undefined,
): number {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  if (n === 1) return matchOf(voters[0]!) ?? 0;
  scratch.length = n;
  for (let i = 0; i < n; i++) scratch[i] = matchOf(voters[i]!) ?? 0;
  // Insertion sort, descending: n is small (3, 5, 7) and this is on the commit path.
  for (let i = 1; i < n; i++) {
    const v = scratch[i]!;
    let j = i - 1;
    while (j >= 0 && scratch[j]! < v) {
      scratch[j + 1] = scratch[j]!;
      j--;
    }
    scratch[j + 1] = v;
  }
  // The (n/2+1)-th largest value is held by at least a majority.
  return scratch[n >> 1]!;
}

/** Whether `voters` elected, rejected or have not yet decided, given the votes so far. */
export function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const n = voters.length;
  if (n === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = (n >> 1) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** Whether a majority of `voters` satisfies `pred`. An empty set counts as satisfied. */
export function majorityActive(voters: readonly NodeId[], pred: (id: NodeId) => boolean): boolean {
  if (voters.length === 0) return true;
  let count = 0;
  for (const id of voters) if (pred(id)) count++;
  return count >= (voters.length >> 1) + 1;
}

/** A (possibly joint) configuration: `outgoing` is empty outside a joint change. */
export interface QuorumConfig {
  readonly incoming: readonly NodeId[];
  readonly outgoing: readonly NodeId[];
}

export function jointIndex(c: QuorumConfig, matchOf: (id: NodeId) => number | undefined): number {
  const a = majorityIndex(c.incoming, matchOf);
  const b = majorityIndex(c.outgoing, matchOf);
  const r = Math.min(a, b);
  // Both sides empty: no voters at all, nothing can commit.
  return r === Number.POSITIVE_INFINITY ? 0 : r;
}

export function jointVote(c: QuorumConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(c.incoming, votes);
  const b = majorityVote(c.outgoing, votes);
  if (a === b) return a;
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}

export function jointActive(c: QuorumConfig, pred: (id: NodeId) => boolean): boolean {
  return majorityActive(c.incoming, pred) && majorityActive(c.outgoing, pred);
}

/** Every voter of a (possibly joint) configuration, each once. */
export function allVoters(c: QuorumConfig): NodeId[] {
  if (c.outgoing.length === 0) return [...c.incoming];
  const s = new Set<NodeId>(c.incoming);
  for (const id of c.outgoing) s.add(id);
  return [...s];
}
