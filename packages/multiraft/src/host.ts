/**
 * `MultiRaftHost`: many Raft groups in one process. Each group is an ordinary `RaftNode`
 * (the same core and runtime as a single group), with three things shared by the host:
 *
 * - **One transport.** Every group's messages go through one `GroupTransport`, so one
 *   connection per peer carries them all, the group id in each envelope; each node sees
 *   its own `Transport` view of it (a mux). Snapshots too, one transfer per peer at a time.
 *   The heartbeats and heartbeat answers the awake groups send one peer in one turn of the
 *   event loop go out together, as one `beats` host message (see `bufferBeat`).
 * - **One ticker.** A single timer ticks every awake group (`externalTicks`) and runs
 *   their deadline sweeps; there is no timer per group.
 * - **Quiescence with host liveness.** A group with nothing to do stops ticking on every
 *   member (see `quiesce.ts` for when). Instead of each group's heartbeats, the host sends
 *   one `alive` message per peer per interval; a follower of a quiesced group never
 *   campaigns because heartbeats stopped, but when the host sees the group's leader down
 *   (silent for `livenessTimeoutMs`) or restarted, it wakes the group there: every
 *   surviving member forgets that leader (it grants votes at once) and one of them, ranked
 *   by a hash of the group and its id, campaigns. This is CockroachDB's rule (a quiesced
 *   follower trusts node liveness, not heartbeats). A quiesced leader that no longer sees a
 *   quorum of its voters live wakes too, so that CheckQuorum can depose it.
 *
 * None of this touches what a group commits: ticks only pace elections and heartbeats, a
 * quiesced leader's last heartbeat is the one its core would have sent, and every Raft
 * message still goes through the core. Storage is per group: pass each group a
 * `LogStorage` (the views of `LmdbGroupStore` share one LMDB environment and commit the
 * writes of many groups in one transaction).
 */
import {
  type CoreConfig,
  Emitter,
  type GroupId,
  type GroupTransport,
  type HostMessage,
  type LogReader,
  type LogStorage,
  MAX_BEATS,
  MAX_GROUP_ID,
  type Message,
  type NodeId,
  RaftNode,
  type RaftNodeOptions,
  type RandomInt,
  type RequestOptions,
  type SnapshotRequest,
  type StateMachine,
  systemTimers,
  type TimerProvider,
  type Transport,
  type TransportHandler,
} from '@quorate/raft';
import type { RaftCore } from '@quorate/raft/core';
import { MultiRaftError, MultiRaftErrorCode } from './errors.js';
import { GroupTimers } from './group-timers.js';
import { type LivenessChange, PeerLiveness } from './liveness.js';
import { type MultiRaftHostOptions, type ResolvedHostOptions, resolveHostOptions } from './options.js';
import { followerQuiesceBlocker, leaderQuiesceBlocker } from './quiesce.js';

/** One group to host: its storage and state machine; the rest comes from the host. */
export interface GroupOptions<R = unknown> {
  /** The group's id, the same on every member: an integer in [0, 2^32). */
  group: GroupId;
  storage: LogStorage;
  stateMachine: StateMachine<R>;
  /** The voters of a brand-new group (used only when its storage is empty). */
  members?: readonly NodeId[];
  /** The group's snapshots and log compaction (see `RaftNodeOptions.snapshots`). */
  snapshots?: RaftNodeOptions<R>['snapshots'];
  onReady?: RaftNodeOptions<R>['onReady'];
  createCore?: (config: CoreConfig, storage: LogReader) => RaftCore;
  /** This group's randomness; default the host's `random(group)`. */
  random?: RandomInt;
}

export type WakeReason =
  /** A Raft message for the group arrived. */
  | 'message'
  /** The group's node sent a message (a proposal, a read, a membership change, ...). */
  | 'activity'
  /** The host's API was called for the group. */
  | 'request'
  /** A peer asked (it refused to quiesce, or it woke and needs this member). */
  | 'wake'
  /** A member's host went down or restarted; `leaderDown` when it led the group. */
  | 'peerDown'
  | 'leaderDown'
  /** A member's host came back: bring it up to date. */
  | 'peerUp'
  /** This member leads the group and no longer sees a quorum of its voters live. */
  | 'quorumDown';

export type MultiRaftEvent =
  | { type: 'quiesced'; group: GroupId; leader: boolean }
  | { type: 'woke'; group: GroupId; reason: WakeReason }
  | { type: 'quiesceRefused'; group: GroupId; from: NodeId; reason: string }
  | { type: 'peerDown'; peer: NodeId }
  | { type: 'peerUp'; peer: NodeId }
  | { type: 'peerRestarted'; peer: NodeId };

export interface HostStats {
  readonly groups: number;
  readonly awake: number;
  readonly quiesced: number;
  readonly leaders: number;
  /** Host ticks so far, and group ticks delivered by them (what quiescence saves shows here). */
  readonly ticks: number;
  readonly groupTicks: number;
  readonly raftMessagesSent: number;
  readonly raftMessagesReceived: number;
  /** Host messages, `beats` included. */
  readonly hostMessagesSent: number;
  readonly hostMessagesReceived: number;
  /**
   * Heartbeats and heartbeat answers sent inside `beats` host messages (counted in
   * `raftMessagesSent` too), and the `beats` messages that carried them (counted in
   * `hostMessagesSent` too). A beat alone in its turn goes out as itself, in neither.
   */
  readonly beatsCoalesced: number;
  readonly beatsMessagesSent: number;
  /** Messages for a group not hosted here (yet, or any more). */
  readonly messagesDropped: number;
}

interface HostedGroup {
  readonly id: GroupId;
  node: RaftNode<unknown>;
  readonly timers: GroupTimers;
  handler: TransportHandler | null;
  quiesced: boolean;
  /** Leader: ticks for which the group has been found ready to quiesce. */
  idleTicks: number;
  /** The other members. */
  members: Set<NodeId>;
}

type Phase = 'new' | 'started' | 'stopping' | 'stopped';

export class MultiRaftHost {
  readonly id: NodeId;
  readonly events = new Emitter<MultiRaftEvent>();
  readonly options: ResolvedHostOptions;
  private readonly opts: MultiRaftHostOptions;
  private readonly timers: TimerProvider;
  private readonly transport: GroupTransport;
  private readonly groups = new Map<GroupId, HostedGroup>();
  /** Groups built by `createGroup` and not started yet. */
  private readonly created = new Map<GroupId, HostedGroup>();
  /** Groups that tick, in the order they were added or woke. */
  private readonly awake = new Set<HostedGroup>();
  private readonly liveness: PeerLiveness;
  /** The hosted groups each peer is a member of. */
  private readonly peerGroups = new Map<NodeId, Set<HostedGroup>>();
  /** Snapshot transfers to each peer, one after another (the receiver takes one per sender). */
  private readonly snapshotChains = new Map<NodeId, Promise<void>>();
  private ticker: unknown = null;
  private phase: Phase = 'new';
  private stopping: Promise<void> | null = null;
  private tickCount = 0;
  private groupTicks = 0;
  private raftSent = 0;
  private raftReceived = 0;
  private hostSent = 0;
  private hostReceived = 0;
  private dropped = 0;
  /** Per peer: the heartbeats and answers to send it at the end of this turn, in order. */
  private readonly beats = new Map<NodeId, GroupBeat[]>();
  private beatsFlushScheduled = false;
  private beatsCoalesced = 0;
  private beatsMessages = 0;

  constructor(opts: MultiRaftHostOptions) {
    this.options = resolveHostOptions(opts);
    this.opts = opts;
    this.id = opts.id;
    this.timers = opts.timers ?? systemTimers;
    this.transport = opts.transport;
    this.liveness = new PeerLiveness(this.options.livenessTimeoutMs);
  }

  /** Start the transport and the one ticker. Groups may be added before or after. */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw this.notRunning();
    this.phase = 'started';
    await this.transport.start({
      onMessage: (group, msg) => this.onMessage(group, msg),
      onHostMessage: (from, msg) => this.onHostMessage(from, msg),
      onUnreachable: (peer) => this.onUnreachable(peer),
      onSnapshot: (group, msg, data) => this.onSnapshot(group, msg, data),
    });
    this.ticker = this.timers.setInterval(() => this.onTick(), this.options.tickMs);
  }

  /**
   * Host a group: build its `RaftNode` (ticked by the host, talking through the shared
   * transport) and start it. Resolves with the node, which is the group's whole API
   * (`propose`, `read`, `changeMembership`, `transferLeadership`, `status`, events);
   * calling it directly wakes a quiesced group as soon as the call sends a message.
   */
  async addGroup<R>(g: GroupOptions<R>): Promise<RaftNode<R>> {
    if (this.phase !== 'started') throw this.notRunning();
    const node = this.createGroup(g);
    await this.startGroup(g.group);
    return node;
  }

  /**
   * Build a group's `RaftNode` now, without starting it (`startGroup` does, once the host
   * has started): for an application that wires its own parts to the node before anything
   * runs. Until it starts, the group's messages are dropped as if it were not hosted.
   */
  createGroup<R>(g: GroupOptions<R>): RaftNode<R> {
    if (this.phase !== 'new' && this.phase !== 'started') throw this.notRunning();
    if (!Number.isInteger(g.group) || g.group < 0 || g.group > MAX_GROUP_ID) {
      throw new MultiRaftError(
        MultiRaftErrorCode.InvalidConfig,
        `group ids are integers in [0, ${MAX_GROUP_ID}] (got ${String(g.group)})`,
      );
    }
    if (this.groups.has(g.group) || this.created.has(g.group)) {
      throw new MultiRaftError(
        MultiRaftErrorCode.GroupExists,
        `group ${g.group} is already hosted by ${this.id}`,
      );
    }
    const o = this.options;
    const rec: HostedGroup = {
      id: g.group,
      node: null as unknown as RaftNode<unknown>,
      timers: new GroupTimers(this.timers, o.tickMs),
      handler: null,
      quiesced: false,
      idleTicks: 0,
      members: new Set(),
    };
    const random = g.random ?? this.opts.random?.(g.group);
    const node = new RaftNode<R>({
      id: this.id,
      storage: g.storage,
      transport: this.viewFor(rec),
      stateMachine: g.stateMachine,
      ...(g.members ? { members: g.members } : {}),
      tickMs: o.tickMs,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      electionTimeoutMs: o.electionTimeoutMs,
      requestTimeoutMs: o.requestTimeoutMs,
      ...(this.opts.raft ? { raft: this.opts.raft } : {}),
      timers: rec.timers,
      externalTicks: true,
      ...(random ? { random } : {}),
      ...(this.opts.addressOf ? { addressOf: this.opts.addressOf } : {}),
      ...(g.snapshots ? { snapshots: g.snapshots } : {}),
      ...(g.onReady ? { onReady: g.onReady } : {}),
      ...(g.createCore ? { createCore: g.createCore } : {}),
    });
    rec.node = node as RaftNode<unknown>;
    this.created.set(g.group, rec);
    return node;
  }

  /** Start a group built by `createGroup` (the host must have started). */
  async startGroup(group: GroupId): Promise<void> {
    if (this.phase !== 'started') throw this.notRunning();
    const rec = this.created.get(group);
    if (!rec) throw this.unknown(group);
    this.created.delete(group);
    const node = rec.node;
    this.groups.set(group, rec);
    this.awake.add(rec);
    node.events.on('confChanged', (e) => this.setMembers(rec, [...e.voters, ...e.learners]));
    try {
      await node.start();
    } catch (err) {
      this.forget(rec);
      throw err;
    }
    const st = node.status();
    this.setMembers(rec, [...st.voters, ...st.learners]);
  }

  /** Stop a group here (its storage is closed by its node) and forget it. */
  async removeGroup(group: GroupId): Promise<void> {
    const rec = this.groups.get(group);
    if (!rec) throw this.unknown(group);
    await rec.node.stop();
    this.forget(rec);
  }

  /** The node of a hosted group, or undefined. */
  group<R = unknown>(group: GroupId): RaftNode<R> | undefined {
    return this.groups.get(group)?.node as RaftNode<R> | undefined;
  }

  /** The ids of the hosted groups, in the order they were added. */
  groupIds(): GroupId[] {
    return [...this.groups.keys()];
  }

  isQuiesced(group: GroupId): boolean {
    const rec = this.groups.get(group);
    if (!rec) throw this.unknown(group);
    return rec.quiesced;
  }

  /** Whether the host takes `peer` for live (a peer never heard of is presumed live). */
  isPeerLive(peer: NodeId): boolean {
    return this.liveness.isLive(peer);
  }

  /** Resume ticking `group` here now (it would on its own at its next message or request). */
  wake(group: GroupId): void {
    const rec = this.groups.get(group);
    if (!rec) throw this.unknown(group);
    this.wakeGroup(rec, 'request');
  }

  /** `propose` on a group's node, waking it first. */
  propose<R = unknown>(group: GroupId, data: Uint8Array, opts?: RequestOptions): Promise<R> {
    const rec = this.groups.get(group);
    if (!rec) return Promise.reject(this.unknown(group));
    this.wakeGroup(rec, 'request');
    return (rec.node as RaftNode<R>).propose(data, opts);
  }

  /** A linearizable read barrier on a group, waking it first (see `RaftNode.read`). */
  read(group: GroupId, opts?: RequestOptions): Promise<void> {
    const rec = this.groups.get(group);
    if (!rec) return Promise.reject(this.unknown(group));
    this.wakeGroup(rec, 'request');
    return rec.node.read(opts);
  }

  stats(): HostStats {
    let leaders = 0;
    let quiesced = 0;
    for (const g of this.groups.values()) {
      if (g.node.isLeader) leaders++;
      if (g.quiesced) quiesced++;
    }
    return {
      groups: this.groups.size,
      awake: this.awake.size,
      quiesced,
      leaders,
      ticks: this.tickCount,
      groupTicks: this.groupTicks,
      raftMessagesSent: this.raftSent,
      raftMessagesReceived: this.raftReceived,
      hostMessagesSent: this.hostSent,
      hostMessagesReceived: this.hostReceived,
      beatsCoalesced: this.beatsCoalesced,
      beatsMessagesSent: this.beatsMessages,
      messagesDropped: this.dropped,
    };
  }

  /** Stop every group (each finishes its write in progress), the ticker and the transport. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.phase = 'stopping';
      if (this.ticker !== null) this.timers.clearInterval(this.ticker);
      this.ticker = null;
      await Promise.all([...this.groups.values()].map((g) => g.node.stop().catch(() => {})));
      this.groups.clear();
      this.created.clear();
      this.awake.clear();
      // The stopped groups' last heartbeats go out, as they would have unbuffered.
      this.flushAllBeats();
      await this.transport.close().catch(() => {});
      this.phase = 'stopped';
    })();
    return this.stopping;
  }

  // ---------------------------------------------------------------- the shared ticker

  private onTick(): void {
    if (this.phase !== 'started') return;
    const o = this.options;
    this.tickCount++;
    // Before this tick's work is scheduled: a node that just ticked always has a ready
    // loop pending, and is not idle until it ran.
    if (o.quiesce && this.tickCount % o.heartbeatTicks === 0) this.considerQuiescence();
    for (const g of this.awake) {
      g.node.tick();
      g.timers.tick();
      this.groupTicks++;
    }
    if (this.tickCount % o.livenessIntervalTicks === 0) {
      for (const peer of this.liveness.watched)
        this.sendHost(peer, { type: 'alive', incarnation: o.incarnation });
    }
    // After this turn's input is read: after a stall of this process, what peers sent
    // meanwhile waits in the sockets, and must count before their silence does.
    this.timers.defer(() => {
      if (this.phase !== 'started') return;
      for (const c of this.liveness.sweep(this.timers.now())) this.onLiveness(c);
    });
  }

  /** Leaders whose group has been idle long enough stop it on every member. */
  private considerQuiescence(): void {
    const o = this.options;
    const live = (p: NodeId) => this.liveness.isLive(p);
    for (const g of [...this.awake]) {
      if (!g.node.isLeader) {
        g.idleTicks = 0;
        continue;
      }
      const st = g.node.status();
      if (leaderQuiesceBlocker(st, g.node.idle, live) !== null) {
        g.idleTicks = 0;
        continue;
      }
      g.idleTicks += o.heartbeatTicks;
      if (g.idleTicks < o.quiesceAfterTicks) continue;
      this.quiesce(g, true);
      // Every live member holds the whole log: this is the heartbeat the core would send
      // them (commit = min(match, commit) = commit), with the word to stop.
      for (const p of g.members) {
        if (live(p)) this.sendHost(p, { type: 'quiesce', group: g.id, term: st.term, commit: st.commit });
      }
    }
  }

  private quiesce(g: HostedGroup, leader: boolean): void {
    if (g.quiesced) return;
    g.quiesced = true;
    g.idleTicks = 0;
    this.awake.delete(g);
    this.events.emit({ type: 'quiesced', group: g.id, leader });
  }

  private wakeGroup(g: HostedGroup, reason: WakeReason): void {
    if (!g.quiesced) return;
    g.quiesced = false;
    g.idleTicks = 0;
    this.awake.add(g);
    this.events.emit({ type: 'woke', group: g.id, reason });
  }

  // ---------------------------------------------------------------- liveness

  private onLiveness(c: LivenessChange): void {
    this.events.emit(
      c.kind === 'down'
        ? { type: 'peerDown', peer: c.peer }
        : c.kind === 'up'
          ? { type: 'peerUp', peer: c.peer }
          : { type: 'peerRestarted', peer: c.peer },
    );
    const groups = this.peerGroups.get(c.peer);
    if (!groups) return;
    for (const g of groups) {
      if (!g.quiesced) continue;
      // A member back (or restarted) may be behind: its leader wakes to bring it up to date.
      if (c.kind !== 'down' && g.node.isLeader) this.wakeGroup(g, 'peerUp');
      // A leader that no longer sees a quorum of its voters live wakes, so that ticking
      // lets CheckQuorum depose it: a quiesced leader cut off by a partition would
      // otherwise go on calling itself leader (commits and reads would stay safe, since
      // they wake the group, but its status would lie).
      if (c.kind === 'down' && g.node.isLeader) {
        const voters = g.node.status().voters;
        const live = voters.filter((v) => v === this.id || this.liveness.isLive(v)).length;
        if (live < Math.floor(voters.length / 2) + 1) this.wakeGroup(g, 'quorumDown');
      }
      // The leader gone: elect another. (A follower gone changes nothing for a quiesced
      // group: its leader leaves it out, and wakes when it returns.)
      if (c.kind !== 'up' && !g.node.isLeader && g.node.leaderId === c.peer) {
        this.wakeGroup(g, 'leaderDown');
        this.replaceLeader(g, c.peer);
      }
    }
  }

  /**
   * The leader of quiesced group `g` is gone. Heartbeats stopped by agreement, not by
   * failure, so no member's election clock ran while the group slept, and each would keep
   * honouring the old leader (PreVote's stickiness) for a whole election timeout. Every
   * surviving member forgets that leader (`forgetLeader`: it grants votes at once, but does
   * not campaign before its own timeout); one of them, ranked first by a hash of the group
   * and its id (which spreads the new leaderships over the survivors), campaigns two ticks
   * later, once its peers have seen the leader down too. Should that fail, the others'
   * election timeouts run as usual.
   */
  private replaceLeader(g: HostedGroup, gone: NodeId): void {
    g.node.forgetLeader();
    const voters = g.node
      .status()
      .voters.filter((v) => v !== gone && (v === this.id || this.liveness.isLive(v)));
    let first: NodeId | null = null;
    let best = -1;
    for (const v of voters) {
      const h = rank(g.id, v);
      if (h > best || (h === best && first !== null && v < first)) {
        best = h;
        first = v;
      }
    }
    if (first !== this.id) return;
    const term = g.node.term;
    this.timers.setTimeout(() => {
      const n = g.node;
      if (this.phase !== 'started' || this.groups.get(g.id) !== g) return;
      // Only if nobody started an election meanwhile (that would have raised the term).
      if (n.term === term && n.role === 'follower' && n.leaderId === null) n.campaign();
    }, 2 * this.options.tickMs);
  }

  private setMembers(g: HostedGroup, members: readonly NodeId[]): void {
    const next = new Set(members.filter((m) => m !== this.id));
    for (const p of g.members) if (!next.has(p)) this.peerGroups.get(p)?.delete(g);
    const now = this.timers.now();
    for (const p of next) {
      let set = this.peerGroups.get(p);
      if (!set) {
        set = new Set();
        this.peerGroups.set(p, set);
      }
      set.add(g);
      this.liveness.watch(p, now);
    }
    g.members = next;
  }

  private forget(g: HostedGroup): void {
    if (this.groups.get(g.id) === g) this.groups.delete(g.id);
    this.awake.delete(g);
    for (const p of g.members) this.peerGroups.get(p)?.delete(g);
  }

  // ---------------------------------------------------------------- the transport mux

  /** The `Transport` one group's node sees: its share of the host's transport. */
  private viewFor(g: HostedGroup): Transport {
    const view: Transport & { sendSnapshot?: unknown } = {
      start: async (handler) => {
        g.handler = handler;
      },
      send: (msg) => {
        // Anything the group says but the answer to a (quiesce) heartbeat is activity.
        if (g.quiesced && msg.type !== 'heartbeatResponse') this.wakeGroup(g, 'activity');
        this.raftSent++;
        if (
          (msg.type === 'heartbeat' || msg.type === 'heartbeatResponse') &&
          this.options.coalesceHeartbeats
        ) {
          this.bufferBeat(msg.to, { group: g.id, msg });
          return;
        }
        // In send order on the peer's connection: the beats buffered before it go first.
        this.flushBeats(msg.to);
        this.transport.send(g.id, msg);
      },
      close: async () => {
        g.handler = null;
      },
    };
    const t = this.transport;
    if (t.sendSnapshot) {
      const send = t.sendSnapshot.bind(t);
      view.sendSnapshot = (msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> => {
        this.wakeGroup(g, 'activity');
        const prev = this.snapshotChains.get(msg.to) ?? Promise.resolve();
        const run = prev.then(() => send(g.id, msg, data));
        this.snapshotChains.set(
          msg.to,
          run.then(
            () => {},
            () => {},
          ),
        );
        return run;
      };
    }
    return view;
  }

  /**
   * Hold a heartbeat or heartbeat answer for `to` until the end of this turn of the event
   * loop (the host's `timers.defer`), then send everything held for `to` as one `beats`
   * message. Per turn, not per tick: the leaders' heartbeats of one tick are all sent in
   * the ready loops the tick schedules (the same turn), and the answers to one `beats`
   * message in the ready loops its delivery schedules; waiting for a tick would delay
   * answers, and so read-index rounds, by up to `tickMs` for nothing.
   *
   * Order: every message a group sends `to` that is not a beat, and every host message to
   * `to`, first flushes what is held for it (`flushBeats`), so the peer's connection
   * carries everything in exactly the order the groups sent it; only the turn's
   * consecutive beats are packed together. (Were a heartbeat to overtake an earlier append
   * of its group it would still be safe, since its commit is min(match, commit), which the
   * follower holds; but nothing overtakes anything here.)
   */
  private bufferBeat(to: NodeId, beat: GroupBeat): void {
    let held = this.beats.get(to);
    if (!held) {
      held = [];
      this.beats.set(to, held);
    }
    held.push(beat);
    if (held.length >= MAX_BEATS) {
      this.flushBeats(to);
      return;
    }
    if (this.beatsFlushScheduled) return;
    this.beatsFlushScheduled = true;
    this.timers.defer(() => {
      this.beatsFlushScheduled = false;
      this.flushAllBeats();
    });
  }

  private flushAllBeats(): void {
    for (const to of [...this.beats.keys()]) this.flushBeats(to);
  }

  /** Send what is held for `to`: a beat alone as itself, several as one `beats` message. */
  private flushBeats(to: NodeId): void {
    const held = this.beats.get(to);
    if (!held) return;
    this.beats.delete(to);
    if (held.length === 1) {
      const only = held[0]!;
      this.transport.send(only.group, only.msg);
      return;
    }
    this.beatsCoalesced += held.length;
    this.beatsMessages++;
    this.hostSent++;
    this.transport.sendHost(to, { type: 'beats', items: held });
  }

  private onMessage(group: GroupId, msg: Message): void {
    this.raftReceived++;
    const c = this.liveness.heard(msg.from, this.timers.now());
    if (c) this.onLiveness(c);
    const g = this.groups.get(group);
    if (!g?.handler) {
      this.dropped++;
      return;
    }
    // A heartbeat's answer is no news: everything else means the group has work.
    if (g.quiesced && msg.type !== 'heartbeatResponse') this.wakeGroup(g, 'message');
    if (msg.type === 'preVote' || msg.type === 'vote') {
      // A candidate while our leader's host is down: do not refuse it for that leader's sake.
      const leader = g.node.leaderId;
      if (leader !== null && leader !== this.id && leader !== msg.from && !this.liveness.isLive(leader)) {
        g.node.forgetLeader();
      }
    }
    g.handler.onMessage(msg);
  }

  private onHostMessage(from: NodeId, msg: HostMessage): void {
    this.hostReceived++;
    const c = this.liveness.heard(
      from,
      this.timers.now(),
      msg.type === 'alive' ? msg.incarnation : undefined,
    );
    if (c) this.onLiveness(c);
    if (msg.type === 'beats') this.onBeats(from, msg.items);
    else if (msg.type === 'quiesce') this.onQuiesce(from, msg);
    else if (msg.type === 'wake') {
      const g = this.groups.get(msg.group);
      if (g) this.wakeGroup(g, 'wake');
    }
  }

  /**
   * A `beats` message: each item exactly as if it had come alone (liveness, wake-ups, the
   * vote rule, then the group's node), in the order sent. The network transports check
   * that every item is a heartbeat or its answer from `from` to this host; so does this,
   * for any other transport.
   */
  private onBeats(from: NodeId, items: readonly GroupBeat[]): void {
    for (const { group, msg } of items) {
      if (
        msg.from !== from ||
        msg.to !== this.id ||
        (msg.type !== 'heartbeat' && msg.type !== 'heartbeatResponse')
      ) {
        this.dropped++;
        continue;
      }
      this.onMessage(group, msg);
    }
  }

  /** The leader `from` stops the group: take its last heartbeat, then stop too if in step. */
  private onQuiesce(from: NodeId, msg: Extract<HostMessage, { type: 'quiesce' }>): void {
    const g = this.groups.get(msg.group);
    if (!g?.handler) return;
    g.handler.onMessage({
      type: 'heartbeat',
      from,
      to: this.id,
      term: msg.term,
      commit: msg.commit,
      readRound: 0,
    });
    const st = g.node.status();
    const why = followerQuiesceBlocker(
      {
        role: st.role,
        leaderId: st.leaderId,
        term: st.term,
        commit: st.commit,
        lastIndex: st.lastIndex,
        waiting: g.node.waiting,
      },
      from,
      msg,
    );
    if (why === null) {
      this.quiesce(g, false);
      return;
    }
    this.events.emit({ type: 'quiesceRefused', group: g.id, from, reason: why });
    this.wakeGroup(g, 'wake');
    this.sendHost(from, { type: 'wake', group: g.id });
  }

  private onUnreachable(peer: NodeId): void {
    const groups = this.peerGroups.get(peer);
    if (!groups) return;
    for (const g of groups) g.handler?.onUnreachable?.(peer);
  }

  private onSnapshot(group: GroupId, msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> {
    const g = this.groups.get(group);
    const on = g?.handler?.onSnapshot;
    if (!g || !on) return Promise.reject(this.unknown(group));
    this.wakeGroup(g, 'message');
    return on(msg, data);
  }

  private sendHost(to: NodeId, msg: HostMessage): void {
    this.flushBeats(to);
    this.hostSent++;
    this.transport.sendHost(to, msg);
  }

  private notRunning(): MultiRaftError {
    return new MultiRaftError(
      MultiRaftErrorCode.Stopped,
      `host ${this.id} is ${this.phase === 'new' ? 'not started' : this.phase === 'started' ? 'already started' : 'stopped'}`,
    );
  }

  private unknown(group: GroupId): MultiRaftError {
    return new MultiRaftError(MultiRaftErrorCode.UnknownGroup, `group ${group} is not hosted by ${this.id}`);
  }
}

/** A group's heartbeat or heartbeat answer, as a `beats` message carries it. */
type GroupBeat = Extract<HostMessage, { type: 'beats' }>['items'][number];

/** A member's rank for taking over `group` (FNV-1a of both): spreads takeovers evenly. */
function rank(group: GroupId, id: NodeId): number {
  let h = 0x811c9dc5 ^ group;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (group >>> 16), 0x01000193);
  return h >>> 0;
}
