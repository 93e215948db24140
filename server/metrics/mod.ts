/**
 * A small Prometheus registry (counters, gauges, histograms with labels) and the text exposition
 * format 0.0.4. Kept in-house because the hot path (one observation per request) must cost well
 * under a microsecond; label values are joined into one map key.
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry();
 * const requests = registry.counter("tabagent_http_requests_total", "HTTP requests", ["route"]);
 * requests.inc({ route: "/v1/health" });
 * console.log(registry.render());
 * ```
 * @module
 */

type Labels = Record<string, string>;

/** Default latency buckets in seconds: fine below 1 ms, where a local API lives. */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

abstract class Metric<S> {
  readonly series = new Map<string, { labels: Labels; state: S }>();
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
  }
  protected abstract initial(): S;
  protected entry(labels: Labels = {}): S {
    let key = "";
    for (const label of this.labelNames) key += (labels[label] ?? "") + "\u0000";
    let found = this.series.get(key);
    if (!found) {
      found = { labels: { ...labels }, state: this.initial() };
      this.series.set(key, found);
    }
    return found.state;
  }
  protected labelText(labels: Labels, extra?: [string, string]): string {
    const parts = this.labelNames.map((name) => `${name}="${escapeLabel(labels[name] ?? "")}"`);
    if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return parts.length ? `{${parts.join(",")}}` : "";
  }
  abstract readonly type: string;
  abstract renderSeries(out: string[]): void;
}

/** A monotonically increasing count. */
export class Counter extends Metric<{ value: number }> {
  readonly type = "counter";
  protected initial() {
    return { value: 0 };
  }
  /** Adds `amount` (default 1). */
  inc(labels?: Labels, amount = 1): void {
    this.entry(labels).value += amount;
  }
  /** A function that adds 1 to the series for `labels`, resolved once (for hot paths). */
  bind(labels?: Labels): () => void {
    const state = this.entry(labels);
    return () => {
      state.value++;
    };
  }
  /** The current value for these labels. */
  get(labels?: Labels): number {
    return this.entry(labels).value;
  }
  renderSeries(out: string[]): void {
    for (const { labels, state } of this.series.values()) {
      out.push(`${this.name}${this.labelText(labels)} ${formatNumber(state.value)}`);
    }
  }
}

/** A value that goes up and down, or is computed when scraped. */
export class Gauge extends Metric<{ value: number }> {
  readonly type = "gauge";
  #collect?: (gauge: Gauge) => void;
  constructor(name: string, help: string, labelNames: readonly string[], collect?: (gauge: Gauge) => void) {
    super(name, help, labelNames);
    this.#collect = collect;
  }
  protected initial() {
    return { value: 0 };
  }
  /** Sets the value for these labels. */
  set(labels: Labels | undefined, value: number): void {
    this.entry(labels).value = value;
  }
  renderSeries(out: string[]): void {
    this.#collect?.(this);
    for (const { labels, state } of this.series.values()) {
      out.push(`${this.name}${this.labelText(labels)} ${formatNumber(state.value)}`);
    }
  }
}

/** A distribution in cumulative buckets, with sum and count. */
export class Histogram extends Metric<{ counts: Float64Array; sum: number; count: number }> {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  constructor(name: string, help: string, labelNames: readonly string[], buckets = LATENCY_BUCKETS_SECONDS) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  protected initial() {
    return { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
  }
  /** Records one observation. */
  observe(labels: Labels | undefined, value: number): void {
    this.#record(this.entry(labels), value);
  }
  /** A function that records into the series for `labels`, resolved once (for hot paths). */
  bind(labels?: Labels): (value: number) => void {
    const state = this.entry(labels);
    return (value) => this.#record(state, value);
  }
  #record(state: { counts: Float64Array; sum: number; count: number }, value: number): void {
    state.sum += value;
    state.count++;
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        state.counts[i]++;
        return;
      }
    }
  }
  renderSeries(out: string[]): void {
    for (const { labels, state } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += state.counts[i];
        out.push(`${this.name}_bucket${this.labelText(labels, ["le", formatNumber(bound)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${this.labelText(labels, ["le", "+Inf"])} ${state.count}`);
      out.push(`${this.name}_sum${this.labelText(labels)} ${formatNumber(state.sum)}`);
      out.push(`${this.name}_count${this.labelText(labels)} ${state.count}`);
    }
  }
}

/** Holds every metric and renders the exposition text. */
export class MetricsRegistry {
  #metrics = new Map<string, Metric<unknown>>();

  #register<M extends Metric<unknown>>(metric: M): M {
    const existing = this.#metrics.get(metric.name);
    if (existing) {
      if (existing.type !== metric.type) throw new Error(`metric ${metric.name} registered with two types`);
      return existing as M;
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** Registers (or returns the existing) counter. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(new Counter(name, help, labelNames));
  }

  /** Registers a gauge; `collect` runs at each scrape to refresh computed values. */
  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: (gauge: Gauge) => void): Gauge {
    return this.#register(new Gauge(name, help, labelNames, collect));
  }

  /** Registers (or returns the existing) histogram. */
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: number[]): Histogram {
    return this.#register(new Histogram(name, help, labelNames, buckets));
  }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    const out: string[] = [];
    for (const metric of this.#metrics.values()) {
      out.push(`# HELP ${metric.name} ${metric.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`);
      out.push(`# TYPE ${metric.name} ${metric.type}`);
      metric.renderSeries(out);
    }
    return out.join("\n") + "\n";
  }
}

/** The content type of {@link MetricsRegistry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
