/**
 * When a group may stop ticking: pure decisions over a member's status, tested alone.
 *
 * The rules follow CockroachDB's (`replica_raft_quiesce.go`), reduced to what this core
 * exposes:
 * - A **leader** quiesces a group once, for a while, nothing is under way on it (no
 *   proposal, read or transfer waiting, nothing being persisted, applied or snapshotted),
 *   everything in its log is committed and applied, and every member it believes live is
 *   in `replicate` state with `match` at its last index. Members it believes down are
 *   left out (they cannot catch up now; when they come back the group wakes), but a
 *   quorum of voters must be live and caught up, or the leader keeps ticking so that
 *   CheckQuorum can depose it.
 * - A **follower** quiesces on the leader's `quiesce` message only if that leader is the
 *   one it follows, in the same term, and its log ends at the commit index the message
 *   carries (it holds everything committed, nothing more), and nothing it started waits.
 *   Otherwise it refuses: it keeps ticking and asks the leader to wake.
 *
 * Quiescence changes when ticks happen, never what a group commits: a tick only paces
 * elections and heartbeats, and Raft is safe under any timing.
 */
import type { NodeId, NodeStatus } from '@quorate/raft';

/** Why the leader must keep ticking, or `null` when it may quiesce the group. */
export function leaderQuiesceBlocker(
  st: NodeStatus,
  idle: boolean,
  live: (peer: NodeId) => boolean,
): string | null {
  if (st.role !== 'leader' || !st.progress) return 'not the leader';
  if (!idle) return 'work in flight';
  if (st.leadTransferee !== null) return 'a leadership transfer is under way';
  if (st.commit !== st.lastIndex) return 'entries are not committed yet';
  if (st.applied !== st.commit) return 'committed entries are not applied yet';
  if (st.persistedIndex !== st.lastIndex) return 'entries are not durable yet';
  let caughtUp = 0;
  for (const id of st.voters) {
    if (id === st.id) {
      caughtUp++;
      continue;
    }
    const why = memberBlocker(st, id, live);
    if (why === 'down') continue;
    if (why) return why;
    caughtUp++;
  }
  for (const id of st.learners) {
    const why = memberBlocker(st, id, live);
    if (why && why !== 'down') return why;
  }
  if (caughtUp < Math.floor(st.voters.length / 2) + 1) return 'no live quorum of caught-up voters';
  return null;
}

function memberBlocker(st: NodeStatus, id: NodeId, live: (peer: NodeId) => boolean): string | null {
  if (!live(id)) return 'down';
  const pr = st.progress![id];
  if (!pr) return `no progress for ${id}`;
  if (pr.state !== 'replicate') return `${id} is in ${pr.state} state`;
  if (pr.match !== st.lastIndex) return `${id} holds up to ${pr.match}, the log ends at ${st.lastIndex}`;
  return null;
}

/** What a follower knows when its leader's `quiesce` arrives (after stepping its heartbeat). */
export interface FollowerView {
  readonly role: string;
  readonly leaderId: NodeId | null;
  readonly term: number;
  readonly commit: number;
  readonly lastIndex: number;
  /** A proposal, read or transfer of this member waits for its outcome. */
  readonly waiting: boolean;
}

/** Why a follower refuses to quiesce on `from`'s message, or `null` when it may. */
export function followerQuiesceBlocker(
  f: FollowerView,
  from: NodeId,
  msg: { readonly term: number; readonly commit: number },
): string | null {
  if (f.role !== 'follower') return `this member is a ${f.role}`;
  if (f.term !== msg.term) return `the message is of term ${msg.term}, this member is in ${f.term}`;
  if (f.leaderId !== from) return `this member follows ${f.leaderId ?? 'nobody'}, not ${from}`;
  if (f.commit !== msg.commit || f.lastIndex !== msg.commit) {
    return `this member's log (commit ${f.commit}, last ${f.lastIndex}) is not at the leader's commit ${msg.commit}`;
  }
  if (f.waiting) return 'a request of this member is waiting';
  return null;
}
