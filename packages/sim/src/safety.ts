/**
 * Raft's safety properties (paper Figure 3 and §5.4, thesis §3.6 and §6.4), checked
 * incrementally as the simulation runs, so every step is checked without rescanning
 * whole logs.
 */
import type { Entry, HardState, NodeId } from '@quorate/raft';

export type ViolationKind =
  | 'election-safety'
  | 'term-regressed'
  | 'double-vote'
  | 'log-matching'
  | 'leader-completeness'
  | 'committed-changed'
  | 'commit-regressed'
  | 'apply-order'
  | 'apply-diverged'
  | 'stale-read'
  | 'linearizability'
  | 'liveness'
  | 'anomaly'
  | 'crash';

export interface Violation {
  readonly kind: ViolationKind;
  readonly time: number;
  readonly node: NodeId | null;
  readonly detail: string;
}

const dec = new TextDecoder();

/** A compact identity for an entry's content. */
export function entryKey(e: Entry): string {
  return `${e.type}:${e.data.byteLength === 0 ? '' : dec.decode(e.data)}`;
}

interface Committed {
  readonly term: number;
  readonly key: string;
  /** The term in which the entry was first seen committed (the committing leader's). */
  readonly commitTerm: number;
}

export class SafetyChecker {
  readonly violations: Violation[] = [];
  now = 0;
  /** term -> "node#incarnation" of its leader. */
  private readonly leaders = new Map<number, string>();
  /** "index:term" -> content and the previous entry's term (when known): one entry per (index, term). */
  private readonly entries = new Map<string, { key: string; prevTerm: number | null }>();
  /** Globally committed entries, by index. */
  private readonly committed: Committed[] = [];
  /** Durable (term, vote) last written by each node. */
  private readonly durable = new Map<NodeId, { term: number; vote: NodeId | null; commit: number }>();

  private fail(kind: ViolationKind, node: NodeId | null, detail: string): void {
    if (this.violations.length < 50) this.violations.push({ kind, time: this.now, node, detail });
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  highestCommitted(): number {
    return this.committed.length;
  }

  /** Election safety (at most one leader per term, ever, across restarts) and leader completeness. */
  onLeader(node: NodeId, incarnation: number, term: number, log: readonly Entry[], logBase = 0): void {
    const who = `${node}#${incarnation}`;
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== who) {
      this.fail('election-safety', node, `two leaders in term ${term}: ${prev} and ${who}`);
    }
    this.leaders.set(term, who);
    // Leader completeness (§5.4.1): a leader of term T holds every entry committed in
    // an earlier term. (A stale leader of an old term may lack later commits.) Log
    // matching covers the prefix, so the last such entry is the one to check.
    let c = this.committed.length;
    while (c > 0 && this.committed[c - 1]!.commitTerm >= term) c--;
    if (c > logBase) {
      const mine = log[c - 1];
      const want = this.committed[c - 1]!;
      if (!mine || mine.term !== want.term || entryKey(mine) !== want.key) {
        this.fail(
          'leader-completeness',
          node,
          `leader of term ${term} lacks entry ${c} (term ${want.term}) committed in term ${want.commitTerm}; has ${mine ? `term ${mine.term}` : 'nothing'}`,
        );
      }
    }
  }

  /** A node's term never goes backwards within one incarnation. */
  onTerm(node: NodeId, before: number, after: number): void {
    if (after < before) this.fail('term-regressed', node, `term went from ${before} to ${after}`);
  }

  /** What a node writes durably: its term never regresses, it never votes twice in a term. */
  onPersistHardState(node: NodeId, hs: HardState): void {
    const d = this.durable.get(node);
    if (d) {
      if (hs.term < d.term)
        this.fail('term-regressed', node, `durable term went from ${d.term} to ${hs.term}`);
      if (hs.term === d.term && d.vote !== null && hs.vote !== d.vote) {
        this.fail('double-vote', node, `voted for ${d.vote} and then ${String(hs.vote)} in term ${hs.term}`);
      }
    }
    this.durable.set(node, { term: hs.term, vote: hs.vote, commit: hs.commit });
  }

  /**
   * Entries enter a node's log at `ents[0].index`, replacing what was there. `log` is the
   * node's log before the change; `commit` its commit index.
   */
  onAppend(
    node: NodeId,
    log: readonly Entry[],
    logBase: number,
    ents: readonly Entry[],
    commit: number,
  ): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    if (from <= commit && from <= log.length) {
      // Overwriting at or below the commit index is only legal if nothing changes.
      for (const e of ents) {
        if (e.index > commit) break;
        if (e.index <= logBase) continue; // covered by a snapshot
        const old = log[e.index - 1];
        if (!old || old.term !== e.term) {
          this.fail('committed-changed', node, `entry ${e.index} at or below commit ${commit} was replaced`);
          return;
        }
      }
    }
    // The previous entry's term, when the node still has it (not behind a snapshot).
    let prevTerm: number | null = from === 1 ? 0 : from - 1 > logBase ? (log[from - 2]?.term ?? null) : null;
    for (const e of ents) {
      const k = `${e.index}:${e.term}`;
      const content = entryKey(e);
      const seen = this.entries.get(k);
      if (seen === undefined) {
        this.entries.set(k, { key: content, prevTerm });
      } else if (
        seen.key !== content ||
        (seen.prevTerm !== null && prevTerm !== null && seen.prevTerm !== prevTerm)
      ) {
        this.fail(
          'log-matching',
          node,
          `entry ${e.term}/${e.index} differs between logs: ${seen.prevTerm}|${seen.key} vs ${prevTerm}|${content}`,
        );
      } else if (seen.prevTerm === null && prevTerm !== null) {
        seen.prevTerm = prevTerm;
      }
      prevTerm = e.term;
    }
  }

  /** A node in `term` moved its commit index from `before` to `after`, over its `log`. */
  onCommit(node: NodeId, term: number, before: number, after: number, log: readonly Entry[]): void {
    if (after < before) {
      this.fail('commit-regressed', node, `commit index went from ${before} to ${after}`);
      return;
    }
    for (let i = before + 1; i <= after; i++) {
      const e = log[i - 1];
      if (!e && i <= this.committed.length) continue; // behind a snapshot, already recorded
      if (!e) {
        this.fail('committed-changed', node, `commit index ${after} passes the log end ${log.length}`);
        return;
      }
      const c = this.committed[i - 1];
      const key = entryKey(e);
      if (c === undefined) {
        if (i !== this.committed.length + 1) {
          this.fail('committed-changed', node, `committed ${i} with a gap after ${this.committed.length}`);
          return;
        }
        this.committed.push({ term: e.term, key, commitTerm: term });
      } else if (c.term !== e.term || c.key !== key) {
        this.fail(
          'committed-changed',
          node,
          `committed entry ${i} was term ${c.term} (${c.key}); ${node} committed term ${e.term} (${key})`,
        );
        return;
      }
    }
  }

  /** Every node applies the committed sequence, in order, without gaps. */
  onApply(node: NodeId, lastApplied: number, e: Entry): void {
    if (e.index !== lastApplied + 1) {
      this.fail('apply-order', node, `applied ${e.index} after ${lastApplied}`);
      return;
    }
    const c = this.committed[e.index - 1];
    if (!c) {
      this.fail('apply-diverged', node, `applied ${e.index}, which no node has committed`);
    } else if (c.term !== e.term || c.key !== entryKey(e)) {
      this.fail('apply-diverged', node, `applied ${e.term}/${e.index} but ${c.term}/${e.index} is committed`);
    }
  }

  /**
   * The runtime hands the state machine only entries with data: the ones it skipped on
   * the way to the next must be the leader's no-ops or membership changes.
   */
  onApplySkipped(node: NodeId, index: number): void {
    const c = this.committed[index - 1];
    if (!c) {
      this.fail('apply-diverged', node, `applied past ${index}, which no node has committed`);
    } else if (c.key !== '0:' && !c.key.startsWith('1:')) {
      this.fail('apply-order', node, `skipped committed entry ${c.term}/${index} (${c.key})`);
    }
  }

  /**
   * A read served at `index` must include every write acknowledged before it began,
   * the highest of which was `mustSee`.
   */
  onRead(node: NodeId, requestId: number, index: number, mustSee: number): void {
    if (index < mustSee) {
      this.fail(
        'stale-read',
        node,
        `read ${requestId} was served at index ${index}, missing a write acknowledged at ${mustSee} before it began`,
      );
    }
  }

  note(kind: ViolationKind, node: NodeId | null, detail: string): void {
    this.fail(kind, node, detail);
  }
}
