/**
 * How node-llama-cpp picks the tokens of each llama.cpp batch when several sequences generate at
 * once. Its own strategy takes whatever is queued when a batch starts. After each batch, every
 * sequence samples its next token and queues it, but the one whose sample resolves last is still
 * on its way when the next batch starts: measured with 4 streams of 64 tokens on SmolLM2, 117
 * batches of mostly 3 tokens and 1 token, where 4 tokens in lockstep need 65. Each batch reads all
 * the weights once (the memory-bound cost of a token on a CPU), so the straggler's lone batch costs
 * almost as much as the batch of the other three. Here a batch waits, a bounded number of
 * microtask turns and never for a timer, until every generating sequence has queued its token.
 */
import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";

/**
 * Empty batches a batch may wait for stragglers (each is one microtask turn of node-llama-cpp's
 * batch loop, microseconds): enough for a sequence whose next token is queued by promise
 * continuations alone, and a bound for one that will not queue (it finished).
 */
export const LOCKSTEP_MAX_WAITS = 64;

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
 * A batching strategy that waits (up to {@link LOCKSTEP_MAX_WAITS} empty rounds) until as many
 * sequences have queued tokens as `generating()` says are generating, then shares the batch.
 *
 * @example
 * ```ts
 * const context = await model.createContext({ batching: { itemPrioritizationStrategy: lockstepBatches(() => pool.busy) } });
 * ```
 */
export function lockstepBatches(generating: () => number): CustomBatchingPrioritizationStrategy {
  let waited = 0;
  return ({ items, size }) => {
    if (items.length < generating() && waited < LOCKSTEP_MAX_WAITS) {
      waited++;
      return [];
    }
    waited = 0;
    return shareBatch(items, size);
  };
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
