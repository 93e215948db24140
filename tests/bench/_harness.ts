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

/** Paired rounds every goal is the median of (the issue asks for at least 5). */
export const PAIRED_ROUNDS = 5;

/** The median of `values`. */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** What {@link pairedRounds} measured: one value of each side per round, and each round's ratio. */
export interface PairedResult {
  ours: number[];
  baseline: number[];
  /** `ours[i] / baseline[i]` (or the `ratio` given) per round. */
  ratios: number[];
}

/**
 * Measures ours and the baseline back to back, `rounds` times, alternating which goes first (ours
 * first in round 0), so a pair shares the machine's drift: on a shared VM the speed of both sides
 * wanders by ±20% between runs, which a ratio of two separate medians shows as noise. Report
 * `median(result.ratios)`.
 *
 * @example
 * ```ts
 * const r = await pairedRounds({ ours: () => rate(store), baseline: () => rate(raw) });
 * ctx.report("insert_ratio_vs_raw", median(r.ratios), "ratio");
 * ```
 */
export async function pairedRounds(options: {
  ours: (round: number) => number | Promise<number>;
  baseline: (round: number) => number | Promise<number>;
  rounds?: number;
  ratio?: (ours: number, baseline: number) => number;
  /** Called after each round, e.g. to print progress. */
  onRound?: (round: number, ours: number, baseline: number) => void;
}): Promise<PairedResult> {
  const rounds = Math.max(PAIRED_ROUNDS, options.rounds ?? PAIRED_ROUNDS);
  const ratio = options.ratio ?? ((a: number, b: number) => a / b);
  const result: PairedResult = { ours: [], baseline: [], ratios: [] };
  for (let round = 0; round < rounds; round++) {
    let ours: number, baseline: number;
    if (round % 2 === 0) {
      ours = await options.ours(round);
      baseline = await options.baseline(round);
    } else {
      baseline = await options.baseline(round);
      ours = await options.ours(round);
    }
    result.ours.push(ours);
    result.baseline.push(baseline);
    result.ratios.push(ratio(ours, baseline));
    options.onRound?.(round, ours, baseline);
  }
  return result;
}

/** Reports a paired result: the medians of both sides under their names, and the median ratio. */
export function reportPaired(
  ctx: BenchContext,
  result: PairedResult,
  names: { ours: string; baseline: string; ratio: string; unit: string },
): void {
  ctx.report(names.ours, median(result.ours), names.unit);
  ctx.report(names.baseline, median(result.baseline), names.unit);
  ctx.report(names.ratio, median(result.ratios), "ratio");
  ctx.note(`${names.ratio} per round: ${result.ratios.map((r) => round(r, 3)).join(", ")}`);
}
