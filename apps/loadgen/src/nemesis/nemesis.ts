/**
 * The nemesis: faults against a spawned cluster's real processes, drawn by a seed, one at
 * a time (each healed before the next is drawn), each proving that it took effect:
 *
 * - `partition`: nftables rules in the nodes' network namespaces: a minority cut from the
 *   majority, the leader isolated, a "bridge" (two nodes that cannot see each other, both
 *   seeing the third), one direction of one link. Proof: the rules' drop counters, and
 *   (where the cut separates the leader) Raft messages the transports sent across the cut
 *   that the other side never received, from the nodes' own metrics.
 * - `netem`: packets between nodes dropped at random (10–40 %), and with the kernel's
 *   netem also delayed, duplicated and reordered. Proof: the drop counters.
 * - `pause`: SIGSTOP of the leader or a follower, shorter or longer than the election
 *   timeout. Proof: the process is in state T in /proc.
 * - `kill`: kill -9 of one node, the leader, a majority or every node, restarted later.
 *   Proof: each process ended by SIGKILL.
 * - `clock`: a node's clocks (wall and monotonic, through libfaketime) run at ×0.5–×0.8
 *   or ×1.25–×2 for a few seconds (each change steps the clocks forward by up to a second,
 *   never back: see clock.ts), or step 2–30 s forward at once (not with lease reads: a
 *   step is a rate beyond any bound); every node runs with its clocks up to an hour off.
 *   Proof: the rate, offset or step the node itself reports on `/health`, within 10 %.
 * - `disk`: a node's data directory (a small tmpfs) filled below its free-space reserve,
 *   or filled completely. Proof: the node reports `diskFull` (or stops on a failed write).
 *
 * After each heal, the time until every member agrees on one leader is measured.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from '@quorate/checker';
import type { LocalCluster, LocalClusterOptions, SpawnedNode } from '../spawn.js';
import { FakeClock, findLibfaketime } from './clock.js';
import { diskUnavailable, SmallDisk } from './disk.js';
import { NetLab, netlabUnavailable } from './netlab.js';

export const FAMILIES = ['partition', 'netem', 'pause', 'kill', 'clock', 'disk'] as const;
export type Family = (typeof FAMILIES)[number];

export interface NemesisFault {
  family: Family;
  /** What exactly, e.g. `isolate-leader`, `pause-follower-long`, `kill-majority`. */
  kind: string;
  nodes: string[];
  /** The fault's parameters, in words. */
  detail: string;
  /** Seconds since the start of the run. */
  startS: number;
  endS: number | null;
  /** What showed the fault took effect; null when nothing did (the run then fails). */
  proof: string | null;
  /** ms from the heal until every member agreed on one leader (null: not within 10 s). */
  leaderAfterHealMs: number | null;
}

export interface NemesisSummary {
  families: Family[];
  skipped: { family: Family; reason: string }[];
  faults: NemesisFault[];
  /** Every member's state hash equal at the same applied index after the run. */
  stateHashesEqual: boolean | null;
  /** A write sent after the last heal was acknowledged. */
  writesAfterLastHeal: boolean | null;
  /** Why the nemesis part of the run failed, if it did. */
  failures: string[];
}

export interface NemesisOptions {
  families: Family[];
  seed: number;
  /** Mean time between one fault's heal and the next fault. */
  intervalMs: number;
  /** The cluster's minimum election timeout (pauses are drawn around it). */
  electionTimeoutMs: number;
  /** A heal must be followed by one agreed leader within this (default 2000 ms). */
  maxLeaderAfterHealMs: number;
  /**
   * Clock faults stay within this change of rate (0.09: ×0.91–×1.09), for runs that must
   * keep within a drift bound (lease reads). Default: ×0.5–×0.8 or ×1.25–×2.
   */
  maxClockRateChange?: number;
  token?: string;
}

/** A family the machine cannot run, as root: the run fails rather than pretends. */
export class NemesisUnavailableError extends Error {
  readonly code = 'NEMESIS_UNAVAILABLE';
  constructor(readonly missing: { family: Family; reason: string }[]) {
    super(
      `fault families that cannot run here: ${missing.map((m) => `${m.family} (${m.reason})`).join('; ')}. ` +
        'As root every asked family must run; install what is missing (Debian: iproute2 nftables faketime) or leave the family out',
    );
    this.name = 'NemesisUnavailableError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1 << 20;
const DISK_MIB = 160;
const RESERVE = 32 * MiB;

export class Nemesis {
  readonly faults: NemesisFault[] = [];
  private readonly random: () => number;
  private cluster: LocalCluster | null = null;
  private t0 = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private lastHealAt: number | null = null;
  private writesAfterHeal = false;
  private readonly failures: string[] = [];
  private cleaned = false;

  private constructor(
    private readonly o: NemesisOptions,
    readonly families: Family[],
    readonly skipped: { family: Family; reason: string }[],
    private readonly dir: string,
    private readonly lab: NetLab | null,
    private readonly clocks: Map<string, FakeClock>,
    private readonly disks: Map<string, SmallDisk>,
    private readonly say: (line: string) => void,
  ) {
    this.random = prng(o.seed ^ 0x5eed);
  }

  /**
   * Check what this machine can do, and build what the families need for `n` nodes (the
   * network namespaces, the fake clocks, the small disks). A family it cannot run is
   * skipped with its reason when not root, and fails the run as root.
   */
  static async prepare(o: NemesisOptions, n: number, say: (line: string) => void): Promise<Nemesis> {
    const missing: { family: Family; reason: string }[] = [];
    const net = await netlabUnavailable();
    const lib = await findLibfaketime();
    const disk = diskUnavailable();
    for (const f of o.families) {
      if ((f === 'partition' || f === 'netem') && net) missing.push({ family: f, reason: net });
      if (f === 'clock' && !lib)
        missing.push({ family: f, reason: 'libfaketime is not installed (Debian package faketime)' });
      if (f === 'disk' && disk) missing.push({ family: f, reason: disk });
    }
    if (missing.length > 0 && process.getuid?.() === 0) throw new NemesisUnavailableError(missing);
    for (const m of missing) say(`nemesis: skipping ${m.family}: ${m.reason}`);
    const families = o.families.filter((f) => !missing.some((m) => m.family === f));
    if (families.length === 0) throw new NemesisUnavailableError(missing);
    const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    await sweepStaleDisks();
    const dir = await mkdtemp(join(tmpdir(), `quorate-nemesis-${process.pid}-`));
    let lab: NetLab | null = null;
    const clocks = new Map<string, FakeClock>();
    const disks = new Map<string, SmallDisk>();
    const random = prng(o.seed);
    try {
      if (families.includes('partition') || families.includes('netem')) {
        lab = await NetLab.create(ids);
        if (families.includes('netem') && !lab.netem)
          say(
            'nemesis: this kernel has no netem queueing discipline: network quality faults are packet loss only (nftables), no delay, duplication or reordering',
          );
      }
      if (families.includes('clock'))
        for (const id of ids) {
          // Each node's clocks off by up to an hour either way, for the whole run.
          const offset = Math.round((random() * 2 - 1) * 3600);
          clocks.set(id, new FakeClock(lib!, join(dir, `${id}.faketime`), offset));
        }
      if (families.includes('disk'))
        for (const id of ids) {
          const d = new SmallDisk(join(dir, `${id}-disk`), DISK_MIB);
          await d.mount();
          disks.set(id, d);
        }
    } catch (err) {
      for (const d of disks.values()) await d.unmount();
      await lab?.destroy();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return new Nemesis(o, families, missing, dir, lab, clocks, disks, say);
  }

  /** What `LocalCluster.start` needs to run the nodes under these faults. */
  clusterOptions(): Partial<LocalClusterOptions> {
    return {
      ...(this.lab ? { lab: this.lab } : {}),
      ...(this.clocks.size ? { envOf: (n: SpawnedNode) => this.clocks.get(n.id)!.env() } : {}),
      ...(this.disks.size
        ? {
            dataDirOf: (id: string) => this.disks.get(id)!.dataDir,
            extraArgs: ['--storage.reserve-bytes', String(RESERVE)],
          }
        : {}),
    };
  }

  /** Begin drawing faults; the last one heals at least 4 s before `durationMs` ends. */
  start(cluster: LocalCluster, t0: number, durationMs: number): void {
    this.cluster = cluster;
    this.t0 = t0;
    this.loop = this.run(durationMs).catch((err) => {
      this.failures.push(`the nemesis failed: ${(err as Error).message}`);
    });
  }

  /** A write sent at `sentAt` (performance.now()) was acknowledged. */
  writeOk(sentAt: number): void {
    if (this.lastHealAt !== null && sentAt > this.lastHealAt) this.writesAfterHeal = true;
  }

  private now(): number {
    return (performance.now() - this.t0) / 1000;
  }

  private async pauseFor(ms: number): Promise<void> {
    await Promise.race([sleep(ms), new Promise<void>((r) => (this.wake = r))]);
  }

  private between(a: number, b: number): number {
    return a + this.random() * (b - a);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)]!;
  }

  private async run(durationMs: number): Promise<void> {
    // A fault holds at most ~6 s and its heal is observed; none starts too close to the end.
    const lastStart = durationMs - 10_000;
    for (;;) {
      await this.pauseFor(this.between(0.5, 1.5) * this.o.intervalMs);
      if (this.stopped || performance.now() - this.t0 > lastStart) return;
      const family = this.pick(this.families);
      await this.inject(family);
    }
  }

  private async inject(family: Family): Promise<void> {
    const c = this.cluster!;
    const leader = await c.leader().catch(() => null);
    const f: NemesisFault = {
      family,
      kind: family,
      nodes: [],
      detail: '',
      startS: this.now(),
      endS: null,
      proof: null,
      leaderAfterHealMs: null,
    };
    this.faults.push(f);
    const start = (kind: string, nodes: SpawnedNode[], detail: string) => {
      f.kind = kind;
      f.nodes = nodes.map((n) => n.id);
      f.detail = detail;
      f.startS = this.now();
      this.say(
        `${f.startS.toFixed(1)}s nemesis: start ${kind} ${f.nodes.join(',')}${detail ? ` (${detail})` : ''}`,
      );
    };
    const others = (n: SpawnedNode | null) => c.nodes.filter((x) => x !== n);
    switch (family) {
      case 'partition': {
        const lab = this.lab!;
        const l = leader ?? this.pick(c.nodes);
        const shape = this.pick(['majority-minority', 'isolate-leader', 'bridge', 'one-way'] as const);
        const hold = this.between(1000, 4000);
        const countsBefore = await this.transportCounts(c.nodes);
        /** The directions the rules cut: [from, to]. */
        const cuts: [string, string][] = [];
        if (shape === 'majority-minority') {
          const shuffled = [...c.nodes].sort(() => this.random() - 0.5);
          const minority = shuffled.slice(0, Math.floor((c.nodes.length - 1) / 2));
          const majority = shuffled.slice(minority.length);
          start(
            shape,
            minority,
            `${minority.map((n) => n.id).join(',')} | ${majority.map((n) => n.id).join(',')}`,
          );
          await lab.partition([minority.map((n) => n.id), majority.map((n) => n.id)]);
          for (const a of minority) for (const b of majority) cuts.push([a.id, b.id], [b.id, a.id]);
        } else if (shape === 'isolate-leader') {
          start(
            shape,
            [l],
            `${l.id} | ${others(l)
              .map((n) => n.id)
              .join(',')}`,
          );
          await lab.partition([[l.id], others(l).map((n) => n.id)]);
          for (const b of others(l)) cuts.push([l.id, b.id], [b.id, l.id]);
        } else if (shape === 'bridge') {
          // Two nodes cut from each other; the rest (the bridge) sees both.
          const [a, b] = [...c.nodes].sort(() => this.random() - 0.5) as [SpawnedNode, SpawnedNode];
          start(shape, [a, b], `${a.id} x ${b.id}, the others see both`);
          await lab.cut(a.id, b.id);
          await lab.cut(b.id, a.id);
          cuts.push([a.id, b.id], [b.id, a.id]);
        } else {
          const to = this.pick(others(l));
          start(shape, [l, to], `packets ${l.id} -> ${to.id} dropped, ${to.id} -> ${l.id} pass`);
          await lab.cut(l.id, to.id);
          cuts.push([l.id, to.id]);
        }
        await this.pauseFor(hold);
        const dropped = [...(await lab.dropped()).values()].reduce((a, b) => a + b, 0);
        // The transports' own view: Raft messages sent (or discarded, not connected) across
        // a cut that the other side never received.
        const countsAfter = await this.transportCounts(c.nodes);
        let lost = 0;
        for (const [from, to] of cuts) {
          const d = (k: string) => (countsAfter.get(k) ?? 0) - (countsBefore.get(k) ?? 0);
          lost += Math.max(
            0,
            d(`sent ${from} ${to}`) + d(`dropped ${from} ${to}`) - d(`received ${to} ${from}`),
          );
        }
        // A cut between two followers carries no Raft traffic: there the transports have
        // nothing to lose, and the rules' counters alone prove the cut.
        const leaderCut = !!leader && cuts.some(([from, to]) => from === leader.id || to === leader.id);
        if (dropped > 0 && (lost > 0 || !leaderCut))
          f.proof = `${dropped} packets dropped by the rules; the transports lost ${lost} Raft messages across the cut`;
        else if (dropped > 0)
          this.failures.push(
            `${shape}: the rules dropped ${dropped} packets, but the transports report no lost message`,
          );
        await lab.heal();
        return this.healed(f);
      }
      case 'netem': {
        const lab = this.lab!;
        const loss = Math.round(this.between(0.1, 0.4) * 100) / 100;
        const q = lab.netem
          ? { loss, delayMs: Math.round(this.between(5, 50)), jitterMs: 10, duplicate: 0.02, reorder: 0.1 }
          : { loss };
        start(
          'netem',
          c.nodes,
          lab.netem
            ? `loss ${loss * 100} %, delay ${q.delayMs} ms ± 10 ms, 2 % duplicated, 10 % reordered`
            : `loss ${loss * 100} % between nodes`,
        );
        await lab.degrade(q);
        await this.pauseFor(this.between(2000, 5000));
        const dropped = [...(await lab.dropped()).values()].reduce((a, b) => a + b, 0);
        if (dropped > 0) f.proof = `${dropped} packets dropped at random`;
        await lab.heal();
        return this.healed(f);
      }
      case 'pause': {
        const target = leader && this.random() < 0.5 ? leader : this.pick(others(leader));
        const long = this.random() < 0.5;
        const et = this.o.electionTimeoutMs;
        const ms = Math.round(long ? this.between(2 * et, 12 * et) : this.between(0.3 * et, 0.9 * et));
        const role = target === leader ? 'leader' : 'follower';
        start(`pause-${role}-${long ? 'long' : 'short'}`, [target], `SIGSTOP for ${ms} ms`);
        c.pause(target);
        const state = await procState(target);
        if (state === 'T' || state === 't') f.proof = `process ${target.proc?.pid} in state ${state}`;
        await this.pauseFor(ms);
        c.resume(target);
        return this.healed(f);
      }
      case 'kill': {
        const shape = this.pick(['kill-one', 'kill-leader', 'kill-majority', 'kill-all'] as const);
        const majority = Math.floor(c.nodes.length / 2) + 1;
        const shuffled = [...c.nodes].sort(() => this.random() - 0.5);
        const victims =
          shape === 'kill-one'
            ? [shuffled[0]!]
            : shape === 'kill-leader'
              ? [leader ?? shuffled[0]!]
              : shape === 'kill-majority'
                ? shuffled.slice(0, majority)
                : c.nodes.slice();
        const down = Math.round(this.between(300, 2000));
        start(shape, victims, `kill -9, restarted after ${down} ms`);
        const exits = victims.map(
          (n) =>
            new Promise<string | null>((r) => {
              const p = n.proc;
              if (!p) return r(null);
              if (p.exitCode !== null || p.signalCode !== null) return r(p.signalCode);
              p.once('exit', (_code, sig) => r(sig));
            }),
        );
        for (const n of victims) c.kill(n);
        const sigs = await Promise.all(exits);
        if (sigs.every((s) => s === 'SIGKILL')) f.proof = `${victims.length} process(es) ended by SIGKILL`;
        await this.pauseFor(down);
        for (const n of victims) await c.restart(n);
        // The heal is when the restarted processes serve again (a process takes a moment to start).
        await this.waitServing(victims);
        return this.healed(f);
      }
      case 'clock': {
        const target = this.pick(c.nodes);
        const clock = this.clocks.get(target.id)!;
        const m = this.o.maxClockRateChange;
        // A step forward is a clock rate without bound for an instant: not with lease reads,
        // whose promise holds only within the drift bound (docs/lease-reads.md).
        if (m === undefined && this.random() < 0.35) {
          const step = Math.round(this.between(2, 30) * 10) / 10;
          start('clock-jump', [target], `clocks step ${step} s forward`);
          const a = await this.clockSample(target);
          await clock.jump(step);
          // The library rereads its spec once its cache (a second) runs out: seen to take
          // more than 1.6 s after a slow rate. Look until the step shows, for 5 s.
          const deadline = performance.now() + 5000;
          let seen = '';
          while (a && !f.proof && performance.now() < deadline && !this.stopped) {
            await this.pauseFor(400);
            const b = await this.clockSample(target);
            if (!b) continue;
            const stepped = (b.wall - b.realWall - (a.wall - a.realWall)) / 1000;
            const mono = (b.mono - a.mono - (b.real - a.real)) / 1000;
            seen = `${stepped.toFixed(1)} s (wall) and ${mono.toFixed(1)} s (monotonic)`;
            if (Math.abs(stepped / step - 1) <= 0.1 && Math.abs(mono / step - 1) <= 0.1)
              f.proof = `node reports its wall clock ${stepped.toFixed(1)} s and its monotonic clock ${mono.toFixed(1)} s ahead of before`;
          }
          if (!f.proof)
            this.failures.push(
              seen
                ? `clock on ${target.id}: stepped ${step} s, the node reports ${seen}`
                : `clock on ${target.id}: stepped ${step} s, but its /health did not answer to show it`,
            );
          await this.pauseFor(this.between(1000, 3000));
          return this.healed(f);
        }
        const rate =
          m !== undefined
            ? Math.round(
                (this.random() < 0.5 ? this.between(1 - m, 1 - m / 2) : this.between(1 + m / 2, 1 + m)) *
                  1000,
              ) / 1000
            : Math.round((this.random() < 0.5 ? this.between(0.5, 0.8) : this.between(1.25, 2)) * 100) / 100;
        start('clock-rate', [target], `clocks at x${rate}, offset ${clock.offset.toFixed(0)} s`);
        await clock.setRate(rate);
        const hold = this.between(5500, 7000);
        const until = performance.now() + hold;
        // The library takes the change within a (possibly fake) second: measure after it.
        await this.pauseFor(2200);
        const a = await this.clockSample(target);
        await this.pauseFor(2500);
        const b = await this.clockSample(target);
        if (a && b) {
          const measured = (b.mono - a.mono) / (b.real - a.real);
          const offset = (b.wall - b.realWall) / 1000;
          // Within 10 %, and closer to the rate set than to an unfaked clock's 1.
          const rateOk =
            Math.abs(measured / rate - 1) < 0.1 && Math.abs(measured - rate) < 0.3 * Math.abs(rate - 1);
          // The wall clock's offset grows while the rate differs: compare with what the spec implies.
          const expected = clock.expectedOffsetS(b.realWall / 1000);
          const offsetOk = Math.abs(offset - expected) <= Math.max(1, Math.abs(expected) * 0.1);
          if (rateOk && offsetOk)
            f.proof = `node reports its monotonic clock at x${measured.toFixed(3)} and its wall clock ${offset.toFixed(1)} s off`;
          else
            this.failures.push(
              `clock on ${target.id}: set x${rate} and ${expected.toFixed(1)} s, the node reports x${measured.toFixed(3)} and ${offset.toFixed(1)} s`,
            );
        }
        await this.pauseFor(Math.max(0, until - performance.now()));
        await clock.setRate(1);
        return this.healed(f);
      }
      case 'disk': {
        const target = this.pick(c.nodes);
        const d = this.disks.get(target.id)!;
        const exhaust = this.random() < 0.3;
        start(
          exhaust ? 'disk-exhausted' : 'disk-below-reserve',
          [target],
          exhaust
            ? 'filesystem filled to the last block'
            : `free space under the ${RESERVE / MiB} MiB reserve`,
        );
        await d.fill(exhaust ? 0 : RESERVE / 2);
        const deadline = performance.now() + 5000;
        while (!f.proof && performance.now() < deadline && !this.stopped) {
          const h = await this.health(target);
          if (h?.diskFull === true) f.proof = `node reports diskFull (${h.diskFreeBytes} bytes free)`;
          else if (!target.proc) f.proof = 'node stopped on a failed write';
          else await sleep(100);
        }
        await this.pauseFor(this.between(2000, 4000));
        await d.release();
        if (!target.proc) {
          this.say(
            `${this.now().toFixed(1)}s nemesis: ${target.id} had stopped on the full disk; restarting it`,
          );
          await c.restart(target);
          await this.waitServing([target]);
        }
        return this.healed(f);
      }
    }
  }

  /**
   * One reading of a node's clocks, with the real time it was taken at: the quickest of
   * five round trips, so that a slow answer on a loaded machine does not skew the rate.
   */
  private async clockSample(n: SpawnedNode) {
    let best: { mono: number; wall: number; real: number; realWall: number; rtt: number } | null = null;
    for (let i = 0; i < 5; i++) {
      const before = performance.now();
      const h = await this.health(n);
      const after = performance.now();
      const clock = h?.clock as { wallMs: number; monotonicMs: number } | undefined;
      if (!clock) continue;
      const rtt = after - before;
      if (!best || rtt < best.rtt)
        best = {
          mono: clock.monotonicMs,
          wall: clock.wallMs,
          real: (before + after) / 2,
          realWall: Date.now() - rtt / 2,
          rtt,
        };
    }
    return best;
  }

  /**
   * Each node's transport counters by peer, from its own `/metrics`: keys
   * `sent|received|dropped <node> <peer>`. A node that does not answer adds nothing.
   */
  private async transportCounts(nodes: readonly SpawnedNode[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const re =
      /_transport_messages_(sent|received|dropped)_total\{node="([^"]+)",peer="([^"]+)"\} (\d+(?:\.\d+)?(?:e\+\d+)?)/g;
    await Promise.all(
      nodes.map(async (n) => {
        try {
          const r = await fetch(`${n.clientAddress}/metrics`, {
            signal: AbortSignal.timeout(1000),
            ...(this.o.token ? { headers: { authorization: `Bearer ${this.o.token}` } } : {}),
          });
          for (const m of (await r.text()).matchAll(re)) out.set(`${m[1]} ${m[2]} ${m[3]}`, Number(m[4]));
        } catch {}
      }),
    );
    return out;
  }

  private async health(n: SpawnedNode): Promise<Record<string, unknown> | null> {
    try {
      const r = await fetch(`${n.clientAddress}/health`, {
        signal: AbortSignal.timeout(1000),
        ...(this.o.token ? { headers: { authorization: `Bearer ${this.o.token}` } } : {}),
      });
      return (await r.json()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  private async waitServing(nodes: SpawnedNode[]): Promise<void> {
    const deadline = performance.now() + 30_000;
    for (const n of nodes)
      while ((await this.health(n)) === null && performance.now() < deadline) await sleep(20);
  }

  /**
   * The fault is healed: note it, and time how long until every member agrees on one
   * leader (of every group, on a sharded cluster).
   */
  private async healed(f: NemesisFault): Promise<void> {
    const at = performance.now();
    f.endS = this.now();
    this.lastHealAt = at;
    this.writesAfterHeal = false;
    const deadline = at + 10_000;
    while (performance.now() < deadline) {
      const views = await Promise.all(this.cluster!.nodes.map((n) => this.health(n)));
      if (agreedLeaders(views)) {
        f.leaderAfterHealMs = performance.now() - at;
        break;
      }
      await sleep(20);
    }
    const lead =
      f.leaderAfterHealMs === null
        ? 'no agreed leader within 10 s'
        : `one leader after ${f.leaderAfterHealMs.toFixed(0)} ms`;
    this.say(
      `${f.endS.toFixed(1)}s nemesis: heal ${f.kind} — ${f.proof ?? 'NO PROOF the fault took effect'}; ${lead}`,
    );
    if (!f.proof) this.failures.push(`${f.kind} at ${f.startS.toFixed(1)} s: nothing showed it took effect`);
    if (f.leaderAfterHealMs === null || f.leaderAfterHealMs > this.o.maxLeaderAfterHealMs)
      this.failures.push(
        `${f.kind} at ${f.startS.toFixed(1)} s: ${lead}, more than ${this.o.maxLeaderAfterHealMs} ms after the heal`,
      );
  }

  /** Stop drawing faults; the one under way heals first, then everything is made whole. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    const c = this.cluster;
    await this.lab?.heal().catch(() => {});
    for (const d of this.disks.values()) await d.release().catch(() => {});
    for (const k of this.clocks.values()) await k.setRate(1).catch(() => {});
    if (c)
      for (const n of c.nodes) {
        if (n.paused) c.resume(n);
        if (!n.proc) await c.restart(n);
      }
  }

  /**
   * After the run: every member applies the same index and has the same state hash there.
   * Returns the summary of the nemesis part, with the reasons it failed if it did.
   */
  async verify(): Promise<NemesisSummary> {
    const c = this.cluster;
    let equal: boolean | null = null;
    if (c) {
      const deadline = performance.now() + 30_000;
      let last = '';
      while (performance.now() < deadline) {
        const hs = await Promise.all(
          c.nodes.map(async (n) => {
            try {
              const r = await fetch(`${n.clientAddress}/admin/state-hash`, {
                signal: AbortSignal.timeout(2000),
                ...(this.o.token ? { headers: { authorization: `Bearer ${this.o.token}` } } : {}),
              });
              return (await r.json()) as { appliedIndex: number; hash: string };
            } catch {
              return null;
            }
          }),
        );
        last = hs
          .map((h, i) => `${c.nodes[i]!.id}: ${h ? `${h.hash.slice(0, 12)}@${h.appliedIndex}` : 'no answer'}`)
          .join(', ');
        if (hs.every((h) => h !== null) && new Set(hs.map((h) => h!.appliedIndex)).size === 1) {
          equal = new Set(hs.map((h) => h!.hash)).size === 1;
          break;
        }
        await sleep(100);
      }
      if (equal === false) this.failures.push(`state hashes differ at the same applied index: ${last}`);
      if (equal === null) this.failures.push(`the members never reached one applied index: ${last}`);
    }
    const writesAfter = this.lastHealAt === null ? null : this.writesAfterHeal;
    if (writesAfter === false) this.failures.push('no write was acknowledged after the last heal');
    return {
      families: this.families,
      skipped: this.skipped,
      faults: this.faults,
      stateHashesEqual: equal,
      writesAfterLastHeal: writesAfter,
      failures: this.failures,
    };
  }

  /** Remove the namespaces, unmount the small disks, delete the temp files. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const d of this.disks.values()) await d.unmount();
    await this.lab?.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The state letter of a process in /proc (R, S, T, …), or null when it is gone. */
async function procState(n: SpawnedNode): Promise<string | null> {
  const pid = n.proc?.pid;
  if (!pid) return null;
  // SIGSTOP is delivered asynchronously: give the kernel a moment.
  for (let i = 0; i < 50; i++) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'T' || state === 't') return state;
    } catch {
      return null;
    }
    await sleep(10);
  }
  return null;
}

/** Unmount and remove the small disks of runs whose process is gone (killed mid-run). */
async function sweepStaleDisks(): Promise<void> {
  let mounts = '';
  try {
    mounts = await readFile('/proc/mounts', 'utf8');
  } catch {
    return;
  }
  const stale = new Set<string>();
  for (const line of mounts.split('\n')) {
    const at = line.split(' ')[1] ?? '';
    const m = /^(.*\/quorate-nemesis-(\d+)-[^/]+)\//.exec(at);
    if (!m) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
      await new SmallDisk(at, 0).unmount(true);
      stale.add(m[1]!);
    }
  }
  for (const d of stale) await rm(d, { recursive: true, force: true });
}

type GroupView = { group: number; leaderId: string | null; isLeader: boolean };

/**
 * Every member answered, and for every Raft group (one, or each group of a sharded
 * cluster) they name the same leader, which says it leads.
 */
export function agreedLeaders(views: readonly (Record<string, unknown> | null)[]): boolean {
  if (views.some((v) => v === null)) return false;
  const groupsOf = (v: Record<string, unknown>): GroupView[] =>
    (v.groups as GroupView[] | undefined) ?? [
      { group: 0, leaderId: v.leaderId as string | null, isLeader: v.isLeader === true },
    ];
  const all = views.map((v) => groupsOf(v!));
  const count = all[0]!.length;
  if (all.some((gs) => gs.length !== count)) return false;
  for (let g = 0; g < count; g++) {
    const ids = new Set(all.map((gs) => gs[g]!.leaderId));
    const [only] = [...ids];
    if (ids.size !== 1 || typeof only !== 'string') return false;
    const at = views.findIndex((v) => v!.nodeId === only);
    if (at < 0 || all[at]![g]!.isLeader !== true) return false;
  }
  return true;
}
