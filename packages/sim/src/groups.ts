/**
 * The simulator's multi-group mode: every simulated node is a `MultiRaftHost` (the code
 * that ships in `@quorate/multiraft`) hosting `groups` Raft groups, on virtual time, over
 * a simulated network that carries every group's messages and the hosts' own (liveness,
 * quiescence) between the same nodes. Faults hit nodes, so all their groups at once:
 * crashes (every group restarts from its disk), partitions, loss, duplicates, delays.
 * Each group has its own `SafetyChecker` (the same invariants as one group), its replicas'
 * states are compared index by index, and the clients' history, with keys per group, is
 * checked for linearizability. One seed decides everything; the digest identifies a run.
 */
import { checkHistory, type HistoryEvent } from '@quorate/checker';
import { MultiRaftHost } from '@quorate/multiraft';
import {
  type Entry,
  type GroupId,
  type GroupTransport,
  type GroupTransportHandler,
  type HostMessage,
  MemoryStorage,
  type Message,
  type NodeId,
  RaftError,
  type SnapshotRequest,
} from '@quorate/raft';
import { type Ready, seededRandom } from '@quorate/raft/core';
import { formatMessage } from '@quorate/raft/testing';
import { Digest } from './digest.js';
import { type DiskHost, NodeDisk, SimLog, SimSnapshots } from './disk.js';
import { encodeOp, type KvResult, SimKV } from './kv.js';
import { SafetyChecker, type Violation } from './safety.js';
import { TICK_US } from './simulator.js';
import { SimProcess, SimTimers, World } from './world.js';

export interface GroupSimOptions {
  seed: number;
  /** Simulated nodes (hosts). Default 3. */
  hosts?: number;
  /** Raft groups per host; every host is a member of every group. Default 8. */
  groups?: number;
  /** Steps of 10 ms. Default 1500. */
  steps?: number;
  /** Final steps without faults, in which every group must elect and commit. Default 400. */
  quietSteps?: number;
  /** Quiesce idle groups. Default true. */
  quiesce?: boolean;
  /** Client operations per step over all groups. Default 1. */
  clientRate?: number;
  /** Per step: probability that a node crashes, and that a partition starts. */
  crash?: number;
  partition?: number;
  /** Per message: loss (each run draws its rate in [0, this]), duplicates, long delays. */
  drop?: number;
  duplicate?: number;
  slow?: number;
  /** Snapshot every N applied entries per group (0: never). Default by seed: 0, 15 or 50. */
  snapshotEvery?: number;
  /**
   * `crash-quiesced-leader`: no faults and no clients; once every group is quiesced on
   * every node, the node leading the most groups crashes, and `failoverMs` records, per
   * group it led, how long until another node led it.
   */
  scenario?: 'random' | 'crash-quiesced-leader';
  /** Keep the last trace lines even when the run passes (default: only when it fails). */
  keepTrace?: boolean;
  /** Trace lines kept. Default 120. */
  traceSize?: number;
}

export interface GroupSimResult {
  readonly seed: number;
  readonly hosts: number;
  readonly groups: number;
  readonly violations: readonly Violation[];
  readonly digest: string;
  readonly trace: readonly string[];
  readonly stats: {
    crashes: number;
    partitions: number;
    messages: number;
    hostMessages: number;
    writesAcked: number;
    readsAcked: number;
    opsChecked: number;
    /** Group quiescences and wake-ups, summed over nodes. */
    quiesced: number;
    woke: number;
    /** Scenario `crash-quiesced-leader`: virtual ms from the crash to a new leader, per group. */
    failoverMs: number[];
    /** Whether every group was quiesced on every node before that crash. */
    allQuiescedBeforeCrash: boolean;
  };
}

interface Replica {
  readonly group: GroupId;
  readonly disk: NodeDisk;
  kv: SimKV;
  snaps: SimSnapshots | null;
  log: Entry[];
  logBase: number;
  logLoaded: boolean;
  lastCommit: number;
  lastTerm: number;
  wasLeader: boolean;
}

interface SimHost {
  readonly id: NodeId;
  incarnation: number;
  proc: SimProcess;
  host: MultiRaftHost | null;
  up: boolean;
  /** Every group added (clients use the node then). */
  ready: boolean;
  readonly replicas: Replica[];
}

interface GroupState {
  readonly checker: SafetyChecker;
  readonly stateAt: Map<number, string>;
  believedLeader: NodeId | null;
  quietWrite: boolean;
}

const SNAPSHOT_STALL_US = 2_000_000;

export class GroupSimulation {
  private readonly world: World;
  private readonly digest = new Digest();
  private readonly ring: string[] = [];
  private readonly ids: NodeId[];
  private readonly nodes = new Map<NodeId, SimHost>();
  private readonly groups: GroupState[] = [];
  private readonly cut = new Set<string>();
  private readonly endpoints = new Map<NodeId, { proc: SimProcess; handler: GroupTransportHandler }>();
  private readonly history: HistoryEvent[] = [];
  private readonly notes: Violation[] = [];
  private readonly dropRate: number;
  private readonly snapshotEvery: number;
  private quiet = false;
  private quietStart = 0;
  private opSeq = 0;
  private processSeq = 0;
  private crashAt: number | null = null;
  private ledByVictim: GroupId[] = [];
  private readonly stats: GroupSimResult['stats'] = {
    crashes: 0,
    partitions: 0,
    messages: 0,
    hostMessages: 0,
    writesAcked: 0,
    readsAcked: 0,
    opsChecked: 0,
    quiesced: 0,
    woke: 0,
    failoverMs: [],
    allQuiescedBeforeCrash: false,
  };

  constructor(private readonly o: GroupSimOptions) {
    this.world = new World(o.seed);
    const r = this.world.rnd;
    this.ids = Array.from({ length: o.hosts ?? 3 }, (_, i) => `n${i + 1}`);
    this.dropRate = r.next() * (o.drop ?? 0.05);
    this.snapshotEvery = o.snapshotEvery ?? [0, 15, 50][r(3)]!;
    for (let g = 0; g < (o.groups ?? 8); g++) {
      const checker = new SafetyChecker();
      this.groups.push({ checker, stateAt: new Map(), believedLeader: null, quietWrite: false });
    }
    this.world.onTime = (now) => {
      for (const g of this.groups) g.checker.now = now;
    };
  }

  private get ok(): boolean {
    return this.notes.length === 0 && this.groups.every((g) => g.checker.ok);
  }

  async run(): Promise<GroupSimResult> {
    const steps = this.o.steps ?? 1500;
    const scenario = this.o.scenario ?? 'random';
    const quietFrom = steps - Math.min(this.o.quietSteps ?? 400, steps);
    try {
      for (const id of this.ids) {
        const n: SimHost = {
          id,
          incarnation: -1,
          proc: null as never,
          host: null,
          up: false,
          ready: false,
          replicas: [],
        };
        for (let g = 0; g < this.groups.length; g++) {
          n.replicas.push({
            group: g,
            disk: new NodeDisk(id, new MemoryStorage()),
            kv: null as never,
            snaps: null,
            log: [],
            logBase: 0,
            logLoaded: false,
            lastCommit: 0,
            lastTerm: 0,
            wasLeader: false,
          });
        }
        this.nodes.set(id, n);
        this.boot(n);
      }
      if (scenario === 'random' && (this.o.clientRate ?? 1) > 0) this.startClients();
      // The scenario measures failover alone: a network without loss or long delays.
      if (scenario !== 'random') this.quiet = true;
      for (let step = 0; step < steps; step++) {
        if (scenario === 'random') {
          if (step === quietFrom) this.startQuiet();
          if (!this.quiet) this.injectFaults();
        } else if (this.crashAt === null && step >= 100 && this.allQuiesced()) {
          this.crashBusiestLeader();
        }
        await this.world.runUntil((step + 1) * TICK_US, () => !this.ok);
        if (!this.ok) break;
      }
      if (this.ok) this.checkLiveness(scenario);
      if (this.history.length > 0) await this.checkLinearizable();
    } catch (err) {
      this.note(`the simulation threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    const violations = [
      ...this.notes,
      ...this.groups.flatMap((g, i) =>
        g.checker.violations.map((v) => ({ ...v, detail: `group ${i}: ${v.detail}` })),
      ),
    ];
    return {
      seed: this.o.seed,
      hosts: this.ids.length,
      groups: this.groups.length,
      violations,
      digest: this.digest.hex(),
      trace: violations.length > 0 || this.o.keepTrace ? [...this.ring] : [],
      stats: this.stats,
    };
  }

  // ---------------------------------------------------------------- nodes

  private boot(n: SimHost): void {
    n.incarnation++;
    const proc = new SimProcess(n.id, n.incarnation, this.world);
    n.proc = proc;
    n.up = true;
    n.ready = false;
    const seed = this.o.seed;
    const host = new MultiRaftHost({
      id: n.id,
      transport: this.transportFor(n.id, proc),
      timers: new SimTimers(this.world, proc),
      tickMs: 10,
      heartbeatIntervalMs: 50,
      electionTimeoutMs: 150,
      requestTimeoutMs: 1000,
      quiesce: this.o.quiesce ?? true,
      incarnation: n.incarnation + 1,
      random: (g) =>
        seededRandom(seed * 7919 + Number(n.id.slice(1)) * 104729 + n.incarnation * 31 + g * 613),
    });
    n.host = host;
    host.events.onAny((e) => {
      if (!proc.alive) return;
      if (e.type === 'quiesced') this.stats.quiesced++;
      else if (e.type === 'woke') this.stats.woke++;
      if (e.type !== 'quiesced' && e.type !== 'woke') this.trace(`${n.id}: ${JSON.stringify(e)}`);
    });
    this.trace(`boot ${n.id}#${n.incarnation}`);
    this.digest.add(`boot ${n.id} ${n.incarnation}`);
    void (async () => {
      await host.start();
      for (const r of n.replicas) {
        const g = this.groups[r.group]!;
        r.kv = new SimKV({
          applied: (e, previous) => {
            for (let i = previous + 1; i < e.index; i++) g.checker.onApplySkipped(n.id, i);
            g.checker.onApply(n.id, e.index - 1, e);
            this.checkState(r, e.index, n.id);
            this.digest.add(`apply ${n.id} ${r.group} ${e.term}/${e.index}`);
          },
          restored: (meta) => {
            this.checkState(r, meta.index, n.id);
            this.digest.add(`restore ${n.id} ${r.group} ${meta.index}`);
          },
        });
        r.logLoaded = false;
        r.wasLeader = false;
        r.lastCommit = 0;
        r.lastTerm = r.disk.log.initialState().hardState.term;
        const disk = this.diskHost(r.group);
        r.snaps = new SimSnapshots(r.disk, this.world, proc, disk);
        const node = await host.addGroup<KvResult>({
          group: r.group,
          storage: new SimLog(r.disk, this.world, proc, disk),
          stateMachine: r.kv,
          members: this.ids,
          ...(this.snapshotEvery > 0
            ? { snapshots: { store: r.snaps, everyEntries: this.snapshotEvery, keepEntries: 5 } }
            : {}),
          onReady: (rd) => this.onReady(n, proc, r, rd),
        });
        node.events.onAny((e) => {
          if (!proc.alive) return;
          if (e.type === 'anomaly') g.checker.note('anomaly', n.id, e.detail);
          else if (e.type === 'stopped' && e.error)
            g.checker.note('crash', n.id, `group ${r.group} stopped itself: ${e.error.message}`);
          else if (e.type === 'leaderChanged' && e.leaderId !== null) g.believedLeader = e.leaderId;
        });
      }
      if (proc.alive) n.ready = true;
    })().catch((err: unknown) => {
      if (proc.alive) this.note(`${n.id} failed to start: ${(err as Error)?.message ?? err}`);
    });
  }

  private diskHost(group: GroupId): DiskHost {
    const g = this.groups[group]!;
    return {
      durableHardState: (id, hs) => g.checker.onPersistHardState(id, hs),
      durableBatch: (id, b) =>
        this.digest.add(
          `disk ${id} ${group} ${b.entries.length > 0 ? `${b.entries[0]!.index}+${b.entries.length}` : ''}`,
        ),
      snapshotTorn: () => {},
    };
  }

  private onReady(n: SimHost, proc: SimProcess, r: Replica, rd: Readonly<Ready>): void {
    if (!proc.alive) return;
    const g = this.groups[r.group]!;
    if (!r.logLoaded) {
      const st = r.disk.log;
      const first = st.firstIndex();
      const last = st.lastIndex();
      r.logBase = first - 1;
      r.log = new Array(r.logBase);
      if (last >= first) for (const e of st.entries(first, last + 1)) r.log.push(e);
      r.lastCommit = n.incarnation === 0 ? 0 : st.initialState().hardState.commit;
      r.logLoaded = true;
    }
    if (rd.snapshot) {
      r.logBase = rd.snapshot.index;
      r.log = new Array(r.logBase);
    }
    if (rd.entries.length > 0) {
      g.checker.onAppend(n.id, r.log, r.logBase, rd.entries, r.lastCommit);
      r.log.length = rd.entries[0]!.index - 1;
      for (const e of rd.entries) r.log.push(e);
    }
    const node = n.host!.group(r.group);
    if (!node) return;
    const term = node.term;
    if (term !== r.lastTerm) {
      g.checker.onTerm(n.id, r.lastTerm, term);
      r.lastTerm = term;
    }
    const commit = node.commitIndex;
    if (commit !== r.lastCommit) {
      g.checker.onCommit(n.id, term, r.lastCommit, commit, r.log);
      r.lastCommit = commit;
    }
    const leads = node.role === 'leader';
    if (leads && !r.wasLeader) {
      g.checker.onLeader(n.id, n.incarnation, term, r.log, r.logBase);
      this.trace(`${n.id} leads group ${r.group} in term ${term}`);
      this.digest.add(`lead ${n.id} ${r.group} ${term}`);
      if (this.crashAt !== null && this.ledByVictim.includes(r.group)) {
        this.stats.failoverMs.push((this.world.now - this.crashAt) / 1000);
        this.ledByVictim = this.ledByVictim.filter((x) => x !== r.group);
      }
    }
    r.wasLeader = leads;
  }

  private checkState(r: Replica, index: number, node: NodeId): void {
    const g = this.groups[r.group]!;
    const d = r.kv.digest();
    const seen = g.stateAt.get(index);
    if (seen === undefined) g.stateAt.set(index, d);
    else if (seen !== d) g.checker.note('apply-diverged', node, `state at ${index} differs: ${d} vs ${seen}`);
  }

  private crash(n: SimHost, restartAfterUs: number | null): void {
    if (!n.up) return;
    this.stats.crashes++;
    this.trace(`CRASH ${n.id}#${n.incarnation}`);
    this.digest.add(`crash ${n.id}`);
    for (const r of n.replicas) r.snaps?.crashed();
    n.proc.crash();
    this.endpoints.delete(n.id);
    n.up = false;
    n.ready = false;
    n.host = null;
    if (restartAfterUs !== null) this.world.after(restartAfterUs, () => this.restart(n));
  }

  private restart(n: SimHost): void {
    if (!n.up) this.boot(n);
  }

  // ---------------------------------------------------------------- the network

  private transportFor(id: NodeId, proc: SimProcess): GroupTransport {
    const net = this;
    let open = false;
    return {
      async start(handler) {
        open = true;
        net.endpoints.set(id, { proc, handler });
      },
      send(group, msg) {
        if (open && proc.alive)
          net.send(
            id,
            msg.to,
            proc,
            (h) => h.onMessage(group, msg),
            () => net.delivered(group, msg),
          );
      },
      sendHost(to, msg) {
        if (open && proc.alive)
          net.send(
            id,
            to,
            proc,
            (h) => h.onHostMessage(id, msg),
            () => net.hostDelivered(id, to, msg),
          );
      },
      sendSnapshot(group, msg, data) {
        if (!open) return Promise.reject(new Error('the transport is closed'));
        return net.sendSnapshot(group, msg, data, proc);
      },
      async close() {
        open = false;
        if (net.endpoints.get(id)?.proc === proc) net.endpoints.delete(id);
      },
    };
  }

  private latency(): number {
    const r = this.world.rnd;
    return !this.quiet && r.next() < (this.o.slow ?? 0.03) ? 5_000 + r(60_000) : 100 + r(1_500);
  }

  private send(
    from: NodeId,
    to: NodeId,
    sender: SimProcess,
    deliver: (h: GroupTransportHandler) => void,
    note: () => void,
  ): void {
    const r = this.world.rnd;
    if (this.cut.has(`${from}>${to}`)) {
      if (r.next() < 0.3) {
        this.world.after(1_000 + r(5_000), () =>
          sender.run(() => this.endpoints.get(from)?.handler.onUnreachable?.(to)),
        );
      }
      return;
    }
    if (!this.quiet && r.next() < this.dropRate) return;
    const go = () => {
      const ep = this.endpoints.get(to);
      if (!ep) return;
      ep.proc.run(() => {
        if (this.endpoints.get(to) !== ep) return;
        note();
        deliver(ep.handler);
      });
    };
    this.world.after(this.latency(), go);
    if (!this.quiet && r.next() < (this.o.duplicate ?? 0.02)) this.world.after(this.latency(), go);
  }

  private delivered(group: GroupId, m: Message): void {
    this.stats.messages++;
    const line = `g${group} ${formatMessage(m)}`;
    this.trace(`  ${line}`);
    this.digest.add(line);
  }

  private hostDelivered(from: NodeId, to: NodeId, m: HostMessage): void {
    this.stats.hostMessages++;
    if (m.type === 'alive') return;
    // Coalesced heartbeats: traced as the Raft messages they carry.
    if (m.type === 'beats') {
      for (const b of m.items) this.delivered(b.group, b.msg);
      return;
    }
    const line = `${from}->${to} ${JSON.stringify(m)}`;
    this.trace(`  ${line}`);
    this.digest.add(line);
  }

  private async sendSnapshot(
    group: GroupId,
    m: SnapshotRequest,
    data: AsyncIterable<Uint8Array>,
    sender: SimProcess,
  ): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const c of data) chunks.push(c);
    const r = this.world.rnd;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, afterUs: number) => {
        if (settled) return;
        settled = true;
        this.world.after(afterUs, () => sender.run(() => (err ? reject(err) : resolve())));
      };
      if (this.cut.has(`${m.from}>${m.to}`)) {
        settle(new Error('the link is down'), 50_000);
        return;
      }
      this.world.after(SNAPSHOT_STALL_US, () => settle(new Error('the receiver stalled'), 0));
      this.world.after(1_000 + r(20_000), () => {
        const ep = this.endpoints.get(m.to);
        if (!ep || this.cut.has(`${m.from}>${m.to}`)) {
          settle(new Error('the receiver is unreachable'), 1_000);
          return;
        }
        ep.proc.run(() => {
          const on = ep.handler.onSnapshot;
          if (!on) return settle(new Error('no snapshots taken'), 1_000);
          this.delivered(group, m);
          async function* stream(): AsyncIterable<Uint8Array> {
            yield* chunks;
          }
          on(group, m, stream()).then(
            () => settle(null, this.latency()),
            (err: unknown) => settle(new Error(`refused: ${(err as Error)?.message ?? err}`), this.latency()),
          );
        });
      });
    });
  }

  // ---------------------------------------------------------------- faults

  private injectFaults(): void {
    const r = this.world.rnd;
    if (r.next() < (this.o.crash ?? 0.003)) {
      const live = [...this.nodes.values()].filter((n) => n.up);
      const n = live[r(live.length)];
      if (n) this.crash(n, (10 + r(200)) * TICK_US);
    }
    if (r.next() < (this.o.partition ?? 0.004)) {
      const x = this.ids[r(this.ids.length)]!;
      const links: string[] = [];
      for (const b of this.ids) if (b !== x && r.next() < 0.7) links.push(`${x}>${b}`, `${b}>${x}`);
      const added = links.filter((l) => !this.cut.has(l));
      for (const l of added) this.cut.add(l);
      this.stats.partitions++;
      this.trace(`cut ${added.join(' ')}`);
      this.digest.add(`cut ${added.join(' ')}`);
      this.world.after((20 + r(250)) * TICK_US, () => {
        for (const l of added) this.cut.delete(l);
        this.trace(`heal ${added.length} links`);
      });
    }
  }

  private startQuiet(): void {
    this.quiet = true;
    this.quietStart = this.world.now;
    this.cut.clear();
    this.trace('QUIET: faults stop');
    for (const n of this.nodes.values()) if (!n.up) this.world.after(0, () => this.restart(n));
  }

  private allQuiesced(): boolean {
    for (const n of this.nodes.values()) {
      if (!n.up || !n.ready || !n.host) return false;
      if (n.host.stats().quiesced !== this.groups.length) return false;
    }
    return true;
  }

  private crashBusiestLeader(): void {
    this.stats.allQuiescedBeforeCrash = true;
    let victim: SimHost | null = null;
    let most = -1;
    for (const n of this.nodes.values()) {
      const led = n.host!.stats().leaders;
      if (led > most) {
        most = led;
        victim = n;
      }
    }
    this.ledByVictim = victim!.replicas
      .filter((r) => victim!.host!.group(r.group)?.isLeader)
      .map((r) => r.group);
    this.crashAt = this.world.now;
    this.trace(`crash ${victim!.id}, leader of groups ${this.ledByVictim.join(',')}`);
    this.crash(victim!, null);
  }

  private checkLiveness(scenario: string): void {
    if (scenario === 'crash-quiesced-leader') {
      if (this.crashAt === null) this.note('the groups never all quiesced, so no leader was crashed');
      else if (this.ledByVictim.length > 0)
        this.note(`groups ${this.ledByVictim.join(',')} elected no new leader after their leader crashed`);
      return;
    }
    for (let g = 0; g < this.groups.length; g++) {
      const leaders = [...this.nodes.values()].filter((n) => n.up && n.host?.group(g)?.isLeader);
      if (leaders.length === 0) this.note(`group ${g} has no leader at the end`);
      if ((this.o.clientRate ?? 1) >= 0.5 && !this.groups[g]!.quietWrite) {
        this.note(`group ${g} acknowledged no write after faults stopped`);
      }
    }
  }

  // ---------------------------------------------------------------- clients

  private startClients(): void {
    for (let i = 0; i < 4; i++) void this.clientLoop(this.processSeq++);
  }

  private async clientLoop(process: number): Promise<void> {
    const think = Math.max(1, Math.round((4 * TICK_US) / (this.o.clientRate ?? 1)));
    let p = process;
    for (;;) {
      await this.world.sleep(this.world.rnd(2 * think));
      p = await this.clientOp(p);
    }
  }

  /** One put or read on a random group; returns the client's process id (new after an unknown outcome). */
  private async clientOp(process: number): Promise<number> {
    const r = this.world.rnd;
    const group = r(this.groups.length);
    const key = `k${r(2)}`;
    const hkey = `g${group}/${key}`;
    const put = r.next() < 0.6;
    const opId = ++this.opSeq;
    const value = String(opId);
    const start = this.world.now;
    const record = (type: HistoryEvent['type'], v: unknown) => {
      this.history.push({
        process,
        type,
        f: put ? 'put' : 'get',
        key: hkey,
        value: v,
        time: this.world.now * 1000,
      });
      if (type !== 'invoke') this.digest.add(`${process} ${type} ${hkey} ${JSON.stringify(v)}`);
    };
    record('invoke', put ? value : null);
    let target = this.groups[group]!.believedLeader;
    for (let attempt = 0; attempt < 3; attempt++) {
      const live = [...this.nodes.values()].filter((n) => n.up && n.ready);
      if (live.length === 0) break;
      const n = live.find((x) => x.id === target && r.next() < 0.85) ?? live[r(live.length)]!;
      const host = n.host!;
      const replica = n.replicas[group]!;
      const left = Math.max(1000, start + 1_000_000 - this.world.now);
      const call = put
        ? host.propose<KvResult>(group, encodeOp({ f: 'put', op: opId, key, value }), {
            timeoutMs: left / 1000,
          })
        : host.read(group, { timeoutMs: left / 1000 }).then(() => undefined);
      const proc = n.proc;
      const out = await Promise.race([
        call.then(
          (v) => ({ v }),
          (err: unknown) => ({ err }),
        ),
        this.world.sleep(left + 50_000).then(() => ({ late: true as const })),
      ]);
      if (!proc.alive || 'late' in out) {
        if (put) {
          record('info', value);
          return this.processSeq++;
        }
        record('fail', null);
        return process;
      }
      if ('err' in out) {
        const code = out.err instanceof RaftError ? out.err.code : '';
        if (code === 'NOT_LEADER' || code === 'PROPOSAL_DROPPED') {
          target = (out.err as { leaderId?: NodeId | null }).leaderId ?? null;
          continue;
        }
        if (put && code !== 'STOPPED' && code !== 'OVERLOADED') {
          record('info', value);
          return this.processSeq++;
        }
        record('fail', put ? value : null);
        return process;
      }
      if (put) {
        this.stats.writesAcked++;
        if (this.quiet && start >= this.quietStart) this.groups[group]!.quietWrite = true;
        record('ok', value);
      } else {
        this.stats.readsAcked++;
        record('ok', replica.kv.get(key));
      }
      return process;
    }
    record('fail', put ? value : null);
    return process;
  }

  private async checkLinearizable(): Promise<void> {
    const res = await checkHistory(this.history, { budget: 2_000_000 });
    this.stats.opsChecked = res.ops;
    if (res.linearizable === false) {
      for (const f of res.failures)
        this.note(`key ${f.key}: ${f.op.text} by client ${f.op.process} cannot be placed: ${f.reason}`);
    }
  }

  private note(detail: string): void {
    this.notes.push({ kind: 'liveness', time: this.world.now, node: null, detail } as Violation);
  }

  private trace(line: string): void {
    this.ring.push(`${(this.world.now / 1000).toFixed(3).padStart(10)}ms ${line}`);
    if (this.ring.length > (this.o.traceSize ?? 120)) this.ring.shift();
  }
}

/** Run one seed of the multi-group mode. */
export function simulateGroups(o: GroupSimOptions): Promise<GroupSimResult> {
  return new GroupSimulation(o).run();
}

/** A failing multi-group run as the operator needs it. */
export function formatGroupFailure(r: GroupSimResult): string {
  return [
    `seed ${r.seed} (${r.hosts} nodes x ${r.groups} groups, digest ${r.digest}): ${r.violations.length} violation(s)`,
    ...r.violations.map(
      (v) => `  [${v.kind}] at ${(v.time / 1000).toFixed(3)}ms${v.node ? ` on ${v.node}` : ''}: ${v.detail}`,
    ),
    `  reproduce: pnpm sim -- --groups ${r.groups} --seed ${r.seed}`,
    '  last steps:',
    ...r.trace.map((l) => `    ${l}`),
  ].join('\n');
}
