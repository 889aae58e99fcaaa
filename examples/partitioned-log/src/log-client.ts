/**
 * A producer and consumer for the example's brokers: finds a partition's leader through
 * quorate, sends the leader epoch it found with each record (`x-leader-epoch`: a leader
 * older than that is deposed, one newer refuses it), and retries only what certainly
 * wrote nothing (a refusal marked `not-written`, a refused connection). Anything else
 * is the caller's to settle: `outcome: 'unknown'` means the record may or may not be
 * in the log, now or later.
 */
import { QuorateClient } from '@quorate/client';
import { deadline } from './deadline.js';
import { Directory, type Located } from './directory.js';
import { BrokerError, type BrokerErrorCode } from './errors.js';
import type { ProduceAnswer, ReadAnswer } from './wire.js';

export interface LogClientOptions {
  /** quorate members' HTTP addresses, or a client for them. */
  quorate: string[] | QuorateClient;
  set: string;
  /** Deadline of one produce, retries included. Default 15,000 ms. */
  timeoutMs?: number;
}

const RETRYABLE = new Set<BrokerErrorCode>([
  'NOT_LEADER',
  'NOT_ENOUGH_REPLICAS',
  'SHUTTING_DOWN',
  'NOT_A_REPLICA',
]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LogClient {
  readonly directory: Directory;
  private readonly own: QuorateClient | null;
  private readonly timeoutMs: number;
  /** Where each partition's leader was last found. */
  private readonly leaders = new Map<number, Located>();

  constructor(o: LogClientOptions) {
    this.own = Array.isArray(o.quorate) ? new QuorateClient({ endpoints: o.quorate }) : null;
    this.directory = new Directory(this.own ?? (o.quorate as QuorateClient), o.set);
    this.timeoutMs = o.timeoutMs ?? 15_000;
  }

  /** Append `value` to partition `p`; resolves once acknowledged. */
  async produce(
    p: number,
    value: string | Uint8Array,
    opts: { timeoutMs?: number } = {},
  ): Promise<ProduceAnswer> {
    const until = performance.now() + (opts.timeoutMs ?? this.timeoutMs);
    let last = 'no attempt';
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5)));
      const left = until - performance.now();
      if (left <= 0) break;
      let where = this.leaders.get(p);
      if (!where) {
        try {
          where = await this.directory.locate(p);
        } catch (err) {
          last = `quorate: ${String(err)}`;
          continue;
        }
        if (!where.url || !where.state.leader) {
          last = `partition ${p} has no leader (leader epoch ${where.state.leaderEpoch})`;
          continue;
        }
        this.leaders.set(p, where);
      }
      // Until it answers well, this leader is not to be asked again without asking quorate.
      this.leaders.delete(p);
      let res: Response;
      let body: Record<string, unknown>;
      const d = deadline(until - performance.now());
      try {
        res = await fetch(`${where.url}/produce/${p}`, {
          method: 'POST',
          headers: {
            'x-leader-epoch': String(where.state.leaderEpoch),
            'content-type': 'application/octet-stream',
          },
          body: typeof value === 'string' ? value : Buffer.from(value),
          signal: d.signal,
        });
        body = (await res.json()) as Record<string, unknown>;
      } catch (err) {
        this.directory.forget(where.state.leader!);
        if (refused(err)) {
          last = `${where.state.leader} at ${where.url}: connection refused`;
          continue;
        }
        // Sent, perhaps: the broker may have appended it.
        throw new BrokerError('UNAVAILABLE', 0, `produce to ${where.state.leader}: ${String(err)}`, {
          outcome: 'unknown',
          cause: err,
        });
      } finally {
        d.clear();
      }
      if (res.status === 200) {
        this.leaders.set(p, where);
        return body as unknown as ProduceAnswer;
      }
      const code = String(body.code) as BrokerErrorCode;
      const outcome = body.outcome === 'not-written' ? 'not-written' : 'unknown';
      const err = new BrokerError(code, res.status, String(body.message), { outcome, details: body });
      if (outcome === 'not-written' && RETRYABLE.has(code)) {
        last = `${where.state.leader}: ${code}: ${String(body.message)}`;
        continue;
      }
      throw err;
    }
    // Every attempt so far certainly wrote nothing.
    throw new BrokerError('UNAVAILABLE', 0, `produce to partition ${p}: deadline passed (${last})`);
  }

  /** Acknowledged entries of `p` from `from`, as the leader (or the broker at `url`) has them. */
  async read(p: number, from = 0, url?: string): Promise<ReadAnswer> {
    return this.get(p, 'read', from, url);
  }

  /** Everything the leader (or the broker at `url`) holds of `p`, acknowledged or not. */
  async dump(p: number, from = 0, url?: string): Promise<ReadAnswer> {
    return this.get(p, 'log', from, url);
  }

  private async get(p: number, route: 'read' | 'log', from: number, url?: string): Promise<ReadAnswer> {
    const base = url ?? (await this.directory.locate(p)).url;
    if (!base) throw new BrokerError('UNAVAILABLE', 0, `partition ${p} has no leader`);
    const d = deadline(10_000);
    let r: Response;
    let body: Record<string, unknown>;
    try {
      r = await fetch(`${base}/${route}/${p}?from=${from}`, { signal: d.signal });
      body = (await r.json()) as Record<string, unknown>;
    } finally {
      d.clear();
    }
    if (r.status !== 200) {
      throw new BrokerError(String(body.code) as BrokerErrorCode, r.status, String(body.message), {
        details: body,
      });
    }
    return body as unknown as ReadAnswer;
  }

  async close(): Promise<void> {
    await this.own?.close();
  }
}

/** Whether a fetch failed before anything was sent (nothing listens there). */
function refused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code === 'ECONNREFUSED';
}
