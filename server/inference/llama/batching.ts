/**
 * How node-llama-cpp fills each llama.cpp batch when several sequences evaluate at once, and the
 * thread count each batch runs on.
 *
 * A strategy that made concurrent sequences decode in lockstep (a batch waiting, a bounded number
 * of microtask turns, until every generating sequence had queued its token) was tried and removed:
 * it did not make the batched-exactness test pass more often, and exactness comes before the
 * throughput it bought (concurrent4 0.44 of llama-server either way).
 */
import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";

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
