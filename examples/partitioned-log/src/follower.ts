/**
 * A follower copies its partition from the leader by fetching, as Kafka's followers do:
 * `GET /fetch/<p>?from=<end>&leaderEpoch=<newest leader epoch known>&lastLeaderEpoch=<leader
 * epoch of the entry at end - 1>&replica=<id>`. Each fetch also tells the leader how far
 * this replica has got, which is what lets the leader acknowledge.
 *
 * Fencing, on this side: the follower sends the newest leader epoch it knows, so a leader
 * that was deposed is told (`409 FENCED`), steps down, and gets nothing from it; and it
 * copies nothing from an answer at an older leader epoch than it knows. It learns leader
 * epochs from quorate (who leads at which leader epoch, read again every `relookupMs` and
 * after any failure) and from the answers.
 */
import { deadline } from './deadline.js';
import type { Directory } from './directory.js';
import type { PartitionLog } from './log.js';
import { type FetchAnswer, fromWire } from './wire.js';

export interface FollowerDeps {
  readonly self: string;
  readonly partition: number;
  readonly log: PartitionLog;
  readonly directory: Directory;
  /** The newest leader epoch this replica knows for the partition (shared with the replica). */
  knownLeaderEpoch(): number;
  learnLeaderEpoch(leaderEpoch: number): void;
  /** The leader's high watermark, as far as this replica holds it. */
  learnHighWatermark(hw: number): void;
  /** The leader had nothing more: this replica holds all it had. */
  caughtUp(): void;
  /** This replica truncated its log to `offset`. */
  truncated(offset: number): void;
  /** How long the leader may hold a fetch with nothing new. */
  readonly maxWaitMs: number;
  /** How often to ask quorate again who leads, even when the leader answers. */
  readonly relookupMs: number;
  say(message: string): void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        r();
      },
      { once: true },
    );
  });

/** Fetch from whoever leads until `signal` aborts (this replica leads, or the broker stops). */
export async function follow(deps: FollowerDeps, signal: AbortSignal): Promise<void> {
  const { partition: p, log, directory } = deps;
  let leader: { id: string; url: string; leaderEpoch: number; at: number } | null = null;
  let failures = 0;
  const backoff = () => sleep(Math.min(1000, 50 * 2 ** Math.min(failures++, 5)), signal);
  while (!signal.aborted) {
    if (!leader || performance.now() - leader.at > deps.relookupMs) {
      try {
        const { state, url } = await directory.locate(p);
        deps.learnLeaderEpoch(state.leaderEpoch);
        leader =
          state.leader && state.leader !== deps.self && url
            ? { id: state.leader, url, leaderEpoch: state.leaderEpoch, at: performance.now() }
            : null;
      } catch {
        leader = null;
      }
      if (signal.aborted) return;
      // Leaderless, not registered yet, or this broker (its member will say so soon).
      if (!leader) {
        await backoff();
        continue;
      }
    }
    const from = log.end;
    const q = new URLSearchParams({
      from: String(from),
      leaderEpoch: String(deps.knownLeaderEpoch()),
      lastLeaderEpoch: String(log.lastLeaderEpoch),
      replica: deps.self,
      maxWaitMs: String(deps.maxWaitMs),
    });
    let status: number;
    let body: FetchAnswer | { code: string; leaderEpoch?: number; leader?: string | null };
    const d = deadline(deps.maxWaitMs + 2000, signal);
    try {
      const r = await fetch(`${leader.url}/fetch/${p}?${q}`, { signal: d.signal });
      status = r.status;
      body = (await r.json()) as typeof body;
    } catch (err) {
      if (signal.aborted) return;
      if (failures === 0) deps.say(`partition ${p}: fetch from ${leader.id}: ${String(err)}`);
      // Down, restarted elsewhere, or frozen: find the leader (and its address) again.
      directory.forget(leader.id);
      leader = null;
      await backoff();
      continue;
    } finally {
      d.clear();
    }
    if (signal.aborted) return;
    if (status !== 200 || !('type' in body)) {
      // FENCED (it is older than a leader epoch this replica knows), NOT_LEADER (it no
      // longer leads, or not yet), or anything else: ask quorate again.
      if (status === 409 && 'leader' in body && typeof body.leaderEpoch === 'number')
        deps.learnLeaderEpoch(body.leaderEpoch);
      leader = null;
      await backoff();
      continue;
    }
    // A leader older than a leader epoch known here is deposed already: copy nothing from it.
    if (body.leaderEpoch < deps.knownLeaderEpoch()) {
      deps.say(
        `partition ${p}: refusing ${leader.id}'s entries at leader epoch ${body.leaderEpoch} < ${deps.knownLeaderEpoch()}`,
      );
      leader = null;
      await backoff();
      continue;
    }
    deps.learnLeaderEpoch(body.leaderEpoch);
    failures = 0;
    // The log changes only here while following; a fetch answers what was asked at `from`.
    if (log.end !== from) continue;
    if (body.type === 'truncate') {
      deps.say(`partition ${p}: truncating ${log.end} -> ${body.truncateTo} (leader ${leader.id})`);
      log.truncate(body.truncateTo);
      deps.truncated(body.truncateTo);
      continue;
    }
    if (body.entries.length > 0) log.appendCopied(body.entries.map(fromWire));
    else deps.caughtUp();
    deps.learnHighWatermark(Math.min(body.highWatermark, log.end));
  }
}
