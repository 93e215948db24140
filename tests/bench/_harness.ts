/**
 * The benchmark harness's shared pieces: reporting one JSON line per figure, and percentiles.
 * A suite is `tests/bench/<suite>.ts` whose default export receives a {@link BenchContext}.
 * @module
 */

/** What a suite gets. */
export interface BenchContext {
  suite: string;
  /** Prints `{"suite","name","value","unit"}` on stdout. */
  report(name: string, value: number, unit: string): void;
  /** Progress and notes go to stderr, so stdout stays pure JSON lines. */
  note(message: string): void;
}

/** A benchmark suite module's default export. */
export type BenchSuite = (ctx: BenchContext) => Promise<void>;

/** The p-th percentile (0..100) of `values`, nearest-rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Rounds for reporting without hiding small values. */
export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Creates the context for `suite`. */
export function createContext(suite: string): BenchContext {
  return {
    suite,
    report(name, value, unit) {
      console.log(JSON.stringify({ suite, name, value: round(value, 4), unit }));
    },
    note(message) {
      console.error(`[${suite}] ${message}`);
    },
  };
}
