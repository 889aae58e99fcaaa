/**
 * A deterministic whole-cluster simulator of real `RaftNode`s. One seed drives
 * everything: the runtime's timers (virtual time), network latency, loss, duplicates and
 * reordering, partitions (symmetric, one-way, isolation), crashes with restarts (what was
 * not durable is lost, a snapshot being written is torn), pauses, membership changes, and
 * clients issuing puts, reads and compare-and-sets through `RaftNode.propose`/`read`.
 *
 * Every step is checked by {@link SafetyChecker} (through the runtime's `onReady` tap,
 * its disks and its state machine); after the faults stop, the cluster must elect a
 * leader and commit a write within a bound, and every member must catch up; at the end
 * the clients' history is checked for linearizability with `@quorate/checker`. The
 * digest of the whole event trace identifies the run: same seed, same digest.
 *
 * Time is virtual, in microseconds. A "step" is one tick period of 10 ms.
 */
import { checkHistory, type HistoryEvent } from '@quorate/checker';
import {
  type CoreConfig,
  type CoreOptions,
  type Entry,
  type HardState,
  type LogReader,
  type Message,
  type NodeId,
  type PersistBatch,
  RaftError,
  RaftNode,
  type RaftNodeEvent,
  type SnapshotMeta,
  type SnapshotRequest,
} from '@quorate/raft';
import { type RaftCore, type Ready, seededRandom } from '@quorate/raft/core';
import { formatMessage } from '@quorate/raft/testing';
import { Digest } from './digest.js';
import { type DiskHost, memorySimStorage, NodeDisk, SimLog, SimSnapshots, type SimStorage } from './disk.js';
import { encodeOp, type KvOp, type KvResult, SimKV } from './kv.js';
import { type NetworkHost, SimNetwork, SimTransport } from './network.js';
import { SafetyChecker, type Violation } from './safety.js';
import { NodeClock, SimProcess, SimTimers, World } from './world.js';

export const TICK_US = 10_000;

export interface FaultProfile {
  /** Per step: probability that a random live node crashes. */
  crash: number;
  /** Per step: probability that the current leader crashes. */
  crashLeader: number;
  /** Per step: probability that a partition starts (split, one-way, or isolation). */
  partition: number;
  /** Per step: probability of a membership change (join as learner, promote, remove). */
  membership: number;
  /** Per step: probability that a node is paused (a GC pause, a stopped VM). */
  pause: number;
  /** Per message: probability of loss. Each run draws its own rate in [0, drop]. */
  drop: number;
  /** Per message: probability of a duplicate. */
  duplicate: number;
  /** Per message: probability of a long delay (which reorders). */
  slow: number;
  /** Steps a crashed node stays down: [min, max]. */
  downSteps: readonly [number, number];
  /** Steps a partition lasts. */
  partitionSteps: readonly [number, number];
  /** Steps a pause lasts. */
  pauseSteps: readonly [number, number];
}

export const defaultFaults: Readonly<FaultProfile> = Object.freeze({
  crash: 0.002,
  crashLeader: 0.002,
  partition: 0.004,
  membership: 0.003,
  pause: 0.002,
  drop: 0.05,
  duplicate: 0.02,
  slow: 0.03,
  downSteps: [10, 300] as const,
  partitionSteps: [20, 300] as const,
  pauseSteps: [5, 120] as const,
});

export interface SimOptions {
  seed: number;
  /** Cluster size; default: 3, 5 or 7 chosen by the seed. */
  nodes?: number;
  /** Steps of 10 ms of virtual time. Default 2000. */
  steps?: number;
  /** Final steps without new faults, in which liveness is checked. Default 500. */
  quietSteps?: number;
  /** After the quiet phase starts, a write must commit within this many ms. Default 3000. */
  livenessBoundMs?: number;
  faults?: Partial<FaultProfile>;
  /** Core options; `electionTicks` and `heartbeatTicks` are turned into the runtime's milliseconds. */
  core?: Partial<CoreOptions>;
  /** Build each node's core; tests plant known bugs through a subclass here. */
  coreFactory?: (config: CoreConfig, storage: LogReader) => RaftCore;
  storage?: SimStorage;
  /** Client operations per step (10 ms) over the whole run, roughly. Default 0.5. */
  clientRate?: number;
  /** Concurrent clients, each issuing one operation at a time. Default 3. */
  clients?: number;
  /** Keys the clients use. Default: by seed, 2 to 5. */
  keys?: number;
  /** Check the clients' history for linearizability at the end. Default true. */
  linearizability?: boolean;
  /** Trace lines kept for a failure report. Default 80. */
  traceSize?: number;
  /** Take a snapshot every N applied entries (0: never). Default: by seed, 0, 20, 60 or 200. */
  snapshotEvery?: number;
  /** Entries kept behind a snapshot when compacting. Default: by seed, 0, 5 or 30. */
  snapshotKeep?: number;
  /**
   * Each node's clock runs at a rate drawn from [1 − this, 1 + this] against virtual time
   * (its own stream: other draws of a seed do not change). Default 0: exact clocks.
   */
  clockDrift?: number;
  /** Fixed clock rates by node id (overrides `clockDrift` for those nodes). */
  clockRates?: Readonly<Record<NodeId, number>>;
  /**
   * Per step: probability that one node's clock rate is drawn again from
   * [1 − clockDrift, 1 + clockDrift] (a clock that speeds up or slows down mid-run, as
   * NTP slewing or a VM's steal time make it). Default 0.
   */
  clockSwing?: number;
  /** The runtime's `maxClockDriftRatio` (the bound lease reads assume). Default: the runtime's. */
  maxClockDriftRatio?: number;
}

export interface SimStats {
  elections: number;
  leaderChanges: number;
  confChanges: number;
  snapshotsSent: number;
  /** Own snapshots taken, and snapshot writes torn because the node crashed while writing. */
  snapshotsStored: number;
  snapshotsLostToCrash: number;
  snapshotsInstalled: number;
  crashes: number;
  partitions: number;
  pauses: number;
  messages: number;
  writesAcked: number;
  writesFailed: number;
  /** Writes whose outcome the client could not know (a timeout, a crash under it). */
  writesUnknown: number;
  readsAcked: number;
  /** Reads a leader served under its lease (no heartbeat round), with `leaseReads` on. */
  leaseReads: number;
  /** Client operations the linearizability check covered, and keys it could not decide. */
  opsChecked: number;
  keysUndecided: number;
  maxTerm: number;
  committed: number;
  /** Virtual ms from start to the first leader. */
  firstLeaderMs: number | null;
  /** Virtual ms from each leader crash to the next leader. */
  failoverMs: number[];
  /** Virtual ms from each leader crash to the next write acknowledged to a client. */
  failoverWriteMs: number[];
  /** Virtual ms from the start of the quiet phase to a leader, and to a committed write. */
  quietLeaderMs: number | null;
  quietCommitMs: number | null;
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  readonly violations: readonly Violation[];
  readonly stats: SimStats;
  /** The election protocol this seed ran: which of PreVote and CheckQuorum were on. */
  readonly election: string;
  /** A hash of the whole event trace: messages, persists, applies, client results. */
  readonly digest: string;
  /** The last trace lines, oldest first (only kept in full when the run failed). */
  readonly trace: readonly string[];
}

interface SimNode {
  readonly id: NodeId;
  /** A member of the initial cluster (bootstrapped by its runtime), or a joiner. */
  readonly founding: boolean;
  readonly disk: NodeDisk;
  up: boolean;
  /** The runtime finished `start()`: clients may use it. */
  started: boolean;
  incarnation: number;
  proc: SimProcess;
  node: RaftNode<KvResult>;
  kv: SimKV;
  snaps: SimSnapshots;
  /**
   * The node's log as the core sees it (from the readies the runtime takes), index i at
   * [i-1]; indexes at or below `logBase` are covered by a snapshot (holes). Loaded from
   * the store at the incarnation's first ready.
   */
  log: Entry[];
  logBase: number;
  logLoaded: boolean;
  lastCommit: number;
  lastTerm: number;
  wasLeader: boolean;
  /** Since when (virtual µs) the runtime has been busy with a snapshot, while running. */
  busySince: number | null;
  /** Client requests waiting on this incarnation: a crash resets their connections. */
  readonly waiting: Set<() => void>;
}

interface Client {
  process: number;
  leader: NodeId | null;
  /** The last value this client saw per key (what its CAS expects). */
  readonly seen: Map<string, string | null>;
}

type Attempt =
  | { kind: 'ok'; result: KvResult | string | null }
  | { kind: 'retry'; leader: NodeId | null }
  | { kind: 'fail' }
  | { kind: 'info' };

/** Error codes that mean the request was never proposed (or definitely not applied). */
const DEFINITE = new Set(['NOT_LEADER', 'PROPOSAL_DROPPED', 'OVERLOADED', 'TRANSFER_IN_PROGRESS', 'STOPPED']);

/** How long a snapshot task may stay busy (while its process runs) before it counts as stuck. */
const SNAPSHOT_STUCK_US = 5_000_000;

export class Simulation implements NetworkHost, DiskHost {
  readonly seed: number;
  readonly size: number;
  readonly steps: number;
  readonly quietSteps: number;
  readonly dropRate: number;
  readonly duplicate: number;
  readonly slow: number;
  quiet = false;
  private readonly world: World;
  private readonly net: SimNetwork;
  private readonly faults: FaultProfile;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly ids: NodeId[];
  private readonly checker = new SafetyChecker();
  private readonly storage: SimStorage;
  private readonly digest = new Digest();
  private readonly traceRing: string[] = [];
  private readonly traceSize: number;
  private readonly history: HistoryEvent[] = [];
  private readonly keys: number;
  private quietStart = 0;
  private opSeq = 0;
  private processSeq = 0;
  private clientsDone = false;
  /** Highest index of any write acknowledged to a client so far. */
  private ackedMax = 0;
  private believedLeader: NodeId | null = null;
  private lastLeaderCrash: number | null = null;
  /** Time of a leader crash not yet followed by an acknowledged write. */
  private crashAwaitingWrite: number | null = null;
  private readonly stats: SimStats = {
    elections: 0,
    leaderChanges: 0,
    confChanges: 0,
    snapshotsSent: 0,
    snapshotsStored: 0,
    snapshotsLostToCrash: 0,
    snapshotsInstalled: 0,
    crashes: 0,
    partitions: 0,
    pauses: 0,
    messages: 0,
    writesAcked: 0,
    writesFailed: 0,
    writesUnknown: 0,
    readsAcked: 0,
    leaseReads: 0,
    opsChecked: 0,
    keysUndecided: 0,
    maxTerm: 0,
    committed: 0,
    firstLeaderMs: null,
    failoverMs: [],
    failoverWriteMs: [],
    quietLeaderMs: null,
    quietCommitMs: null,
  };
  /** How many nodes may still join. */
  private spareIds = 2;
  /** What every member must have applied by the end: what was committed 1 s before it. */
  private catchUpTarget = 0;
  private readonly raftOptions: Partial<CoreOptions>;
  /** Each node's own clock, when clocks drift (absent: virtual time itself). */
  private readonly clocks = new Map<NodeId, NodeClock>();
  private readonly clockRnd: ReturnType<typeof seededRandom>;
  private readonly electionTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly snapshotEvery: number;
  private readonly snapshotKeep: number;
  /** State digest after each applied index, as first seen: every replica must agree. */
  private readonly stateAt = new Map<number, string>();

  constructor(private readonly opts: SimOptions) {
    this.seed = opts.seed;
    this.world = new World(opts.seed);
    const rnd = this.world.rnd;
    this.size = opts.nodes ?? [3, 5, 7][rnd(3)]!;
    this.steps = opts.steps ?? 2000;
    this.quietSteps = Math.min(opts.quietSteps ?? 500, this.steps);
    this.faults = { ...defaultFaults, ...opts.faults };
    this.dropRate = rnd.next() * this.faults.drop;
    this.duplicate = this.faults.duplicate;
    this.slow = this.faults.slow;
    this.storage = opts.storage ?? memorySimStorage();
    this.traceSize = opts.traceSize ?? 80;
    this.ids = Array.from({ length: this.size }, (_, i) => `n${i + 1}`);
    this.net = new SimNetwork(this.world, this);
    this.world.onTime = (now) => {
      this.checker.now = now;
    };
    // Flow-control limits vary by seed, so that small windows and one-entry messages
    // (which open the rare interleavings, such as Figure 8's) are exercised too.
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    // PreVote and CheckQuorum vary too (three seeds in five keep the defaults, both on):
    // with either one off the cluster must stay safe and recover once the faults stop.
    // Both off is plain Raft, where a removed member that keeps campaigning deposes
    // leaders forever (thesis §4.2.3): safe, but not live, so not drawn here. Drawn from
    // a stream of their own, so the rest of a seed's run does not depend on it.
    const election = seededRandom(opts.seed ^ 0x2f6b_1c3d);
    const [preVote, checkQuorum] = (
      [
        [true, true],
        [true, true],
        [true, true],
        [false, true],
        [true, false],
      ] as const
    )[election(5)]!;
    const { electionTicks, heartbeatTicks, ...core } = opts.core ?? {};
    this.electionTimeoutMs = (electionTicks ?? 15) * 10;
    this.heartbeatIntervalMs = (heartbeatTicks ?? 5) * 10;
    this.raftOptions = {
      maxEntriesPerMsg: pick([1, 2, 3, 64, 4096]),
      maxInflightMsgs: pick([1, 2, 4, 256]),
      maxSizePerMsg: pick([64, 1024, 1 << 20]),
      preVote,
      // Lease reads rest on CheckQuorum: on whenever they are.
      checkQuorum: checkQuorum || core.leaseReads === true,
      ...core,
    };
    // Clocks draw from a stream of their own: a seed's other draws do not depend on them.
    this.clockRnd = seededRandom(opts.seed ^ 0x6c0c_4b1d);
    const d = opts.clockDrift ?? 0;
    if (d > 0) for (const id of this.ids) this.clocks.set(id, new NodeClock(this.world, this.drawRate()));
    for (const [id, rate] of Object.entries(opts.clockRates ?? {}))
      this.clocks.set(id, new NodeClock(this.world, rate));
    this.snapshotEvery = opts.snapshotEvery ?? pick([0, 20, 60, 200]);
    this.snapshotKeep = opts.snapshotKeep ?? pick([0, 5, 30]);
    this.keys = opts.keys ?? 2 + rnd(4);
  }

  async run(): Promise<SimResult> {
    try {
      await this.setup();
      this.startClients();
      const faultEnd = this.steps - this.quietSteps;
      for (let step = 0; step < this.steps; step++) {
        if (step === faultEnd) this.startQuiet();
        if (!this.quiet) await this.injectFaults();
        await this.world.runUntil((step + 1) * TICK_US, () => !this.checker.ok);
        if (step === this.steps - 100) this.catchUpTarget = this.checker.highestCommitted();
        this.checkSnapshotsMove();
        if (!this.checker.ok) break;
      }
      this.clientsDone = true;
      if (this.checker.ok) this.checkLiveness();
      // Checked even after another violation: the history up to it must still be linearizable.
      if (this.opts.linearizability !== false) await this.checkLinearizable();
    } catch (err) {
      this.checker.note(
        'crash',
        null,
        `the simulation threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    } finally {
      this.clientsDone = true;
      for (const n of this.nodes.values()) await n.disk.log.close().catch(() => {});
      await this.storage.dispose?.();
    }
    this.stats.committed = this.checker.highestCommitted();
    for (const n of this.nodes.values()) if (n.up) this.stats.leaseReads += n.node.leaseReadsServed;
    return {
      seed: this.seed,
      nodes: this.size,
      steps: this.steps,
      violations: this.checker.violations,
      stats: this.stats,
      election:
        [
          this.raftOptions.preVote !== false && 'PreVote',
          this.raftOptions.checkQuorum !== false && 'CheckQuorum',
        ]
          .filter(Boolean)
          .join('+') || 'neither',
      digest: this.digest.hex(),
      trace: this.checker.ok ? [] : [...this.traceRing],
    };
  }

  // ---------------------------------------------------------------- nodes

  private async setup(): Promise<void> {
    for (const id of this.ids) await this.addNode(id, true);
  }

  /** Create a node's disk and start its first incarnation. */
  private async addNode(id: NodeId, founding: boolean): Promise<SimNode> {
    const disk = new NodeDisk(id, await this.storage.create(id));
    const n = { id, founding, disk, incarnation: -1, waiting: new Set() } as unknown as SimNode;
    this.nodes.set(id, n);
    this.boot(n);
    return n;
  }

  /** Start a new incarnation of `n` over what its disk holds: a real `RaftNode`. */
  private boot(n: SimNode): void {
    const world = this.world;
    n.incarnation++;
    const proc = new SimProcess(n.id, n.incarnation, world);
    const kv = new SimKV({
      applied: (e, previous, sm) => this.onApplied(n, e, previous, sm),
      restored: (meta, sm) => this.onRestored(n, meta, sm),
    });
    const snaps = new SimSnapshots(n.disk, world, proc, this);
    const node = new RaftNode<KvResult>({
      id: n.id,
      storage: new SimLog(n.disk, world, proc, this),
      transport: new SimTransport(this.net, n.id, proc),
      stateMachine: kv,
      members: n.founding ? this.ids : undefined,
      tickMs: 10,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      electionTimeoutMs: this.electionTimeoutMs,
      raft: this.raftOptions,
      requestTimeoutMs: 1000,
      timers: new SimTimers(world, proc, this.clocks.get(n.id)),
      ...(this.opts.maxClockDriftRatio !== undefined
        ? { maxClockDriftRatio: this.opts.maxClockDriftRatio }
        : {}),
      random: seededRandom(this.seed * 7919 + Number(n.id.slice(1)) * 104729 + n.incarnation),
      snapshots:
        this.snapshotEvery > 0
          ? { store: snaps, everyEntries: this.snapshotEvery, keepEntries: this.snapshotKeep }
          : undefined,
      onReady: (rd) => this.onReady(n, proc, rd),
      createCore: this.opts.coreFactory,
    });
    node.events.onAny((e) => this.onNodeEvent(n, proc, e));
    n.proc = proc;
    n.node = node;
    n.kv = kv;
    n.snaps = snaps;
    n.up = true;
    n.started = false;
    n.log = [];
    n.logBase = 0;
    n.logLoaded = false;
    n.lastCommit = 0;
    n.lastTerm = n.disk.log.initialState().hardState.term;
    n.wasLeader = false;
    n.busySince = null;
    this.trace(
      `boot ${n.id}#${n.incarnation} first=${n.disk.log.firstIndex()} last=${n.disk.log.lastIndex()}`,
    );
    this.digest.add(`boot ${n.id} ${n.incarnation}`);
    node.start().then(
      () => {
        if (proc.alive) n.started = true;
      },
      (err: unknown) => {
        if (proc.alive) this.checker.note('crash', n.id, `start failed: ${(err as Error)?.message ?? err}`);
      },
    );
  }

  // ---------------------------------------------------------------- what the checker sees

  /** Every ready the runtime takes: the node's log, commit, term and leadership. */
  private onReady(n: SimNode, proc: SimProcess, rd: Readonly<Ready>): void {
    if (!proc.alive) return;
    if (!n.logLoaded) this.loadLog(n);
    if (rd.snapshot) {
      // The log restarts after the snapshot.
      n.logBase = rd.snapshot.index;
      n.log = new Array(n.logBase);
    }
    if (rd.entries.length > 0) {
      this.checker.onAppend(n.id, n.log, n.logBase, rd.entries, n.lastCommit);
      const from = rd.entries[0]!.index;
      n.log.length = from - 1;
      for (const e of rd.entries) n.log.push(e);
    }
    this.observe(n);
  }

  /**
   * The log this incarnation's core starts from: what the store holds at its first ready
   * (nothing of this incarnation is written before it, except the bootstrap).
   */
  private loadLog(n: SimNode): void {
    const st = n.disk.log;
    const first = st.firstIndex();
    const last = st.lastIndex();
    n.logBase = first - 1;
    n.log = new Array(n.logBase);
    if (last >= first) for (const e of st.entries(first, last + 1)) n.log.push(e);
    // A founding member's first incarnation starts with its bootstrap entries committed:
    // the checker sees that commit like any other. A restart resumes from its disk.
    n.lastCommit = n.founding && n.incarnation === 0 ? 0 : st.initialState().hardState.commit;
    n.logLoaded = true;
  }

  /** Per-node invariants after each ready: term, commit, leadership. */
  private observe(n: SimNode): void {
    const node = n.node;
    const term = node.term;
    if (term !== n.lastTerm) {
      this.checker.onTerm(n.id, n.lastTerm, term);
      n.lastTerm = term;
      if (term > this.stats.maxTerm) this.stats.maxTerm = term;
    }
    const commit = node.commitIndex;
    if (commit !== n.lastCommit) {
      this.checker.onCommit(n.id, term, n.lastCommit, commit, n.log);
      n.lastCommit = commit;
    }
    const isLeader = node.role === 'leader';
    if (isLeader && !n.wasLeader) {
      this.checker.onLeader(n.id, n.incarnation, term, n.log, n.logBase);
      this.stats.leaderChanges++;
      this.trace(`${n.id} leads term ${term}`);
      this.digest.add(`lead ${n.id} ${term}`);
      const now = this.world.now;
      if (this.stats.firstLeaderMs === null) this.stats.firstLeaderMs = now / 1000;
      if (this.lastLeaderCrash !== null) {
        this.stats.failoverMs.push((now - this.lastLeaderCrash) / 1000);
        this.lastLeaderCrash = null;
      }
      if (this.quiet && this.stats.quietLeaderMs === null)
        this.stats.quietLeaderMs = (now - this.quietStart) / 1000;
    }
    n.wasLeader = isLeader;
  }

  private onApplied(n: SimNode, e: Entry, previous: number, kv: SimKV): void {
    for (let i = previous + 1; i < e.index; i++) this.checker.onApplySkipped(n.id, i);
    this.checker.onApply(n.id, e.index - 1, e);
    this.checkState(n, e.index, kv.digest(), 'applied');
    this.digest.add(`apply ${n.id} ${e.term}/${e.index}`);
  }

  private onRestored(n: SimNode, meta: SnapshotMeta, kv: SimKV): void {
    this.checkState(n, meta.index, kv.digest(), 'restored from a snapshot');
    this.digest.add(`restore ${n.id} ${meta.term}/${meta.index}`);
    this.trace(`${n.id} restores snapshot ${meta.term}/${meta.index}`);
  }

  /** Replicas must hold the same state after the same index. */
  private checkState(n: SimNode, index: number, digest: string, how: string): void {
    const seen = this.stateAt.get(index);
    if (seen === undefined) this.stateAt.set(index, digest);
    else if (seen !== digest) {
      this.checker.note(
        'apply-diverged',
        n.id,
        `state at ${index} (${how}) differs from another replica's: ${digest} vs ${seen}`,
      );
    }
  }

  private onNodeEvent(n: SimNode, proc: SimProcess, e: RaftNodeEvent): void {
    if (!proc.alive) return;
    switch (e.type) {
      case 'anomaly':
        this.checker.note('anomaly', n.id, e.detail);
        break;
      case 'electionStarted':
        if (!e.preVote) this.stats.elections++;
        break;
      case 'leaderChanged':
        if (e.leaderId !== null) this.believedLeader = e.leaderId;
        break;
      case 'stopped':
        if (e.error) this.checker.note('crash', n.id, `the runtime stopped itself: ${e.error.message}`);
        break;
      case 'snapshotTaken':
        this.stats.snapshotsStored++;
        this.trace(`${n.id} took snapshot at ${e.index}`);
        break;
      case 'snapshotInstalled':
        this.stats.snapshotsInstalled++;
        break;
    }
  }

  // ---------------------------------------------------------------- hosts of the network and disks

  delivered(m: Message): void {
    this.stats.messages++;
    const line = formatMessage(m);
    this.trace(`  ${line}`);
    this.digest.add(line);
  }

  snapshotSent(_m: SnapshotRequest): void {
    this.stats.snapshotsSent++;
  }

  durableHardState(id: NodeId, hs: HardState): void {
    this.checker.onPersistHardState(id, hs);
  }

  durableBatch(id: NodeId, b: PersistBatch): void {
    const e = b.entries;
    this.digest.add(
      `disk ${id} ${b.snapshot ? `s${b.snapshot.index}` : ''} ${e.length > 0 ? `${e[0]!.index}+${e.length}` : ''} ${b.hardState ? `${b.hardState.term}/${b.hardState.vote}/${b.hardState.commit}` : ''}`,
    );
  }

  snapshotTorn(_id: NodeId): void {
    this.stats.snapshotsLostToCrash++;
  }

  // ---------------------------------------------------------------- clients

  private startClients(): void {
    const count = this.opts.clients ?? 3;
    for (let i = 0; i < count; i++) {
      void this.clientLoop({ process: this.processSeq++, leader: null, seen: new Map() });
    }
  }

  private async clientLoop(c: Client): Promise<void> {
    const count = this.opts.clients ?? 3;
    // Mean think time such that the clients together issue about `clientRate` per step.
    const think = Math.max(1, Math.round((count * TICK_US) / (this.opts.clientRate ?? 0.5)));
    for (;;) {
      await this.world.sleep(this.world.rnd(2 * think));
      if (this.clientsDone) return;
      await this.clientOp(c);
    }
  }

  private record(c: Client, type: HistoryEvent['type'], f: string, key: string, value: unknown): void {
    this.history.push({ process: c.process, type, f, key, value, time: this.world.now * 1000 });
    if (type !== 'invoke') this.digest.add(`${c.process} ${type} ${f} ${key} ${JSON.stringify(value)}`);
  }

  /** One operation, retried on another node while it definitely did not happen; at most 1 s. */
  private async clientOp(c: Client): Promise<void> {
    const r = this.world.rnd;
    const key = `k${r(this.keys)}`;
    const x = r.next();
    const f = x < 0.45 ? 'put' : x < 0.8 ? 'get' : 'cas';
    const opId = ++this.opSeq;
    const value = String(opId);
    const expected = c.seen.get(key) ?? null;
    const op: KvOp | null =
      f === 'put' ? { f, op: opId, key, value } : f === 'cas' ? { f, op: opId, key, expected, value } : null;
    const shown = f === 'put' ? value : f === 'cas' ? [expected, value] : null;
    const start = this.world.now;
    const deadline = start + 1_000_000;
    const mustSee = this.ackedMax;
    this.record(c, 'invoke', f, key, shown);
    this.trace(`client ${c.process}: ${f} ${key} ${JSON.stringify(shown)} (op ${opId})`);
    let outcome: Attempt = { kind: 'fail' };
    for (let attempt = 0; attempt < 3 && this.world.now < deadline; attempt++) {
      const n = this.pickNode(c);
      if (!n) break;
      outcome = await this.attempt(n, op, key, deadline, mustSee);
      if (outcome.kind !== 'retry') break;
      c.leader = outcome.leader;
      outcome = { kind: 'fail' };
    }
    const t = this.world.now;
    switch (outcome.kind) {
      case 'ok': {
        if (op === null) {
          const v = outcome.result as string | null;
          c.seen.set(key, v);
          this.stats.readsAcked++;
          this.record(c, 'ok', f, key, v);
          return;
        }
        const res = outcome.result as KvResult;
        if (!res.ok) {
          // The CAS applied and found another value: it changed nothing.
          c.seen.delete(key);
          this.record(c, 'fail', f, key, shown);
          return;
        }
        c.seen.set(key, value);
        this.record(c, 'ok', f, key, shown);
        this.stats.writesAcked++;
        if (res.index > this.ackedMax) this.ackedMax = res.index;
        if (this.crashAwaitingWrite !== null && start >= this.crashAwaitingWrite) {
          this.stats.failoverWriteMs.push((t - this.crashAwaitingWrite) / 1000);
          this.crashAwaitingWrite = null;
        }
        if (this.quiet && this.stats.quietCommitMs === null && start >= this.quietStart) {
          this.stats.quietCommitMs = (t - this.quietStart) / 1000;
        }
        return;
      }
      case 'info':
        this.stats.writesUnknown++;
        this.record(c, 'info', f, key, shown);
        // A process whose operation may still happen never completes again (as in Jepsen).
        c.process = this.processSeq++;
        c.seen.delete(key);
        return;
      default:
        if (op) this.stats.writesFailed++;
        this.record(c, 'fail', f, key, shown);
    }
  }

  private pickNode(c: Client): SimNode | null {
    const live = [...this.nodes.values()].filter((n) => n.up && n.started && !n.proc.paused);
    if (live.length === 0) return null;
    const hint = c.leader ?? this.believedLeader;
    const leader = hint ? live.find((n) => n.id === hint) : undefined;
    if (leader && this.world.rnd.next() < 0.85) return leader;
    return live[this.world.rnd(live.length)]!;
  }

  /** One attempt on one node; the client gives up at `deadline` (the node may have crashed). */
  private async attempt(
    n: SimNode,
    op: KvOp | null,
    key: string,
    deadline: number,
    mustSee: number,
  ): Promise<Attempt> {
    const left = Math.max(1, deadline - this.world.now);
    const { node, kv } = n;
    const call: Promise<KvResult | undefined> = op
      ? node.propose(encodeOp(op), { timeoutMs: left / 1000 })
      : node.read({ timeoutMs: left / 1000 }).then(() => undefined);
    // The node may crash under the request (its connection resets) or never answer (paused).
    let reset: () => void = () => {};
    const crashed = new Promise<{ late: true }>((resolve) => {
      reset = () => resolve({ late: true });
    });
    n.waiting.add(reset);
    const settled: { v: KvResult | undefined } | { err: unknown } | { late: true } = await Promise.race([
      call.then(
        (v) => ({ v }),
        (err: unknown) => ({ err }),
      ),
      crashed,
      this.world.sleep(left + 50_000).then(() => ({ late: true as const })),
    ]);
    n.waiting.delete(reset);
    if ('late' in settled) return op ? { kind: 'info' } : { kind: 'fail' };
    if ('err' in settled) {
      const code = settled.err instanceof RaftError ? settled.err.code : '';
      if (DEFINITE.has(code)) {
        const leader = (settled.err as { leaderId?: NodeId | null }).leaderId ?? null;
        return code === 'NOT_LEADER' || code === 'PROPOSAL_DROPPED'
          ? { kind: 'retry', leader }
          : { kind: 'fail' };
      }
      return op ? { kind: 'info' } : { kind: 'fail' };
    }
    if (op) return { kind: 'ok', result: settled.v as KvResult };
    // A read barrier passed: every write acknowledged before the read began must be applied here.
    this.checker.onRead(n.id, 0, node.applied, mustSee);
    return { kind: 'ok', result: kv.get(key) };
  }

  private async checkLinearizable(): Promise<void> {
    const res = await checkHistory(this.history, { budget: 2_000_000 });
    this.stats.opsChecked = res.ops;
    this.stats.keysUndecided = res.unknownKeys.length;
    if (res.linearizable === false) {
      for (const f of res.failures) {
        this.checker.note(
          'linearizability',
          null,
          `seed ${this.seed}, key ${f.key}: ${f.op.text} by client ${f.op.process} (${f.op.status}) cannot be placed: ${f.reason}`,
        );
      }
    }
  }

  // ---------------------------------------------------------------- faults

  /** A clock rate in [1 − clockDrift, 1 + clockDrift]. */
  private drawRate(): number {
    const d = this.opts.clockDrift ?? 0;
    return 1 - d + (this.clockRnd(1_000_001) / 1_000_000) * 2 * d;
  }

  private async injectFaults(): Promise<void> {
    const f = this.faults;
    const r = this.world.rnd;
    const swing = this.opts.clockSwing ?? 0;
    if (swing > 0 && this.clockRnd(1_000_000) < swing * 1_000_000) {
      const ids = [...this.clocks.keys()];
      const id = ids[this.clockRnd(ids.length)];
      if (id !== undefined) {
        const rate = this.drawRate();
        this.clocks.get(id)!.setRate(rate);
        this.trace(`clock ${id} runs at x${rate.toFixed(3)}`);
      }
    }
    if (r.next() < f.crash) this.crash(this.pickLive());
    if (r.next() < f.crashLeader) {
      const leader = [...this.nodes.values()].find((n) => n.up && n.node.role === 'leader');
      if (leader) this.crash(leader);
    }
    if (r.next() < f.partition) this.partition();
    if (r.next() < f.membership) await this.changeMembership();
    if (r.next() < f.pause) {
      const n = this.pickLive();
      if (n && !n.proc.paused) {
        const proc = n.proc;
        proc.pause();
        this.stats.pauses++;
        this.trace(`pause ${n.id}`);
        this.digest.add(`pause ${n.id}`);
        this.world.after(this.span(f.pauseSteps), () => this.resume(n, proc));
      }
    }
  }

  private resume(n: SimNode, proc: SimProcess): void {
    if (n.proc !== proc || !proc.paused) return;
    this.trace(`resume ${n.id}`);
    proc.resume();
  }

  /**
   * One membership step, through the current leader: a spare node joins as a learner, a
   * learner is promoted, or a voter (perhaps the leader itself) is removed. Removed
   * nodes keep running: they must not disturb the cluster. Ids are never reused.
   */
  private async changeMembership(): Promise<void> {
    const leader = [...this.nodes.values()].find(
      (n) => n.up && n.started && !n.proc.paused && n.node.role === 'leader',
    );
    if (!leader) return;
    const st = leader.node.status();
    let cc: { kind: 'addLearner' | 'addVoter' | 'remove'; node: NodeId } | null = null;
    const learner = st.learners[0];
    if (learner !== undefined) {
      cc = { kind: 'addVoter', node: learner };
    } else if (st.voters.length < 7 && this.spareIds > 0 && this.world.rnd.next() < 0.5) {
      const id = `n${this.nodes.size + 1}`;
      this.spareIds--;
      await this.addNode(id, false);
      cc = { kind: 'addLearner', node: id };
    } else if (st.voters.length > 3) {
      cc = { kind: 'remove', node: st.voters[this.world.rnd(st.voters.length)]! };
    }
    if (!cc) return;
    this.stats.confChanges++;
    this.trace(`conf ${cc.kind} ${cc.node} via ${leader.id}`);
    this.digest.add(`conf ${cc.kind} ${cc.node}`);
    leader.node.changeMembership(cc, { timeoutMs: 2000 }).catch(() => {});
  }

  private pickLive(): SimNode | undefined {
    const live = [...this.nodes.values()].filter((n) => n.up);
    return live.length > 0 ? live[this.world.rnd(live.length)] : undefined;
  }

  private span(range: readonly [number, number]): number {
    return (range[0] + this.world.rnd(range[1] - range[0] + 1)) * TICK_US;
  }

  private crash(n: SimNode | undefined): void {
    if (!n?.up) return;
    this.stats.crashes++;
    this.stats.leaseReads += n.node.leaseReadsServed;
    const role = n.node.role;
    this.trace(`CRASH ${n.id}#${n.incarnation} (${role}, term ${n.node.term})`);
    this.digest.add(`crash ${n.id}`);
    if (role === 'leader') {
      this.lastLeaderCrash = this.world.now;
      this.crashAwaitingWrite = this.world.now;
    }
    n.snaps.crashed();
    n.proc.crash();
    for (const reset of n.waiting) reset();
    n.waiting.clear();
    n.up = false;
    n.started = false;
    this.world.after(this.span(this.faults.downSteps), () => this.restart(n));
  }

  private async restart(n: SimNode): Promise<void> {
    if (n.up) return;
    n.disk.log = await this.storage.reopen(n.id, n.disk.log);
    this.boot(n);
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    const r = this.world.rnd;
    const links: string[] = [];
    const mode = r(3);
    let what: string;
    if (mode === 0) {
      // Split into two sides.
      const side = new Set(ids.filter(() => r.next() < 0.5));
      for (const a of ids)
        for (const b of ids) if (a !== b && side.has(a) !== side.has(b)) links.push(`${a}>${b}`);
      what = `partition {${[...side].join(',')}} | rest`;
    } else if (mode === 1) {
      // Isolate one node.
      const x = ids[r(ids.length)]!;
      for (const b of ids) if (b !== x) links.push(`${x}>${b}`, `${b}>${x}`);
      what = `isolate ${x}`;
    } else {
      // One-way: a node can send but not receive from some others (or the reverse).
      const x = ids[r(ids.length)]!;
      const outbound = r.next() < 0.5;
      for (const b of ids) {
        if (b === x || r.next() < 0.5) continue;
        links.push(outbound ? `${x}>${b}` : `${b}>${x}`);
      }
      what = `one-way ${outbound ? 'from' : 'to'} ${x}: ${links.length} links`;
    }
    this.trace(what);
    this.digest.add(what);
    const cut = this.net.cut;
    const added = links.filter((l) => !cut.has(l));
    for (const l of added) cut.add(l);
    this.stats.partitions++;
    this.world.after(this.span(this.faults.partitionSteps), () => {
      for (const l of added) cut.delete(l);
      this.trace(`heal ${added.length} links`);
    });
  }

  /** Faults stop: heal the network, restart crashed nodes, resume paused ones. */
  private startQuiet(): void {
    this.quiet = true;
    this.quietStart = this.world.now;
    this.net.cut.clear();
    this.trace('QUIET: faults stop');
    for (const n of this.nodes.values()) {
      if (!n.up) this.world.after(0, () => this.restart(n));
      else if (n.proc.paused) this.resume(n, n.proc);
    }
  }

  /** A node's snapshot work must end: stuck for seconds while its process runs is a bug. */
  private checkSnapshotsMove(): void {
    const now = this.world.now;
    for (const n of this.nodes.values()) {
      if (!n.up || !n.started || n.proc.paused) continue;
      if (!n.node.snapshotting) {
        n.busySince = null;
        continue;
      }
      n.busySince ??= now;
      if (now - n.busySince > SNAPSHOT_STUCK_US) {
        this.checker.note(
          'liveness',
          n.id,
          `${n.id} has been busy with a snapshot for ${((now - n.busySince) / 1000).toFixed(0)} ms (applied ${n.node.applied}); its snapshots are stuck`,
        );
        n.busySince = now;
      }
    }
  }

  private checkLiveness(): void {
    if (this.quietSteps === 0) return;
    const bound = this.opts.livenessBoundMs ?? 3000;
    const quietMs = (this.quietSteps * TICK_US) / 1000;
    if (this.stats.quietCommitMs === null) {
      this.checker.note(
        'liveness',
        null,
        `no write committed in the ${quietMs} ms after faults stopped (leader after ${this.stats.quietLeaderMs ?? 'never'} ms)`,
      );
    } else if (this.stats.quietCommitMs > bound) {
      this.checker.note(
        'liveness',
        null,
        `the first write after faults stopped took ${this.stats.quietCommitMs} ms (bound ${bound})`,
      );
    }
    if (this.quietSteps >= 200) {
      const leader = [...this.nodes.values()].find((n) => n.up && n.node.role === 'leader');
      const st = leader?.node.status();
      const members = new Set(st ? [...st.voters, ...st.learners] : this.nodes.keys());
      for (const n of this.nodes.values()) {
        if (!members.has(n.id)) continue;
        if (n.node.applied < this.catchUpTarget) {
          this.checker.note(
            'liveness',
            n.id,
            `${n.id} applied only ${n.node.applied} by the end; ${this.catchUpTarget} was committed a second earlier`,
          );
        }
      }
    }
  }

  private trace(line: string): void {
    const t = (this.world.now / 1000).toFixed(3).padStart(10);
    this.traceRing.push(`${t}ms ${line}`);
    if (this.traceRing.length > this.traceSize) this.traceRing.shift();
  }
}

/** Run one seed. */
export function simulate(opts: SimOptions): Promise<SimResult> {
  return new Simulation(opts).run();
}
