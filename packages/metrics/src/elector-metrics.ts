/**
 * Metrics of application leader election (`LeaderElector` in `@quorate/client`), by
 * subscription, typed structurally so this package does not depend on the client.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the metrics need from an elector: `LeaderElector` satisfies it. */
export interface ObservedElector {
  readonly isLeader: boolean;
  on(
    fn: (
      e:
        | { type: 'elected'; token: number }
        | { type: 'lost'; token: number; reason: string }
        | { type: 'renewed'; token: number; latencyMs: number }
        | { type: 'renewFailed'; error: Error }
        | { type: 'holderChanged'; holder: string | null; token: number | null },
    ) => void,
  ): () => void;
}

/** Renewals take a round trip and a commit: sub-millisecond to seconds. */
const RENEW_BUCKETS_SECONDS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class ElectorMetrics {
  private readonly electors = new Map<string, { elector: ObservedElector; off: () => void }>();
  private readonly isLeader: Gauge;
  private readonly acquired: Counter;
  private readonly lost: Counter;
  private readonly renewFailures: Counter;
  private readonly renewLatency: Histogram;

  constructor(registry: Registry, prefix = 'quorate_') {
    const electors = this.electors;
    this.isLeader = new Gauge({
      name: `${prefix}elector_is_leader`,
      help: '1 while this instance holds the lease it campaigns for, else 0.',
      labelNames: ['lease', 'holder'],
      registers: [registry],
      collect() {
        for (const [key, { elector }] of electors) {
          const [lease, holder] = key.split('\u0000') as [string, string];
          this.set({ lease, holder }, elector.isLeader ? 1 : 0);
        }
      },
    });
    this.acquired = new Counter({
      name: `${prefix}elector_leadership_acquired_total`,
      help: 'Times this instance won the lease.',
      labelNames: ['lease', 'holder'],
      registers: [registry],
    });
    this.lost = new Counter({
      name: `${prefix}elector_leadership_lost_total`,
      help: 'Times this instance stopped leading, by reason (released, lease-lost, unconfirmed).',
      labelNames: ['lease', 'holder', 'reason'],
      registers: [registry],
    });
    this.renewFailures = new Counter({
      name: `${prefix}elector_renewal_failures_total`,
      help: 'Lease renewals that failed (the holder keeps leading until its local deadline).',
      labelNames: ['lease', 'holder'],
      registers: [registry],
    });
    this.renewLatency = new Histogram({
      name: `${prefix}elector_renewal_latency_seconds`,
      help: 'Time from sending a lease renewal to its acknowledgement.',
      labelNames: ['lease', 'holder'],
      buckets: RENEW_BUCKETS_SECONDS,
      registers: [registry],
    });
  }

  /** Observe an elector campaigning for `lease` as `holder`. Returns a function that stops. */
  attach(elector: ObservedElector, lease: string, holder: string): () => void {
    const key = `${lease}\u0000${holder}`;
    const labels = { lease, holder };
    this.acquired.inc(labels, 0);
    this.renewFailures.inc(labels, 0);
    const off = elector.on((e) => {
      if (e.type === 'elected') this.acquired.inc(labels);
      else if (e.type === 'lost') this.lost.inc({ ...labels, reason: e.reason });
      else if (e.type === 'renewed') this.renewLatency.observe(labels, e.latencyMs / 1000);
      else if (e.type === 'renewFailed') this.renewFailures.inc(labels);
    });
    this.electors.set(key, { elector, off });
    return () => {
      off();
      this.electors.delete(key);
    };
  }
}
