/**
 * How node-llama-cpp fills each llama.cpp batch when several sequences evaluate at once, and the
 * thread count each batch runs on.
 *
 * Concurrent replies decode in lockstep ({@link LockstepGate}). An earlier try held a batch for a
 * bounded number of microtask turns, which is too short: the other sequences' tokens come back from
 * sampling on libuv's thread pool, macrotasks later, so batches stayed split.
 */
import type {
  BatchItem,
  CustomBatchingPrioritizationStrategy,
  LlamaContext,
  PrioritizedBatchItem,
} from "node-llama-cpp";

/** Shares `size` token slots among `items`, each getting an equal part first (node-llama-cpp's "maximum parallelism"). */
export function shareBatch(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const chosen: PrioritizedBatchItem[] = [];
  let left = size;
  const each = Math.max(1, Math.floor(size / Math.max(1, items.length)));
  for (const item of items) {
    if (left === 0) break;
    const processAmount = Math.min(item.tokens.length, each, left);
    chosen.push({ item, processAmount });
    left -= processAmount;
  }
  for (const entry of chosen) {
    if (left === 0) break;
    const more = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += more;
    left -= more;
  }
  return chosen;
}

/**
 * The batches a reply comes out the same in, whatever else runs: one sequence's prompt tokens are
 * never mixed with other sequences' tokens. With several sequences, llama.cpp splits a mixed batch
 * into micro-batches of equal tokens per sequence, so a prompt sent beside another sequence's
 * single decode token was evaluated a token at a time, with other rounding than the same prompt
 * alone: the batched-exactness test failed in 2 of 2 fresh-clone CI runs under load. Here a prompt
 * (an item of more than one token) gets a batch of its own, as it would alone, and decode steps
 * (one token per sequence) are shared as {@link shareBatch} shares them.
 */
export function separatePrompts(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const prompt = items.find((item) => item.tokens.length > 1);
  if (prompt) return [{ item: prompt, processAmount: Math.min(prompt.tokens.length, size) }];
  return shareBatch(items, size);
}

/**
 * Prompts evaluated together, for a build that evaluates every row alike whatever the batch (the
 * local build: row-by-row flash attention, no llamafile; `evaluatesLoneTokensAsBatches`): when
 * prompts are waiting, they share one batch and decode steps wait, so llama.cpp splits it into
 * micro-batches of prompt tokens only (it gives each sequence equal tokens per micro-batch, and a
 * prompt beside a decode token would go one token at a time). Several prompts in one batch read the
 * weights once: four 14-token prompts took 4 × 52 ms one by one on the 2-core VM. Otherwise as
 * {@link separatePrompts}.
 */
export function groupPrompts(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const prompts = items.filter((item) => item.tokens.length > 1);
  if (prompts.length) return shareBatch(prompts, size);
  return shareBatch(items, size);
}

/**
 * `strategy`, with the thread count of each batch it forms set through `apply` (llama.cpp's cap,
 * which node-llama-cpp reads right after the strategy, before the batch runs).
 */
export function withBatchThreads(
  strategy: CustomBatchingPrioritizationStrategy,
  threadsFor: ((batch: { tokens: number; sequences: number }) => number) | undefined,
  apply: (threads: number) => void,
): CustomBatchingPrioritizationStrategy {
  if (!threadsFor) return strategy;
  return (input) => {
    const chosen = strategy(input);
    if (chosen.length === 0) return chosen;
    const tokens = chosen.reduce(
      (n, entry) => n + Math.max(1, Math.min(entry.processAmount, entry.item.tokens.length)),
      0,
    );
    apply(threadsFor({ tokens, sequences: chosen.length }));
    return chosen;
  };
}

/** How long a decode step may wait for the other sequences' steps (ms): bounds of {@link LockstepGate}'s wait. */
export const LOCKSTEP_WAIT_MS = { min: 5, max: 100 } as const;

/**
 * Makes concurrent replies decode in lockstep: a sequence's next decode step (one token) waits
 * until every other generating sequence has queued its own, so that they all go in one batch.
 *
 * Without it, node-llama-cpp runs whatever is queued the moment a batch ends, while the other
 * sequences are still sampling their token: with 4 clients the batches settled at 1, 2 and 3
 * tokens, never 4, one sequence always a batch behind the rest (120 batches for 4 × 64 tokens; 68
 * in lockstep). A step waits at most about two steps' time (a sequence a batch behind catches up
 * within one), so a sequence busy with something else (finishing, or set up but not yet
 * evaluating) delays the others once, by a bounded amount. Prompts are not held: they run in
 * batches of their own ({@link separatePrompts}), and the steps waiting do not wait for them.
 */
export class LockstepGate {
  readonly #wait: { min: number; max: number };
  #generating = 0;
  #promptsInFlight = 0;
  #waiting: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastStepMs = 0;
  #together = 0;

  constructor(wait: { min: number; max: number } = LOCKSTEP_WAIT_MS) {
    this.#wait = wait;
  }

  /** A sequence starts generating (its steps are waited for). */
  begin(): void {
    this.#generating++;
  }

  /** A sequence stops generating: steps waiting for it go. */
  end(): void {
    this.#generating--;
    this.#check();
  }

  /** Steps waiting now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** How many times the steps of several sequences went together because all had come (not by the bound). */
  get together(): number {
    return this.#together;
  }

  /** Runs one evaluation of `tokens` tokens through `run` (node-llama-cpp's queueing of it), held while its step's batch fills. */
  async decode<T>(tokens: number, run: () => Promise<T>): Promise<T> {
    if (tokens > 1) {
      this.#promptsInFlight++;
      try {
        return await run();
      } finally {
        this.#promptsInFlight--;
        this.#check();
      }
    }
    if (this.#generating > 1) await this.#hold();
    const began = performance.now();
    try {
      return await run();
    } finally {
      this.#lastStepMs = performance.now() - began;
    }
  }

  #hold(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      const { min, max } = this.#wait;
      this.#timer ??= setTimeout(() => this.#release(), Math.min(max, Math.max(min, 2 * this.#lastStepMs)));
      this.#check();
    });
  }

  #check(): void {
    if (this.#waiting.length && this.#waiting.length >= this.#generating - this.#promptsInFlight) {
      if (this.#waiting.length > 1) this.#together++;
      this.#release();
    }
  }

  /** Lets every waiting step go in this turn, so that node-llama-cpp queues them for one batch. */
  #release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

/** node-llama-cpp 3.21.1's internal queueing of one evaluation on a context (not in its typings). */
interface DecodeQueue {
  _decodeTokens?: (request: { tokens: readonly unknown[] }, ...rest: unknown[]) => Promise<unknown>;
}

/**
 * Routes every evaluation queued on `context` through `gate`. False when this node-llama-cpp has no
 * such internal method (another version): decoding then runs as node-llama-cpp schedules it.
 */
export function gateDecodes(context: LlamaContext, gate: LockstepGate): boolean {
  const queue = context as unknown as DecodeQueue;
  const decodeTokens = queue._decodeTokens;
  if (typeof decodeTokens !== "function") return false;
  queue._decodeTokens = (request, ...rest) =>
    gate.decode(request.tokens.length, () => decodeTokens.call(context, request, ...rest));
  return true;
}

/** node-llama-cpp 3.21.1's native context: the two calls around a batch's outputs (not in its typings). */
interface NativeContext {
  decodeBatch?: (...args: unknown[]) => Promise<unknown>;
  sampleToken?: (...args: unknown[]) => Promise<unknown>;
}

/**
 * Makes the first sampling after each batch run alone, so that the batch's outputs are put in order
 * once, before the other sequences read theirs.
 *
 * llama.cpp may compute a batch's outputs out of order (it groups tokens by sequence) and puts them
 * back in order on the first read (`output_reorder`, swapping rows in place). node-llama-cpp samples
 * every sequence of a batch at once, each on a thread of libuv's pool, so with several sequences in
 * a batch those reads raced: swaps done twice or half done, and replies took tokens from another
 * sequence's logits ("a rare haskama", "Marse and the City" in the batched-exactness test, 2 of 3
 * runs with 3 sequences in lockstep). The other samplings wait for the first one only (~0.3 ms a batch).
 * False when this node-llama-cpp's native context lacks these calls (another version).
 */
export function orderOutputsOnce(context: LlamaContext): boolean {
  const native = (context as unknown as { _ctx?: NativeContext })._ctx;
  const decodeBatch = native?.decodeBatch;
  const sampleToken = native?.sampleToken;
  if (!native || typeof decodeBatch !== "function" || typeof sampleToken !== "function") return false;
  let fresh = false; // a batch was decoded and nothing has read its outputs yet
  let first: Promise<unknown> | undefined;
  native.decodeBatch = async (...args) => {
    const result = await decodeBatch.apply(native, args);
    fresh = true;
    first = undefined;
    return result;
  };
  native.sampleToken = (...args) => {
    if (fresh) {
      fresh = false;
      const sampled = sampleToken.apply(native, args);
      first = sampled.catch(() => undefined);
      return sampled;
    }
    if (first) return first.then(() => sampleToken.apply(native, args));
    return sampleToken.apply(native, args);
  };
  return true;
}
