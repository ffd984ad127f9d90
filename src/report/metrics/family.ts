// Metric families read from plain counters at scrape time. The hot paths
// (a decision, a check, a store call) only add to numbers in arrays and
// objects they were handed; nothing there hashes label sets. A family turns
// those numbers into prom-client's metric shape when Prometheus asks, so
// prom-client's Registry writes the text and its AggregatorRegistry sums
// the families of every cluster worker.

export type Labels = Record<string, string>;

export interface MetricValue {
  value: number;
  labels: Labels;
  /** For a histogram's `_bucket`, `_sum` and `_count` lines. */
  metricName?: string;
}

/** prom-client's metric shape (what Registry.registerMetric takes and getMetricsAsJSON returns). */
export interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: MetricValue[];
  /** How the cluster primary joins the workers' values: sum (counters), or max (one store seen by every worker). */
  aggregator: 'sum' | 'max' | 'first';
}

export interface Family {
  name: string;
  help: string;
  type: MetricJson['type'];
  aggregator: MetricJson['aggregator'];
  get(): MetricJson;
}

/** A family whose values come from `collect` at each scrape. */
export function family(name: string, help: string, type: MetricJson['type'], collect: () => MetricValue[], aggregator: MetricJson['aggregator'] = 'sum'): Family {
  return {
    name,
    help,
    type,
    aggregator,
    get: () => ({ name, help, type, aggregator, values: collect() }),
  };
}

/** Upper bounds (seconds) of the latency histograms: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/**
 * One histogram series as plain numbers: counts per bucket (not
 * cumulative; the last slot is +Inf), the sum and the count. observe()
 * is a short scan of 14 bounds and three additions.
 */
export class PlainHistogram {
  readonly counts = new Float64Array(LATENCY_BUCKETS_S.length + 1);
  sum = 0;
  count = 0;

  /** `ms`: milliseconds, as performance.now() differences come. */
  observe(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && s > LATENCY_BUCKETS_S[i]) i++;
    this.counts[i]++;
    this.sum += s;
    this.count++;
  }

  /** Prometheus' cumulative `_bucket` lines, then `_sum` and `_count`. */
  values(name: string, labels: Labels, out: MetricValue[]): void {
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      cumulative += this.counts[i];
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: String(LATENCY_BUCKETS_S[i]) }, value: cumulative });
    }
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative + this.counts[LATENCY_BUCKETS_S.length] });
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
  }
}

/**
 * Histograms by one label whose values come from code or config (check
 * names, store operations): bounded, and capped all the same — past `max`
 * distinct values, the rest share the series `other`.
 */
export class HistogramsBy {
  private readonly series = new Map<string, PlainHistogram>();

  constructor(private readonly max = 200) {}

  get(key: string): PlainHistogram {
    let h = this.series.get(key);
    if (h === undefined) {
      if (this.series.size >= this.max) key = 'other';
      h = this.series.get(key) ?? new PlainHistogram();
      this.series.set(key, h);
    }
    return h;
  }

  values(name: string, label: string): MetricValue[] {
    const out: MetricValue[] = [];
    for (const [key, h] of this.series) h.values(name, { [label]: key }, out);
    return out;
  }
}

/** Counts by one bounded label (capped as HistogramsBy). */
export class CountsBy {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max = 200) {}

  add(key: string, n = 1): void {
    const had = this.counts.get(key);
    if (had !== undefined) this.counts.set(key, had + n);
    else if (this.counts.size < this.max) this.counts.set(key, n);
    else this.counts.set('other', (this.counts.get('other') ?? 0) + n);
  }

  values(label: string, extra: Labels = {}): MetricValue[] {
    return [...this.counts].map(([key, value]) => ({ labels: { ...extra, [label]: key }, value }));
  }
}
