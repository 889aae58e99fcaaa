/**
 * A deterministic whole-cluster simulator. One seed drives everything: network delays,
 * losses, duplicates and reordering, partitions (symmetric and one-way), crashes with
 * restarts (volatile state lost, durable state kept — including a crash after a write
 * reached the disk but before the messages that depend on it went out), pauses, client
 * writes and linearizable reads. Every step is checked by {@link SafetyChecker}; after
 * the faults stop, the cluster must elect a leader and commit a write within a bound.
 *
 * Time is virtual, in microseconds. A "step" is one tick period of 10 ms.
 */
import type { LogStorage } from '../contracts/storage.js';
import { decodeConfChange } from '../core/confchange.js';
import type { CoreConfig, CoreOptions } from '../core/config.js';
import type { RaftEvent } from '../core/events.js';
import { mergeReadies } from '../core/merge.js';
import { RaftCore } from '../core/raft.js';
import { seededRandom } from '../core/random.js';
import type { Ready } from '../core/ready.js';
import { NotLeaderError, RaftError } from '../errors.js';
import { MemoryStorage } from '../memory/memory-storage.js';
import { formatMessage } from '../testing/format.js';
import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  type NodeId,
  type SnapshotMeta,
} from '../types.js';
import { SafetyChecker, type Violation } from './checker.js';
import { EventHeap } from './heap.js';

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

/** Where nodes keep their durable state in the simulation. */
export interface SimStorage {
  /** A fresh store holding only the initial membership. */
  create(id: NodeId, conf: ConfState): Promise<LogStorage> | LogStorage;
  /** The same node's store after a crash: exactly what was durably written. */
  reopen(id: NodeId, previous: LogStorage): Promise<LogStorage> | LogStorage;
  /** Clean up after the run. */
  dispose?(): Promise<void>;
}

export const memorySimStorage = (): SimStorage => ({
  create: (_id, conf) => new MemoryStorage(conf),
  reopen: (_id, previous) => previous,
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
  core?: Partial<CoreOptions>;
  /** Build the core; tests inject known bugs through a subclass here. */
  coreFactory?: (config: CoreConfig, storage: LogStorage) => RaftCore;
  storage?: SimStorage;
  /** Client operations per step (Poisson-ish). Default 0.5. */
  clientRate?: number;
  /** Trace lines kept for a failure report. Default 80. */
  traceSize?: number;
  /** Take a snapshot every N applied entries (0: never). Default: by seed, 0, 20, 60 or 200. */
  snapshotEvery?: number;
  /** Entries kept behind a snapshot when compacting. Default: by seed, 0, 5 or 30. */
  snapshotKeep?: number;
}

export interface SimStats {
  elections: number;
  leaderChanges: number;
  confChanges: number;
  snapshotsSent: number;
  /** Own snapshots stored, and those lost because the node crashed while writing them. */
  snapshotsStored: number;
  snapshotsLostToCrash: number;
  crashes: number;
  partitions: number;
  pauses: number;
  messages: number;
  writesAcked: number;
  writesFailed: number;
  readsAcked: number;
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
  /** The last trace lines, oldest first (only kept in full when the run failed). */
  readonly trace: readonly string[];
}

interface PendingWrite {
  readonly term: number;
  readonly op: number;
  readonly start: number;
}

interface PendingRead {
  readonly start: number;
  readonly mustSee: number;
}

interface SimNode {
  readonly id: NodeId;
  up: boolean;
  paused: boolean;
  incarnation: number;
  core: RaftCore;
  storage: LogStorage;
  /**
   * The node's log as the core sees it (storage plus handed-out entries), index i at
   * [i-1]; indexes at or below `logBase` are covered by a snapshot (holes).
   */
  log: Entry[];
  logBase: number;
  /** The node's durable snapshot (survives crashes), with the state it holds. */
  snap: { meta: SnapshotMeta; kv: Map<string, string> } | null;
  /** A snapshot received from the leader, waiting for the core's ready to install it. */
  pendingInstall: { meta: SnapshotMeta; kv: Map<string, string> } | null;
  /** The node's own snapshot being written (its view is taken; a crash now loses it). */
  snapping: SnapshotMeta | null;
  /** Readies waiting for the disk, oldest first. */
  disk: Ready[];
  /** How many of the oldest `disk` readies the write in progress covers (0: idle). */
  writing: number;
  lastApplied: number;
  lastCommit: number;
  lastTerm: number;
  wasLeader: boolean;
  kv: Map<string, string>;
  writes: Map<number, PendingWrite>;
  reads: Map<number, PendingRead>;
  /** Confirmed reads waiting for apply: [requestId, index]. */
  readWaits: [number, number][];
  /** Events held while paused. */
  held: SimEvent[];
  events: RaftEvent[];
}

type SimEvent =
  | { time: number; seq: number; kind: 'tick'; node: NodeId; inc: number }
  | { time: number; seq: number; kind: 'deliver'; msg: Message }
  | {
      time: number;
      seq: number;
      kind: 'deliverSnapshot';
      msg: Extract<Message, { type: 'snapshot' }>;
      kv: Map<string, string>;
    }
  | { time: number; seq: number; kind: 'snapshotDone'; node: NodeId; inc: number; peer: NodeId; ok: boolean }
  | { time: number; seq: number; kind: 'write'; node: NodeId; inc: number }
  | {
      time: number;
      seq: number;
      kind: 'snapshotStored';
      node: NodeId;
      inc: number;
      meta: SnapshotMeta;
      kv: Map<string, string>;
    }
  | { time: number; seq: number; kind: 'ack'; node: NodeId; inc: number }
  | { time: number; seq: number; kind: 'restart'; node: NodeId }
  | { time: number; seq: number; kind: 'resume'; node: NodeId }
  | { time: number; seq: number; kind: 'heal'; cut: string[] };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Simulation {
  readonly seed: number;
  readonly size: number;
  readonly steps: number;
  readonly quietSteps: number;
  private readonly faults: FaultProfile;
  private readonly rnd: ReturnType<typeof seededRandom>;
  private readonly heap = new EventHeap<SimEvent>();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly ids: NodeId[];
  private readonly checker = new SafetyChecker();
  private readonly storage: SimStorage;
  private readonly cut = new Set<string>();
  private readonly traceRing: string[] = [];
  private readonly traceSize: number;
  private now = 0;
  private seq = 0;
  private opSeq = 0;
  private reqSeq = 0;
  /** Highest index of any write acknowledged to a client so far. */
  private ackedMax = 0;
  private believedLeader: NodeId | null = null;
  private dropRate: number;
  private quiet = false;
  private quietStart = 0;
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
    crashes: 0,
    partitions: 0,
    pauses: 0,
    messages: 0,
    writesAcked: 0,
    writesFailed: 0,
    readsAcked: 0,
    maxTerm: 0,
    committed: 0,
    firstLeaderMs: null,
    failoverMs: [],
    failoverWriteMs: [],
    quietLeaderMs: null,
    quietCommitMs: null,
  };
  private quietProbe: number | null = null;
  /** How many nodes may still join. */
  private spareIds = 2;
  /** What every node must have applied by the end: what was committed 1 s before it. */
  private catchUpTarget = 0;
  private readonly coreOptions: Partial<CoreOptions>;
  private readonly snapshotEvery: number;
  private readonly snapshotKeep: number;
  /** State digest after each applied index, as first seen: every replica must agree. */
  private readonly stateAt = new Map<number, string>();

  constructor(private readonly opts: SimOptions) {
    this.seed = opts.seed;
    this.rnd = seededRandom(opts.seed);
    this.size = opts.nodes ?? [3, 5, 7][this.rnd(3)]!;
    this.steps = opts.steps ?? 2000;
    this.quietSteps = Math.min(opts.quietSteps ?? 500, this.steps);
    this.faults = { ...defaultFaults, ...opts.faults };
    this.dropRate = this.rnd.next() * this.faults.drop;
    this.storage = opts.storage ?? memorySimStorage();
    this.traceSize = opts.traceSize ?? 80;
    this.ids = Array.from({ length: this.size }, (_, i) => `n${i + 1}`);
    // Flow-control limits vary by seed, so that small windows and one-entry messages
    // (which open the rare interleavings, such as Figure 8's) are exercised too.
    const pick = <T>(xs: readonly T[]): T => xs[this.rnd(xs.length)]!;
    // PreVote and CheckQuorum vary too (three seeds in five keep the defaults, both on):
    // with either one off the cluster must stay safe and recover once the faults stop.
    // Both off is plain Raft, where a removed member that keeps campaigning deposes
    // leaders forever (thesis §4.2.3): safe, but not live, so not drawn here. Drawn from
    // a stream of their own, so the rest of a seed's run is what it was before.
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
    this.coreOptions = {
      maxEntriesPerMsg: pick([1, 2, 3, 64, 4096]),
      maxInflightMsgs: pick([1, 2, 4, 256]),
      maxSizePerMsg: pick([64, 1024, 1 << 20]),
      preVote,
      checkQuorum,
      ...opts.core,
    };
    this.snapshotEvery = opts.snapshotEvery ?? pick([0, 20, 60, 200]);
    this.snapshotKeep = opts.snapshotKeep ?? pick([0, 5, 30]);
  }

  async run(): Promise<SimResult> {
    try {
      await this.setup();
      const faultEnd = this.steps - this.quietSteps;
      for (let step = 0; step < this.steps; step++) {
        if (step === faultEnd) await this.startQuiet();
        if (!this.quiet) await this.injectFaults();
        this.clientOps();
        const end = (step + 1) * TICK_US;
        for (let ev = this.heap.peek(); ev && ev.time < end; ev = this.heap.peek()) {
          this.heap.pop();
          this.now = ev.time;
          this.checker.now = ev.time;
          await this.handle(ev);
        }
        this.now = end;
        if (step === this.steps - 100) this.catchUpTarget = this.checker.highestCommitted();
        if (this.checker.violations.length > 0) break;
      }
      if (this.checker.ok) this.checkLiveness();
    } catch (err) {
      this.checker.note(
        'crash',
        null,
        `the simulation threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    } finally {
      for (const n of this.nodes.values()) await n.storage.close().catch(() => {});
      await this.storage.dispose?.();
    }
    this.stats.committed = this.checker.highestCommitted();
    return {
      seed: this.seed,
      nodes: this.size,
      steps: this.steps,
      violations: this.checker.violations,
      stats: this.stats,
      election:
        [
          this.coreOptions.preVote !== false && 'PreVote',
          this.coreOptions.checkQuorum !== false && 'CheckQuorum',
        ]
          .filter(Boolean)
          .join('+') || 'neither',
      trace: this.checker.ok ? [] : [...this.traceRing],
    };
  }

  // ---------------------------------------------------------------- setup

  private async setup(): Promise<void> {
    const conf: ConfState = { voters: this.ids, learners: [], votersOutgoing: [] };
    for (const id of this.ids) await this.addNode(id, conf);
  }

  /** Create a node's process and store: a founding member (with `conf`) or a joiner (empty). */
  private async addNode(id: NodeId, conf: ConfState): Promise<SimNode> {
    const storage = await this.storage.create(id, conf);
    const node: SimNode = {
      id,
      up: true,
      paused: false,
      incarnation: 0,
      core: undefined as unknown as RaftCore,
      storage,
      log: [],
      logBase: 0,
      snap: null,
      pendingInstall: null,
      snapping: null,
      disk: [],
      writing: 0,
      lastApplied: 0,
      lastCommit: 0,
      lastTerm: 0,
      wasLeader: false,
      kv: new Map(),
      writes: new Map(),
      reads: new Map(),
      readWaits: [],
      held: [],
      events: [],
    };
    this.nodes.set(id, node);
    await this.boot(node);
    return node;
  }

  /** Start (or restart) a node's process over what its storage and snapshot hold. */
  private async boot(n: SimNode): Promise<void> {
    let applied = 0;
    n.kv = new Map();
    if (n.snap) {
      // As the runtime does: make the log agree with the latest snapshot, then restore.
      const meta = n.snap.meta;
      const st = n.storage;
      let t: number | undefined;
      try {
        t =
          meta.index >= st.firstIndex() - 1 && meta.index <= st.lastIndex() ? st.term(meta.index) : undefined;
      } catch {
        t = undefined;
      }
      if (t === meta.term) {
        if (st.snapshot().index < meta.index) await st.compact(st.firstIndex() - 1, meta);
      } else if (st.snapshot().index !== meta.index) {
        await st.persist({ snapshot: meta, entries: [], hardState: null });
      }
      n.kv = new Map(n.snap.kv);
      applied = meta.index;
    }
    const cfg: CoreConfig = {
      id: n.id,
      random: seededRandom(this.seed * 7919 + Number(n.id.slice(1)) * 104729 + n.incarnation),
      ...this.coreOptions,
      applied,
      onEvent: (e) => this.onCoreEvent(n, e),
    };
    n.core = this.opts.coreFactory ? this.opts.coreFactory(cfg, n.storage) : new RaftCore(cfg, n.storage);
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    n.logBase = first - 1;
    n.log = new Array(n.logBase);
    if (last >= first) for (const e of n.storage.entries(first, last + 1)) n.log.push(e);
    n.disk = [];
    n.writing = 0;
    n.pendingInstall = null;
    n.snapping = null;
    n.lastApplied = applied;
    if (applied > 0) this.checkState(n, applied, 'restored from its snapshot');
    // A founding member starts with the bootstrap entries committed: let the checker see
    // that commit like any other. A restarted node resumes from what it had seen.
    n.lastCommit = n.incarnation === 0 ? 0 : n.core.commitIndex;
    n.lastTerm = n.core.currentTerm;
    n.wasLeader = false;
    n.readWaits = [];
    n.held = [];
    // Ticks start at a random phase: real nodes' timers are not aligned.
    this.schedule({ time: this.now + 1 + this.rnd(TICK_US), kind: 'tick', node: n.id, inc: n.incarnation });
    this.trace(
      `boot ${n.id}#${n.incarnation} term=${n.core.currentTerm} first=${first} last=${last} commit=${n.lastCommit} applied=${applied}`,
    );
    this.drive(n);
  }

  /** A digest of a node's state machine, compared across replicas at the same index. */
  private checkState(n: SimNode, index: number, how: string): void {
    const digest = [...n.kv.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
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

  private onCoreEvent(n: SimNode, e: RaftEvent): void {
    if (e.type === 'anomaly') this.checker.note('anomaly', n.id, e.detail);
    if (e.type === 'electionStarted' && !e.preVote) this.stats.elections++;
    if (e.type === 'leaderChanged' && e.leaderId !== null) this.believedLeader = e.leaderId;
  }

  // ---------------------------------------------------------------- events

  private schedule(ev: DistributiveOmit<SimEvent, 'seq'>): void {
    (ev as SimEvent).seq = this.seq++;
    this.heap.push(ev as SimEvent);
  }

  private async handle(ev: SimEvent): Promise<void> {
    switch (ev.kind) {
      case 'tick': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        this.schedule({ time: ev.time + TICK_US, kind: 'tick', node: n.id, inc: n.incarnation });
        if (n.paused) return; // a paused process's timers do not fire
        n.core.tick();
        this.drive(n);
        return;
      }
      case 'deliver': {
        const n = this.nodes.get(ev.msg.to);
        if (!n?.up) return;
        if (n.paused) {
          n.held.push(ev);
          return;
        }
        this.trace(`  ${formatMessage(ev.msg)}`);
        n.core.step(ev.msg);
        this.drive(n);
        return;
      }
      case 'deliverSnapshot': {
        const n = this.nodes.get(ev.msg.to);
        const sender = this.nodes.get(ev.msg.from)!;
        const done = (ok: boolean) =>
          this.schedule({
            time: this.now + 100 + this.rnd(1_500),
            kind: 'snapshotDone',
            node: ev.msg.from,
            inc: sender.incarnation,
            peer: ev.msg.to,
            ok,
          });
        if (!n?.up) return done(false);
        if (n.paused) {
          n.held.push(ev);
          return;
        }
        // As the runtime does: store the data whole, then let the core take the message.
        if (ev.msg.term >= n.core.currentTerm && ev.msg.snapshot.index > n.core.commitIndex) {
          n.snap = { meta: ev.msg.snapshot, kv: ev.kv };
        }
        this.trace(`  ${formatMessage(ev.msg)} (with data)`);
        n.core.step(ev.msg);
        this.drive(n);
        done(true);
        return;
      }
      case 'snapshotDone': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        n.core.reportSnapshot(ev.peer, ev.ok);
        this.drive(n);
        return;
      }
      case 'snapshotStored': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) {
          this.stats.snapshotsLostToCrash++; // crashed while writing it: the old one stays
          return;
        }
        this.snapshotStored(n, ev.meta, ev.kv);
        this.drive(n);
        return;
      }
      case 'write': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        await this.diskWrite(n);
        return;
      }
      case 'ack': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        if (n.paused) {
          n.held.push(ev);
          return;
        }
        this.diskAck(n);
        return;
      }
      case 'restart': {
        const n = this.nodes.get(ev.node)!;
        if (n.up) return;
        n.storage = await this.storage.reopen(n.id, n.storage);
        n.up = true;
        n.paused = false;
        n.incarnation++;
        await this.boot(n);
        return;
      }
      case 'resume': {
        const n = this.nodes.get(ev.node)!;
        if (!n.paused) return;
        n.paused = false;
        this.trace(`resume ${n.id}`);
        const held = n.held;
        n.held = [];
        for (const h of held) this.schedule({ ...h, time: this.now } as DistributiveOmit<SimEvent, 'seq'>);
        return;
      }
      case 'heal': {
        for (const c of ev.cut) this.cut.delete(c);
        this.trace(`heal ${ev.cut.length} links`);
        return;
      }
    }
  }

  // ---------------------------------------------------------------- the host

  /** What the runtime does after every input: take readies, send, queue writes, apply. */
  private drive(n: SimNode): void {
    const core = n.core;
    while (core.hasReady()) {
      const rd = core.ready();
      for (const m of rd.messages) this.send(m);
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
      n.disk.push(rd);
      if (n.writing === 0) this.startWrite(n);
      // Commit and leadership first: entries are committed before they are applied.
      this.observe(n);
      if (rd.snapshot) {
        // The snapshot's data reached our store before the core took it (see deliverSnapshot).
        const snap = n.snap;
        if (!snap || snap.meta.index !== rd.snapshot.index) {
          this.checker.note(
            'crash',
            n.id,
            `installing snapshot ${rd.snapshot.index} that is not in the store`,
          );
        } else {
          n.kv = new Map(snap.kv);
          n.lastApplied = snap.meta.index;
          this.checkState(n, snap.meta.index, 'installed from the leader');
          this.trace(`${n.id} installs snapshot ${snap.meta.term}/${snap.meta.index}`);
        }
      }
      for (const e of rd.committedEntries) this.apply(n, e);
      if (rd.committedEntries.length > 0)
        core.applied(rd.committedEntries[rd.committedEntries.length - 1]!.index);
      for (const rs of rd.readStates) {
        const r = n.reads.get(rs.requestId);
        if (!r) continue;
        if (rs.failed) n.reads.delete(rs.requestId);
        else n.readWaits.push([rs.requestId, rs.index]);
      }
      this.serveReads(n);
      this.maybeSnapshot(n);
    }
    this.observe(n);
  }

  /**
   * Every `snapshotEvery` applied entries: take a view of the state now, and store it some
   * time later, as the runtime streams it to its store while the node goes on. A crash in
   * between loses it (the previous snapshot and the log stay); once stored, the log is
   * compacted behind it.
   */
  private maybeSnapshot(n: SimNode): void {
    if (this.snapshotEvery === 0 || n.snapping) return;
    if (n.lastApplied - (n.snap?.meta.index ?? 0) < this.snapshotEvery) return;
    const meta = n.core.snapshotMetaAt(n.lastApplied);
    if (!meta) return;
    this.checkState(n, meta.index, 'snapshotted');
    n.snapping = meta;
    // Small states take milliseconds; a large one, or a slow disk, hundreds.
    const lat = this.rnd.next() < 0.3 ? 50_000 + this.rnd(300_000) : 1_000 + this.rnd(20_000);
    this.schedule({
      time: this.now + lat,
      kind: 'snapshotStored',
      node: n.id,
      inc: n.incarnation,
      meta,
      kv: new Map(n.kv),
    });
    this.trace(`${n.id} snapshotting ${meta.term}/${meta.index}`);
  }

  private snapshotStored(n: SimNode, meta: SnapshotMeta, kv: Map<string, string>): void {
    n.snapping = null;
    // A newer snapshot from the leader was stored meanwhile: as the runtime, keep that one.
    if (n.snap && n.snap.meta.index >= meta.index) return;
    n.snap = { meta, kv };
    this.stats.snapshotsStored++;
    const st = n.storage;
    const to = Math.max(st.firstIndex() - 1, meta.index - this.snapshotKeep);
    st.compact(to, meta).catch((err) =>
      this.checker.note('crash', n.id, `compaction failed: ${(err as Error).message}`),
    );
    this.trace(`${n.id} snapshot ${meta.term}/${meta.index} stored, log from ${to + 1}`);
  }

  /** Group commit: one write covers every ready queued when it starts. */
  private startWrite(n: SimNode): void {
    if (n.disk.length === 0) return;
    n.writing = n.disk.length;
    const sync = n.disk.some((rd) => rd.mustSync);
    // fsync latency: usually sub-millisecond, sometimes a slow disk; no fsync is quick.
    const lat = !sync
      ? 20 + this.rnd(100)
      : this.rnd.next() < 0.05
        ? 5_000 + this.rnd(20_000)
        : 50 + this.rnd(2_000);
    this.schedule({ time: this.now + lat, kind: 'write', node: n.id, inc: n.incarnation });
  }

  /** The write reaches the disk. A crash after this and before the ack keeps it. */
  private async diskWrite(n: SimNode): Promise<void> {
    const batch = mergeReadies(n.disk.slice(0, n.writing));
    if (batch.hardState) this.checker.onPersistHardState(n.id, batch.hardState);
    if (batch.hardState || batch.entries.length > 0 || batch.snapshot) await n.storage.persist(batch);
    this.schedule({ time: this.now + this.rnd(300), kind: 'ack', node: n.id, inc: n.incarnation });
  }

  /** The host learns the write is durable: tell the core, send what depended on it. */
  private diskAck(n: SimNode): void {
    const done = n.disk.splice(0, n.writing);
    n.writing = 0;
    for (const rd of done) {
      n.core.persisted(rd);
      for (const m of rd.messagesAfterPersist) this.send(m);
    }
    this.startWrite(n);
    this.drive(n);
  }

  private apply(n: SimNode, e: Entry): void {
    this.checker.onApply(n.id, n.lastApplied, e);
    n.lastApplied = e.index;
    if (e.type === EntryType.ConfChange) {
      n.core.applyConfChange(decodeConfChange(e.data));
      return;
    }
    if (e.data.byteLength > 0) {
      const s = dec.decode(e.data);
      const eq = s.indexOf('=');
      const key = s.slice(s.indexOf(':', 2) + 1, eq);
      n.kv.set(key, s.slice(eq + 1));
    }
    if (this.snapshotEvery > 0) this.checkState(n, e.index, 'applied');
    const w = n.writes.get(e.index);
    if (w) {
      n.writes.delete(e.index);
      if (w.term === e.term) {
        this.stats.writesAcked++;
        if (this.crashAwaitingWrite !== null && w.start >= this.crashAwaitingWrite) {
          this.stats.failoverWriteMs.push((this.now - this.crashAwaitingWrite) / 1000);
          this.crashAwaitingWrite = null;
        }
        if (e.index > this.ackedMax) this.ackedMax = e.index;
        if (
          this.quiet &&
          this.stats.quietCommitMs === null &&
          this.quietProbe !== null &&
          w.op >= this.quietProbe
        ) {
          this.stats.quietCommitMs = (this.now - this.quietStart) / 1000;
        }
      } else {
        this.stats.writesFailed++;
      }
    }
  }

  private serveReads(n: SimNode): void {
    if (n.readWaits.length === 0) return;
    const keep: [number, number][] = [];
    for (const w of n.readWaits) {
      if (n.lastApplied >= w[1]) {
        const r = n.reads.get(w[0]);
        n.reads.delete(w[0]);
        if (r) {
          this.checker.onRead(n.id, w[0], w[1], r.mustSee);
          this.stats.readsAcked++;
        }
      } else keep.push(w);
    }
    n.readWaits = keep;
  }

  /** Per-node invariants after each input: term, commit, leadership. */
  private observe(n: SimNode): void {
    const core = n.core;
    const term = core.currentTerm;
    if (term !== n.lastTerm) {
      this.checker.onTerm(n.id, n.lastTerm, term);
      n.lastTerm = term;
      if (term > this.stats.maxTerm) this.stats.maxTerm = term;
    }
    const commit = core.commitIndex;
    if (commit !== n.lastCommit) {
      this.checker.onCommit(n.id, term, n.lastCommit, commit, n.log);
      n.lastCommit = commit;
    }
    const isLeader = core.currentRole === 'leader';
    if (isLeader && !n.wasLeader) {
      this.checker.onLeader(n.id, n.incarnation, term, n.log, n.logBase);
      this.stats.leaderChanges++;
      this.trace(`${n.id} leads term ${term}`);
      if (this.stats.firstLeaderMs === null) this.stats.firstLeaderMs = this.now / 1000;
      if (this.lastLeaderCrash !== null) {
        this.stats.failoverMs.push((this.now - this.lastLeaderCrash) / 1000);
        this.lastLeaderCrash = null;
      }
      if (this.quiet && this.stats.quietLeaderMs === null)
        this.stats.quietLeaderMs = (this.now - this.quietStart) / 1000;
    }
    n.wasLeader = isLeader;
  }

  private send(m: Message): void {
    this.stats.messages++;
    if (m.type === 'snapshot') {
      this.sendSnapshot(m);
      return;
    }
    if (this.cut.has(`${m.from}>${m.to}`)) return;
    if (!this.quiet && this.rnd.next() < this.dropRate) return;
    const delay = (): number =>
      !this.quiet && this.rnd.next() < this.faults.slow ? 5_000 + this.rnd(60_000) : 100 + this.rnd(1_500);
    this.schedule({ time: this.now + delay(), kind: 'deliver', msg: m });
    if (!this.quiet && this.rnd.next() < this.faults.duplicate) {
      this.schedule({ time: this.now + delay(), kind: 'deliver', msg: m });
    }
  }

  /** Stream the sender's snapshot to a follower (the data travels with the message). */
  private sendSnapshot(m: Extract<Message, { type: 'snapshot' }>): void {
    const from = this.nodes.get(m.from)!;
    const fail = (after: number) =>
      this.schedule({
        time: this.now + after,
        kind: 'snapshotDone',
        node: m.from,
        inc: from.incarnation,
        peer: m.to,
        ok: false,
      });
    const snap = from.snap;
    if (!snap || snap.meta.index !== m.snapshot.index || snap.meta.term !== m.snapshot.term) {
      fail(1_000);
      return;
    }
    if (this.cut.has(`${m.from}>${m.to}`) || (!this.quiet && this.rnd.next() < this.dropRate)) {
      fail(50_000);
      return;
    }
    this.stats.snapshotsSent++;
    this.schedule({
      time: this.now + 1_000 + this.rnd(20_000),
      kind: 'deliverSnapshot',
      msg: m,
      kv: new Map(snap.kv),
    });
  }

  // ---------------------------------------------------------------- clients

  private clientOps(): void {
    const rate = this.opts.clientRate ?? 0.5;
    let k = 0;
    while (this.rnd.next() < rate / (k + 1) && k < 4) {
      k++;
      const live = [...this.nodes.keys()].filter((id) => this.nodes.get(id)!.up);
      if (live.length === 0) return;
      const target =
        this.believedLeader && this.nodes.get(this.believedLeader)!.up && this.rnd.next() < 0.85
          ? this.believedLeader
          : live[this.rnd(live.length)]!;
      const n = this.nodes.get(target)!;
      if (n.paused) continue;
      if (this.rnd.next() < 0.7) this.clientWrite(n);
      else this.clientRead(n);
    }
  }

  private clientWrite(n: SimNode): void {
    const op = ++this.opSeq;
    const key = `k${this.rnd(8)}`;
    try {
      const r = n.core.propose(enc.encode(`w:${op}:${key}=${op}`));
      n.writes.set(r.index, { term: r.term, op, start: this.now });
      this.trace(`client w${op} -> ${n.id} at ${r.term}/${r.index}`);
    } catch (err) {
      if (err instanceof NotLeaderError) {
        if (err.leaderId) this.believedLeader = err.leaderId;
      } else if (!(err instanceof RaftError)) throw err;
    }
    this.drive(n);
  }

  private clientRead(n: SimNode): void {
    const id = ++this.reqSeq;
    try {
      n.core.readIndex(id);
      n.reads.set(id, { start: this.now, mustSee: this.ackedMax });
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
    this.drive(n);
  }

  // ---------------------------------------------------------------- faults

  private async injectFaults(): Promise<void> {
    const f = this.faults;
    const r = this.rnd;
    if (r.next() < f.crash) this.crash(this.pickLive());
    if (r.next() < f.crashLeader) {
      const leader = [...this.nodes.values()].find((n) => n.up && n.core.currentRole === 'leader');
      if (leader) this.crash(leader);
    }
    if (r.next() < f.partition) this.partition();
    if (r.next() < f.membership) await this.changeMembership();
    if (r.next() < f.pause) {
      const n = this.pickLive();
      if (n && !n.paused) {
        n.paused = true;
        this.stats.pauses++;
        this.trace(`pause ${n.id}`);
        this.schedule({ time: this.now + this.span(f.pauseSteps), kind: 'resume', node: n.id });
      }
    }
  }

  /**
   * One membership step, through the current leader: a spare node joins as a learner, a
   * learner is promoted, or a voter (perhaps the leader itself) is removed. Removed
   * nodes keep running: they must not disturb the cluster. Ids are never reused.
   */
  private async changeMembership(): Promise<void> {
    const leader = [...this.nodes.values()].find((n) => n.up && !n.paused && n.core.currentRole === 'leader');
    if (!leader) return;
    const st = leader.core.status();
    let cc: ConfChange | null = null;
    const learner = st.learners[0];
    if (learner !== undefined) {
      cc = { kind: 'addVoter', node: learner };
    } else if (st.voters.length < 7 && this.spareIds > 0 && this.rnd.next() < 0.5) {
      const id = `n${this.nodes.size + 1}`;
      this.spareIds--;
      await this.addNode(id, { voters: [], learners: [], votersOutgoing: [] });
      cc = { kind: 'addLearner', node: id };
    } else if (st.voters.length > 3) {
      cc = { kind: 'remove', node: st.voters[this.rnd(st.voters.length)]! };
    }
    if (!cc) return;
    try {
      leader.core.proposeConfChange(cc);
      this.stats.confChanges++;
      this.trace(`conf ${cc.kind} ${cc.node} via ${leader.id}`);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
    this.drive(leader);
  }

  private pickLive(): SimNode | undefined {
    const live = [...this.nodes.values()].filter((n) => n.up);
    return live.length > 0 ? live[this.rnd(live.length)] : undefined;
  }

  private span(range: readonly [number, number]): number {
    return (range[0] + this.rnd(range[1] - range[0] + 1)) * TICK_US;
  }

  private crash(n: SimNode | undefined): void {
    if (!n?.up) return;
    this.stats.crashes++;
    this.trace(
      `CRASH ${n.id}#${n.incarnation} (${n.core.currentRole}, term ${n.core.currentTerm}, ${n.disk.length} writes lost)`,
    );
    if (n.core.currentRole === 'leader') {
      this.lastLeaderCrash = this.now;
      this.crashAwaitingWrite = this.now;
    }
    n.up = false;
    n.paused = false;
    n.held = [];
    n.disk = [];
    n.writes.clear();
    n.reads.clear();
    n.readWaits = [];
    this.schedule({ time: this.now + this.span(this.faults.downSteps), kind: 'restart', node: n.id });
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    const r = this.rnd;
    const links: string[] = [];
    const mode = r(3);
    if (mode === 0) {
      // Split into two sides.
      const side = new Set(ids.filter(() => r.next() < 0.5));
      for (const a of ids)
        for (const b of ids) if (a !== b && side.has(a) !== side.has(b)) links.push(`${a}>${b}`);
      this.trace(`partition {${[...side].join(',')}} | rest`);
    } else if (mode === 1) {
      // Isolate one node.
      const x = ids[r(ids.length)]!;
      for (const b of ids) if (b !== x) links.push(`${x}>${b}`, `${b}>${x}`);
      this.trace(`isolate ${x}`);
    } else {
      // One-way: a node can send but not receive from some others (or the reverse).
      const x = ids[r(ids.length)]!;
      const outbound = r.next() < 0.5;
      for (const b of ids) {
        if (b === x || r.next() < 0.5) continue;
        links.push(outbound ? `${x}>${b}` : `${b}>${x}`);
      }
      this.trace(`one-way ${outbound ? 'from' : 'to'} ${x}: ${links.length} links`);
    }
    const added = links.filter((l) => !this.cut.has(l));
    for (const l of added) this.cut.add(l);
    this.stats.partitions++;
    this.schedule({ time: this.now + this.span(this.faults.partitionSteps), kind: 'heal', cut: added });
  }

  /** Faults stop: heal the network, restart crashed nodes, resume paused ones. */
  private async startQuiet(): Promise<void> {
    this.quiet = true;
    this.quietStart = this.now;
    this.cut.clear();
    this.trace('QUIET: faults stop');
    for (const n of this.nodes.values()) {
      if (!n.up) this.schedule({ time: this.now, kind: 'restart', node: n.id });
      else if (n.paused) this.schedule({ time: this.now, kind: 'resume', node: n.id });
    }
    this.quietProbe = this.opSeq + 1;
    if ([...this.nodes.values()].some((n) => n.up && n.core.currentRole === 'leader')) {
      // A leader may already be in place; it still has to commit a new write.
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
      const leader = [...this.nodes.values()].find((n) => n.up && n.core.currentRole === 'leader');
      const st = leader?.core.status();
      const members = new Set(st ? [...st.voters, ...st.learners] : this.nodes.keys());
      for (const n of this.nodes.values()) {
        if (!members.has(n.id)) continue;
        if (n.lastApplied < this.catchUpTarget) {
          this.checker.note(
            'liveness',
            n.id,
            `${n.id} applied only ${n.lastApplied} by the end; ${this.catchUpTarget} was committed a second earlier`,
          );
        }
      }
    }
  }

  private trace(line: string): void {
    const t = (this.now / 1000).toFixed(3).padStart(10);
    this.traceRing.push(`${t}ms ${line}`);
    if (this.traceRing.length > this.traceSize) this.traceRing.shift();
  }
}

/** Run one seed. */
export function simulate(opts: SimOptions): Promise<SimResult> {
  return new Simulation(opts).run();
}
