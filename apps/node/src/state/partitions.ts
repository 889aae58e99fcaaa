/**
 * Sessions and partition leadership, in the replicated state (docs/partitions.md). Pure
 * and deterministic like the rest of the machine: every decision — who leads a partition
 * after a lapse, a resignation or a join — is a function of the state and the entry, so
 * every replica makes the same one in the same entry.
 */

export interface SessionRecord {
  /** The log index of the entry that opened it (never reused). */
  readonly id: number;
  readonly owner: string;
  readonly ttlMs: number;
  /** Log index of the opening or the last keep-alive. */
  readonly renewedIndex: number;
}

export interface PartitionRecord {
  /** Replicas in preference order: the first is the preferred leader. */
  readonly replicas: readonly string[];
  /** The in-sync replicas, a subset of `replicas`; holds the leader when there is one. */
  eligible: string[];
  leader: string | null;
  /** +1 with every change of leader or eligible set: compare-and-set is on this. */
  epoch: number;
  /** +1 with every change of leader (to a member or to none): data planes fence on this. */
  leaderEpoch: number;
}

export interface PartitionSet {
  readonly name: string;
  readonly members: readonly string[];
  /** member -> the live session it joined with. */
  readonly sessionOf: Map<string, number>;
  readonly partitions: PartitionRecord[];
}

/** A partition a session's members lead, as a keep-alive answers it. */
export interface LedPartition {
  readonly set: string;
  readonly partition: number;
  readonly member: string;
  readonly epoch: number;
  readonly leaderEpoch: number;
  readonly eligible: readonly string[];
}

export type PartitionError =
  | 'SESSION_NOT_FOUND'
  | 'PARTITION_SET_NOT_FOUND'
  | 'PARTITION_NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'UNKNOWN_MEMBER'
  | 'MEMBER_TAKEN'
  | 'STALE_EPOCH'
  | 'NOT_PARTITION_LEADER'
  | 'NOT_ELIGIBLE'
  | 'MEMBER_NOT_LIVE'
  | 'INVALID_ELIGIBLE';

export interface PartitionFailure {
  readonly ok: false;
  readonly code: PartitionError;
  readonly message: string;
  /** The partition as it is, where the error concerns one. */
  readonly current?: { leader: string | null; epoch: number; leaderEpoch: number };
}

export interface PartitionChange {
  readonly type: 'partition';
  readonly set: string;
  readonly partition: number;
  readonly leader: string | null;
  readonly epoch: number;
  readonly leaderEpoch: number;
  readonly eligible: readonly string[];
  /** Set on an admin's unclean hand-over. */
  readonly unclean?: boolean;
}

/** Partition sets and sessions: the controller's state. */
export class Partitions {
  readonly sessions = new Map<number, SessionRecord>();
  /** session -> the (set, member) pairs it keeps live. */
  private readonly attached = new Map<number, [string, string][]>();
  readonly sets = new Map<string, PartitionSet>();
  /**
   * For each name of a deleted set, the highest epoch or leader epoch it reached: a set
   * created again under that name starts above it, so that leader epochs never repeat
   * for a name (a data plane fencing on them must not take a new leader for an old one).
   */
  private readonly floors = new Map<string, number>();
  /** Leader changes applied on this replica (for a metric). */
  leaderChanges = 0;

  constructor(
    private readonly emit: (c: PartitionChange) => void,
    /** A session opened, renewed (its record) or ended (null). */
    private readonly onSession: (id: number, s: SessionRecord | null) => void,
  ) {}

  // ---- sessions ----

  open(owner: string, ttlMs: number, index: number): SessionRecord {
    const s: SessionRecord = { id: index, owner, ttlMs, renewedIndex: index };
    this.sessions.set(index, s);
    this.attached.set(index, []);
    this.onSession(index, s);
    return s;
  }

  keepAlive(id: number, index: number): SessionRecord | PartitionFailure {
    const cur = this.sessions.get(id);
    if (!cur) return sessionGone(id);
    const s = { ...cur, renewedIndex: index };
    this.sessions.set(id, s);
    this.onSession(id, s);
    return s;
  }

  /** End a session (closed, or lapsed as of `renewedIndex`): what it kept live is released. */
  end(id: number, renewedIndex?: number): boolean {
    const s = this.sessions.get(id);
    if (!s || (renewedIndex !== undefined && s.renewedIndex !== renewedIndex)) return false;
    for (const [set, member] of this.attached.get(id) ?? []) {
      const ps = this.sets.get(set);
      if (ps && ps.sessionOf.get(member) === id) this.detach(ps, member);
    }
    this.sessions.delete(id);
    this.attached.delete(id);
    this.onSession(id, null);
    return true;
  }

  /** The partitions the members kept live by this session lead. */
  led(id: number): LedPartition[] {
    const out: LedPartition[] = [];
    for (const [set, member] of this.attached.get(id) ?? []) {
      const ps = this.sets.get(set);
      if (!ps) continue;
      ps.partitions.forEach((p, i) => {
        if (p.leader === member)
          out.push({
            set,
            partition: i,
            member,
            epoch: p.epoch,
            leaderEpoch: p.leaderEpoch,
            eligible: [...p.eligible],
          });
      });
    }
    return out;
  }

  membersOf(id: number): { set: string; member: string }[] {
    return (this.attached.get(id) ?? []).map(([set, member]) => ({ set, member }));
  }

  // ---- partition sets ----

  create(
    name: string,
    members: readonly string[],
    replicas: readonly (readonly string[])[],
  ): PartitionFailure | null {
    if (this.sets.has(name))
      return fail(
        'ALREADY_EXISTS',
        `a partition set named ${JSON.stringify(name)} exists; delete it first or pick another name`,
      );
    const known = new Set(members);
    for (const [i, r] of replicas.entries())
      for (const m of r)
        if (!known.has(m))
          return fail(
            'UNKNOWN_MEMBER',
            `partition ${i} names replica ${JSON.stringify(m)}, which is not one of the set's members`,
          );
    const floor = this.floors.get(name) ?? 0;
    this.floors.delete(name);
    this.sets.set(name, {
      name,
      members: [...members],
      sessionOf: new Map(),
      partitions: replicas.map((r) => ({
        replicas: [...r],
        eligible: [...r],
        leader: null,
        epoch: floor,
        leaderEpoch: floor,
      })),
    });
    return null;
  }

  delete(name: string): boolean {
    const ps = this.sets.get(name);
    if (!ps) return false;
    // Every led partition ends here, announced (leader null, at a higher leader epoch), so
    // that leaders and watchers learn of it; the name keeps its highest epoch.
    let floor = 0;
    ps.partitions.forEach((p, i) => {
      if (p.leader !== null) {
        p.leader = null;
        p.leaderEpoch++;
        p.epoch++;
        this.leaderChanges++;
        this.changed(ps, i);
      }
      floor = Math.max(floor, p.epoch, p.leaderEpoch);
    });
    this.floors.set(name, floor);
    for (const [member, id] of ps.sessionOf) {
      const a = this.attached.get(id);
      if (a)
        this.attached.set(
          id,
          a.filter(([s, m]) => !(s === name && m === member)),
        );
    }
    this.sets.delete(name);
    return true;
  }

  join(name: string, member: string, session: number): PartitionFailure | null {
    const ps = this.sets.get(name);
    if (!ps) return setGone(name);
    if (!ps.members.includes(member)) return unknownMember(name, member);
    if (!this.sessions.has(session)) return sessionGone(session);
    const held = ps.sessionOf.get(member);
    if (held === session) return null;
    if (held !== undefined)
      return fail(
        'MEMBER_TAKEN',
        `member ${JSON.stringify(member)} of ${JSON.stringify(name)} is live under session ${held}; it becomes free when that session lapses or is closed`,
      );
    ps.sessionOf.set(member, session);
    this.attached.get(session)!.push([name, member]);
    const led = this.ledCounts(ps);
    ps.partitions.forEach((p, i) => {
      if (!p.eligible.includes(member)) return;
      // Leaderless partitions get a leader; a partition whose preferred replica (its
      // first) just joined moves to it, so that leaders spread as members come up.
      if (p.leader === null) this.handOn(ps, i, led, null);
      else if (p.replicas[0] === member && p.leader !== member) this.setLeader(ps, i, member, led);
    });
    return null;
  }

  leave(name: string, member: string, session: number): PartitionFailure | null {
    const ps = this.sets.get(name);
    if (!ps) return setGone(name);
    if (ps.sessionOf.get(member) !== session)
      return fail('MEMBER_NOT_LIVE', `member ${JSON.stringify(member)} is not live under session ${session}`);
    this.detach(ps, member);
    const a = this.attached.get(session);
    if (a)
      this.attached.set(
        session,
        a.filter(([s, m]) => !(s === name && m === member)),
      );
    return null;
  }

  resign(name: string, i: number, member: string, epoch: number): PartitionRecord | PartitionFailure {
    const got = this.partition(name, i);
    if ('ok' in got) return got;
    const [ps, p] = got;
    if (p.epoch !== epoch) return stale(p);
    if (p.leader !== member) return notLeader(p, member);
    this.handOn(ps, i, this.ledCounts(ps), member);
    return p;
  }

  setEligible(
    name: string,
    i: number,
    by: string | null,
    epoch: number,
    eligible: readonly string[],
  ): PartitionRecord | PartitionFailure {
    const got = this.partition(name, i);
    if ('ok' in got) return got;
    const [ps, p] = got;
    if (p.epoch !== epoch) return stale(p);
    if (by !== null && p.leader !== by) return notLeader(p, by);
    const unique = new Set(eligible);
    if (unique.size !== eligible.length || eligible.length === 0)
      return fail('INVALID_ELIGIBLE', 'the eligible set must be non-empty and without repeats');
    for (const m of eligible)
      if (!p.replicas.includes(m))
        return fail('INVALID_ELIGIBLE', `${JSON.stringify(m)} is not a replica of partition ${i}`);
    if (p.leader !== null && !unique.has(p.leader))
      return fail(
        'INVALID_ELIGIBLE',
        `the eligible set must hold the leader ${JSON.stringify(p.leader)}; to step down, resign`,
      );
    // In replica order, so equal sets compare equal. The same set again changes nothing.
    const next = p.replicas.filter((m) => unique.has(m));
    if (next.join('\0') === p.eligible.join('\0')) return p;
    p.eligible = next;
    p.epoch++;
    if (p.leader === null) this.handOn(ps, i, this.ledCounts(ps), null, false);
    this.changed(ps, i);
    return p;
  }

  move(name: string, i: number, to: string, epoch: number | null): PartitionRecord | PartitionFailure {
    const got = this.partition(name, i);
    if ('ok' in got) return got;
    const [ps, p] = got;
    if (epoch !== null && p.epoch !== epoch) return stale(p);
    if (!p.replicas.includes(to)) return unknownMember(name, to, i);
    if (!p.eligible.includes(to))
      return fail('NOT_ELIGIBLE', `${JSON.stringify(to)} is not in partition ${i}'s eligible set`, p);
    if (!ps.sessionOf.has(to)) return notLive(to, p);
    if (p.leader !== to) this.setLeader(ps, i, to, this.ledCounts(ps));
    return p;
  }

  unclean(name: string, i: number, to: string): PartitionRecord | PartitionFailure {
    const got = this.partition(name, i);
    if ('ok' in got) return got;
    const [ps, p] = got;
    if (!p.replicas.includes(to)) return unknownMember(name, to, i);
    if (!ps.sessionOf.has(to)) return notLive(to, p);
    // Already so: nothing changes (no epoch, no announcement).
    if (p.leader === to && p.eligible.length === 1 && p.eligible[0] === to) return p;
    if (p.leader !== to) {
      this.leaderChanges++;
      p.leaderEpoch++;
    }
    p.leader = to;
    p.eligible = [to];
    p.epoch++;
    this.changed(ps, i, true);
    return p;
  }

  // ---- internals ----

  private partition(name: string, i: number): [PartitionSet, PartitionRecord] | PartitionFailure {
    const ps = this.sets.get(name);
    if (!ps) return setGone(name);
    const p = ps.partitions[i];
    if (!p)
      return fail(
        'PARTITION_NOT_FOUND',
        `set ${JSON.stringify(name)} has partitions 0 to ${ps.partitions.length - 1}`,
      );
    return [ps, p];
  }

  /** A member's session ended or it left: hand on what it led, and drop it from eligible sets. */
  private detach(ps: PartitionSet, member: string): void {
    ps.sessionOf.delete(member);
    const led = this.ledCounts(ps);
    ps.partitions.forEach((p, i) => {
      let touched = false;
      // Out of the in-sync set unless it is the last one there (then it holds everything
      // acknowledged, and may lead again when it returns).
      if (p.eligible.length > 1 && p.eligible.includes(member)) {
        p.eligible = p.eligible.filter((m) => m !== member);
        touched = true;
      }
      if (p.leader === member) {
        this.handOn(ps, i, led, member, false);
        touched = true;
      }
      if (touched) {
        p.epoch++;
        this.changed(ps, i);
      }
    });
  }

  /**
   * Give partition `i` to the eligible live replica leading the fewest partitions of the
   * set (ties: the earlier replica), never to `except`; none: leaderless. With `bump`, the
   * epoch goes up and the change is announced when the leader changed.
   */
  private handOn(
    ps: PartitionSet,
    i: number,
    led: Map<string, number>,
    except: string | null,
    bump = true,
  ): void {
    const p = ps.partitions[i]!;
    let best: string | null = null;
    for (const m of p.replicas) {
      if (m === except || !p.eligible.includes(m) || !ps.sessionOf.has(m)) continue;
      if (best === null || (led.get(m) ?? 0) < (led.get(best) ?? 0)) best = m;
    }
    if (best === p.leader) return;
    if (p.leader !== null) led.set(p.leader, (led.get(p.leader) ?? 1) - 1);
    if (best !== null) led.set(best, (led.get(best) ?? 0) + 1);
    p.leader = best;
    p.leaderEpoch++;
    this.leaderChanges++;
    if (bump) {
      p.epoch++;
      this.changed(ps, i);
    }
  }

  private setLeader(ps: PartitionSet, i: number, to: string, led: Map<string, number>): void {
    const p = ps.partitions[i]!;
    if (p.leader !== null) led.set(p.leader, (led.get(p.leader) ?? 1) - 1);
    led.set(to, (led.get(to) ?? 0) + 1);
    p.leader = to;
    p.epoch++;
    p.leaderEpoch++;
    this.leaderChanges++;
    this.changed(ps, i);
  }

  private ledCounts(ps: PartitionSet): Map<string, number> {
    const led = new Map<string, number>();
    for (const p of ps.partitions) if (p.leader !== null) led.set(p.leader, (led.get(p.leader) ?? 0) + 1);
    return led;
  }

  private changed(ps: PartitionSet, i: number, unclean = false): void {
    const p = ps.partitions[i]!;
    this.emit({
      type: 'partition',
      set: ps.name,
      partition: i,
      leader: p.leader,
      epoch: p.epoch,
      leaderEpoch: p.leaderEpoch,
      eligible: [...p.eligible],
      ...(unclean ? { unclean: true } : {}),
    });
  }

  // ---- snapshots and digests ----

  /** The state as plain data, for snapshots. */
  toJSON(): PartitionsSnapshot {
    return {
      floors: [...this.floors],
      sessions: [...this.sessions.values()].map((s) => [s.id, s.owner, s.ttlMs, s.renewedIndex]),
      sets: [...this.sets.values()].map((ps) => ({
        name: ps.name,
        members: [...ps.members],
        sessionOf: [...ps.sessionOf],
        partitions: ps.partitions.map((p) => [
          [...p.replicas],
          [...p.eligible],
          p.leader,
          p.epoch,
          p.leaderEpoch,
        ]),
      })),
    };
  }

  restore(snap: PartitionsSnapshot | undefined): void {
    for (const id of this.sessions.keys()) this.onSession(id, null);
    this.sessions.clear();
    this.attached.clear();
    this.sets.clear();
    this.floors.clear();
    for (const [name, floor] of snap?.floors ?? []) this.floors.set(name, floor);
    for (const [id, owner, ttlMs, renewedIndex] of snap?.sessions ?? []) {
      const s = { id, owner, ttlMs, renewedIndex };
      this.sessions.set(id, s);
      this.attached.set(id, []);
      this.onSession(id, s);
    }
    for (const x of snap?.sets ?? []) {
      const ps: PartitionSet = {
        name: x.name,
        members: x.members,
        sessionOf: new Map(x.sessionOf),
        partitions: x.partitions.map(([replicas, eligible, leader, epoch, leaderEpoch]) => ({
          replicas,
          eligible,
          leader,
          epoch,
          leaderEpoch,
        })),
      };
      this.sets.set(ps.name, ps);
      for (const [member, id] of ps.sessionOf) this.attached.get(id)?.push([ps.name, member]);
    }
  }

  /** Text for the state digest, in a fixed order. */
  digest(): string {
    const out: string[] = [];
    for (const id of [...this.sessions.keys()].sort((a, b) => a - b)) {
      const s = this.sessions.get(id)!;
      out.push(`S${id}:${s.owner.length}:${s.owner}:${s.ttlMs}:${s.renewedIndex};`);
    }
    for (const name of [...this.floors.keys()].sort())
      out.push(`F${name.length}:${name}:${this.floors.get(name)};`);
    for (const name of [...this.sets.keys()].sort()) {
      const ps = this.sets.get(name)!;
      out.push(`P${name.length}:${name}:${ps.members.join(',')}:`);
      for (const m of [...ps.sessionOf.keys()].sort()) out.push(`m${m}=${ps.sessionOf.get(m)};`);
      for (const p of ps.partitions)
        out.push(
          `p${p.replicas.join(',')}|${p.eligible.join(',')}|${p.leader ?? ''}|${p.epoch}|${p.leaderEpoch};`,
        );
    }
    return out.join('');
  }
}

export interface PartitionsSnapshot {
  /** Highest epochs of deleted sets' names (absent in older snapshots). */
  floors?: [string, number][];
  sessions: [number, string, number, number][];
  sets: {
    name: string;
    members: string[];
    sessionOf: [string, number][];
    partitions: [string[], string[], string | null, number, number][];
  }[];
}

function fail(code: PartitionError, message: string, p?: PartitionRecord): PartitionFailure {
  return {
    ok: false,
    code,
    message,
    ...(p ? { current: { leader: p.leader, epoch: p.epoch, leaderEpoch: p.leaderEpoch } } : {}),
  };
}

const sessionGone = (id: number) =>
  fail('SESSION_NOT_FOUND', `session ${id} does not exist: it lapsed or was closed; open a new one`);
const setGone = (name: string) =>
  fail('PARTITION_SET_NOT_FOUND', `no partition set named ${JSON.stringify(name)}`);
const unknownMember = (name: string, m: string, i?: number) =>
  fail(
    'UNKNOWN_MEMBER',
    i === undefined
      ? `${JSON.stringify(m)} is not a member of partition set ${JSON.stringify(name)}`
      : `${JSON.stringify(m)} is not a replica of partition ${i} of ${JSON.stringify(name)}`,
  );
const stale = (p: PartitionRecord) =>
  fail('STALE_EPOCH', `the partition is at epoch ${p.epoch}; read it again and retry with that epoch`, p);
const notLeader = (p: PartitionRecord, m: string) =>
  fail(
    'NOT_PARTITION_LEADER',
    `${JSON.stringify(m)} does not lead this partition (its leader is ${JSON.stringify(p.leader)})`,
    p,
  );
const notLive = (m: string, p: PartitionRecord) =>
  fail('MEMBER_NOT_LIVE', `${JSON.stringify(m)} has no live session in this set; it must join first`, p);
