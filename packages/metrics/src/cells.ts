/**
 * Counters and histograms for the hot path. prom-client's own hash the label set on every
 * `inc`/`observe` (about half a microsecond each here), which on a node applying tens of
 * thousands of entries a second is real CPU. These keep one plain cell per label set,
 * resolved once when a node is attached, so an update is an addition or two; the
 * registry reads them only when scraped.
 *
 * They register in a prom-client `Registry` like any metric: the registry renders
 * whatever `get()` returns in its exposition format.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;
/** One sample as prom-client's registry renders it. */
interface Sample {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName?: string;
}

export class CounterCell {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class HistogramCell {
  /** Non-cumulative counts per bucket; the last slot is above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

abstract class Family<C> {
  protected readonly cells = new Map<string, { labels: Labels; cell: C }>();
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }
  protected abstract create(): C;
  /** The cell of one label set (created at zero on first use). Resolve once, update often. */
  cell(labels: Labels): C {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let hit = this.cells.get(key);
    if (!hit) {
      hit = { labels: { ...labels }, cell: this.create() };
      this.cells.set(key, hit);
    }
    return hit.cell;
  }
  reset(): void {
    this.cells.clear();
  }
  protected abstract values(): Sample[];
  async get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.values(),
      aggregator: this.aggregator,
    };
  }
}

export class FastCounter extends Family<CounterCell> {
  readonly type = 'counter';
  protected create(): CounterCell {
    return new CounterCell();
  }
  protected values(): Sample[] {
    return [...this.cells.values()].map(({ labels, cell }) => ({ labels, value: cell.value }));
  }
}

export class FastHistogram extends Family<HistogramCell> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }
  protected create(): HistogramCell {
    return new HistogramCell(this.bounds);
  }
  protected values(): Sample[] {
    const out: Sample[] = [];
    for (const { labels, cell } of this.cells.values()) {
      let acc = 0;
      for (const [i, le] of this.bounds.entries()) {
        acc += cell.counts[i]!;
        out.push({ labels: { ...labels, le }, value: acc, metricName: `${this.name}_bucket` });
      }
      out.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: `${this.name}_bucket` });
      out.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
      out.push({ labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}
