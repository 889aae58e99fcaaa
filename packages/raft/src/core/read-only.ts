/**
 * ReadIndex bookkeeping on the leader (thesis §6.4). A read is linearizable if it sees
 * every write committed before it began. The leader records its commit index when the
 * read arrives, then proves it is still the leader by a heartbeat round acknowledged by
 * a quorum; the read may then be served once the state machine has applied that index.
 *
 * Reads are batched: every request that arrives before a round's heartbeats go out joins
 * that round, and a quorum acknowledging round r also confirms every earlier round
 * (its requests arrived before round r's heartbeats were sent).
 */
import type { NodeId } from '../types.js';

/** Who asked: the local host (`from === null`) or a follower forwarding for its clients. */
export interface ReadRequest {
  readonly from: NodeId | null;
  readonly requestId: number;
}

export interface ReadRound {
  readonly id: number;
  /** The commit index when the round's requests arrived: what they must wait for. */
  readonly index: number;
  readonly requests: ReadRequest[];
  readonly acks: Set<NodeId>;
  /** The leader's tick count when the round's heartbeats went out (for leases). */
  readonly tick: number;
}

export class ReadOnly {
  /** Requests waiting for the next round to be opened. */
  batch: ReadRequest[] = [];
  /** Open rounds, oldest first. */
  rounds: ReadRound[] = [];
  private nextId = 1;

  /** Open a round for the batched requests; returns it, or null when nothing waits. */
  openRound(index: number, self: NodeId, tick = 0): ReadRound | null {
    if (this.batch.length === 0) return null;
    const round: ReadRound = { id: this.nextId++, index, requests: this.batch, acks: new Set([self]), tick };
    this.batch = [];
    this.rounds.push(round);
    return round;
  }

  /** A round with no requests, opened only to time a lease: its acknowledgements say when. */
  openLeaseRound(index: number, self: NodeId, tick: number): ReadRound {
    const round: ReadRound = { id: this.nextId++, index, requests: [], acks: new Set([self]), tick };
    this.rounds.push(round);
    return round;
  }

  /** The newest open round's id, for heartbeats to carry, or 0. */
  latestRoundId(): number {
    return this.rounds.length > 0 ? this.rounds[this.rounds.length - 1]!.id : 0;
  }

  /**
   * Record that `from` acknowledged round `id` (and so every earlier one). Returns the
   * rounds that now have a quorum, oldest first, and forgets them.
   */
  ack(id: number, from: NodeId, isQuorum: (acks: ReadonlySet<NodeId>) => boolean): ReadRound[] {
    let done = -1;
    for (let i = 0; i < this.rounds.length; i++) {
      const r = this.rounds[i]!;
      if (r.id > id) break;
      r.acks.add(from);
      if (isQuorum(r.acks)) done = i;
    }
    if (done < 0) return [];
    return this.rounds.splice(0, done + 1);
  }

  /** Forget everything (leadership lost); returns what was pending. */
  clear(): ReadRequest[] {
    const out: ReadRequest[] = [...this.batch];
    for (const r of this.rounds) for (const q of r.requests) out.push(q);
    this.batch = [];
    this.rounds = [];
    return out;
  }
}
