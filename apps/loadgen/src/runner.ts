/**
 * The virtual clients. Each is sequential (one operation at a time, like a Jepsen
 * process) with its own client id, so its writes are exactly-once. Closed loop by
 * default; with `rate`, operations are due at fixed times and latency is measured from
 * when they were due, so a stalled cluster shows up in the latencies instead of being
 * hidden by clients that stopped asking (coordinated omission).
 */
import {
  ClientError,
  HttpWire,
  ProtocolWire,
  QuorateClient,
  RejectedError,
  type TxnOp,
  type TxnRequest,
  type Wire,
} from '@quorate/client';
import type { HistoryEvent, HistorySink, TxnValue } from './history.js';
import { type SecondLine, Stats } from './stats.js';
import { type OpKind, Workload, type WorkloadOptions } from './workload.js';

export interface RunOptions {
  /** Members' addresses for the clients: `quorate://` with the binary wire, `http://` with HTTP. */
  endpoints: readonly string[];
  /** The wire: the client protocol (one multiplexed connection per member) or HTTP pools. */
  wire?: 'binary' | 'http';
  clients: number;
  /** Stop after this many operations per client... */
  reqsPerClient?: number;
  /** ...or after this long. */
  durationMs?: number;
  /** Open loop: total operations per second, spread over the clients. */
  rate?: number;
  workload: WorkloadOptions;
  /** Deadline of one operation (retries included). */
  timeoutMs: number;
  token?: string;
  /** HTTP connections per member, shared by all clients. */
  connections?: number;
  history?: HistorySink;
  /** Lease TTL in lease mode. */
  leaseTtlMs?: number;
  onSecond?: (line: SecondLine, stats: Stats) => void;
  /** Called with each acknowledged write, when it was sent and answered (fault bookkeeping). */
  onWriteOk?: (sentAt: number, at: number) => void;
  onError?: (at: number, code: string) => void;
  signal?: AbortSignal;
}

export interface RunResult {
  stats: Stats;
  elapsedMs: number;
  /** CPU time this process spent per completed operation, in µs. */
  cpuMicrosPerOp: number;
}

const nowNs = () => process.hrtime.bigint();

export async function run(o: RunOptions): Promise<RunResult> {
  const wire: Wire =
    o.wire === 'binary'
      ? new ProtocolWire()
      : new HttpWire({ connections: o.connections ?? Math.max(4, Math.min(64, o.clients)) });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const stats = new Stats(t0);
  const end = o.durationMs !== undefined ? t0 + o.durationMs : Number.POSITIVE_INFINITY;
  const ticker = setInterval(() => {
    const line = stats.tick(performance.now());
    if (line) o.onSecond?.(line, stats);
  }, 100);
  /** Last value written or read per key, shared, to give cas a fair chance. */
  const lastSeen = new Map<string, string>();

  const client = async (i: number) => {
    const c = new QuorateClient({
      endpoints: o.endpoints,
      wire,
      clientId: `lg-${process.pid}-${i}`,
      timeoutMs: o.timeoutMs,
      attemptTimeoutMs: Math.min(3000, o.timeoutMs),
      ...(o.token ? { token: o.token } : {}),
    });
    const w = new Workload(o.workload, i);
    const holder = `lg-${process.pid}-${i}`;
    let lease = null as { name: string; token: number; step: number } | null;
    let n = 0;
    // Open loop: this client's operations are due at t0 + (k*C + i) / rate.
    const period = o.rate ? (1000 * o.clients) / o.rate : 0;
    let due = t0 + (o.rate ? (1000 * i) / o.rate : 0);
    while (!o.signal?.aborted) {
      if (o.reqsPerClient !== undefined && n >= o.reqsPerClient) break;
      if (performance.now() >= end) break;
      if (o.rate) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (due >= end) break;
      }
      n++;
      const started = o.rate ? due : performance.now();
      due += period;
      let kind: OpKind = w.next();
      if (kind === 'acquire' && lease) kind = lease.step < 3 ? 'renew' : 'release';
      const key: string = kind !== 'acquire' && lease !== null ? lease.name : w.key();
      let txn: TxnRequest | null = null;
      if (kind === 'transfer' || kind === 'readBoth') {
        const other = w.otherKey(key);
        const both: TxnOp[] = [
          { op: 'get', key },
          { op: 'get', key: other },
        ];
        if (kind === 'readBoth') txn = { compare: [], success: both, failure: [] };
        else {
          const seen = lastSeen.get(key);
          txn = {
            compare: [seen === undefined ? { key, exists: false } : { key, value: seen }],
            success: [
              { op: 'put', key, value: w.value(i) },
              { op: 'put', key: other, value: w.value(i) },
            ],
            failure: both,
          };
        }
      }
      const f = txn ? 'txn' : kind;
      // What the operation is, before it runs: the history's invoke line.
      let value: HistoryEvent['value'] = null;
      if (kind === 'put') value = w.value(i);
      else if (kind === 'cas') value = [lastSeen.get(key) ?? w.value(i), w.value(i)];
      else if (txn) value = txn as TxnValue;
      else if (kind !== 'get') value = holder;
      o.history?.invoke({ process: i, f, key, value, time: nowNs() });
      const sent = performance.now();
      let type: HistoryEvent['type'] = 'ok';
      let error: string | null = null;
      try {
        switch (kind) {
          case 'put':
            await c.put(key, value as string);
            lastSeen.set(key, value as string);
            o.onWriteOk?.(sent, performance.now());
            break;
          case 'get': {
            const r = await c.get(key);
            value = r ? r.text() : null;
            if (value !== null) lastSeen.set(key, value);
            break;
          }
          case 'cas': {
            const [expected, next] = value as [string, string];
            await c.cas(key, expected, next);
            lastSeen.set(key, next);
            o.onWriteOk?.(sent, performance.now());
            break;
          }
          case 'acquire': {
            const l = await c.acquireLease(key, holder, o.leaseTtlMs ?? 5000);
            lease = { name: key, token: l.token, step: 1 };
            break;
          }
          case 'renew':
            await c.renewLease(lease!.name, holder, lease!.token);
            lease!.step++;
            break;
          case 'release':
            await c.releaseLease(lease!.name, holder, lease!.token);
            lease = null;
            break;
          case 'transfer':
          case 'readBoth': {
            const t = txn as TxnRequest & { success: TxnOp[]; failure: TxnOp[] };
            const r = await c.txn(t);
            const reads: (string | null)[] = [];
            for (const x of r.results) if (x.op === 'get') reads.push(x.value);
            let j = 0;
            for (const s of r.succeeded ? t.success : t.failure) {
              if (s.op === 'put') lastSeen.set(s.key, s.value);
              if (s.op !== 'get') continue;
              const v = reads[j++];
              if (typeof v === 'string') lastSeen.set(s.key, v);
            }
            value = { succeeded: r.succeeded, reads };
            if (kind === 'transfer') {
              if (r.succeeded) o.onWriteOk?.(sent, performance.now());
              else stats.casMisses++;
            }
            break;
          }
        }
      } catch (err) {
        if (kind === 'renew' || kind === 'release') lease = null;
        if (
          err instanceof RejectedError &&
          (err.serverCode === 'CAS_FAILED' ||
            err.serverCode === 'LEASE_HELD' ||
            err.serverCode === 'LEASE_LOST')
        ) {
          // The precondition was false: a definite, expected outcome, not an error.
          type = 'fail';
          if (err.serverCode === 'CAS_FAILED') stats.casMisses++;
        } else {
          error =
            err instanceof RejectedError
              ? err.serverCode
              : err instanceof ClientError
                ? err.code
                : 'INTERNAL';
          // A write whose outcome is open is `info`; definite failures and reads are `fail`.
          const read = kind === 'get' || kind === 'readBoth';
          type = err instanceof ClientError && err.ambiguous && !read ? 'info' : 'fail';
          if (type === 'info') stats.ambiguous++;
          if (kind === 'get' || txn) value = null;
          o.onError?.(performance.now(), error);
        }
      }
      const ev: HistoryEvent = { process: i, type, f, key, value, time: nowNs() };
      o.history?.complete(ev);
      stats.record((performance.now() - started) * 1000, error);
    }
    await c.close();
  };

  await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i)));
  clearInterval(ticker);
  const last = stats.tick(performance.now() + 1000);
  if (last) o.onSecond?.(last, stats);
  await wire.close();
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { stats, elapsedMs, cpuMicrosPerOp: stats.ops > 0 ? (cpu.user + cpu.system) / stats.ops : 0 };
}
