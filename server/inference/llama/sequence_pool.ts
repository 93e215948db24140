/**
 * The sequences of one context, handed out so that a request lands where its prompt's prefix is
 * already evaluated: a conversation's next turn (or any request whose messages extend an earlier
 * one) continues on the sequence that holds the earlier turns, and only the new tokens are
 * processed. Sequences beyond the parallelism keep idle conversations; the least recently used is
 * overwritten when a new prompt needs room.
 */
import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";
import { TabAgentError } from "../../errors/mod.ts";

/**
 * Prompts are evaluated in chunks of this many tokens, and a sequence keeps its state only up to a
 * multiple of it: a continued prompt is then split into exactly the chunks a fresh evaluation
 * would use. llama.cpp's CPU kernels do not give bit-identical results for a token evaluated in a
 * chunk of 41 and in one of 72, nor for a generated token (evaluated alone) and the same token in
 * a prompt; greedy replies would then differ with and without the cache at near ties.
 */
export const PROMPT_CHUNK_TOKENS = 64;

/** What the pool has done so far. */
export interface PromptCacheStats {
  /** Requests that continued on a sequence already holding part of their prompt. */
  hits: number;
  /** Requests that found no sequence holding their prefix. */
  misses: number;
  /** Prompt tokens that did not need processing again. */
  reusedTokens: number;
  /** Cached conversations overwritten by another prompt (LRU). */
  evictions: number;
}

interface Slot {
  sequence: LlamaContextSequence;
  lastUsed: number;
}

function alignDown(tokens: number): number {
  return Math.floor(tokens / PROMPT_CHUNK_TOKENS) * PROMPT_CHUNK_TOKENS;
}

/** Tokens `a` and `b` share from the start. */
export function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Free and busy sequences of one context, chosen by prompt prefix then by least recent use.
 *
 * @example
 * ```ts
 * const pool = new SequencePool(context);
 * const { sequence, reusedTokens } = pool.acquire(promptTokens);
 * try { ... } finally { pool.release(sequence); }
 * ```
 */
export class SequencePool {
  readonly #context: LlamaContext;
  readonly #free: Slot[] = [];
  #busy = 0;
  #tick = 0;
  #stats: PromptCacheStats = { hits: 0, misses: 0, reusedTokens: 0, evictions: 0 };

  constructor(context: LlamaContext) {
    this.#context = context;
  }

  /** Sequences generating now. */
  get busy(): number {
    return this.#busy;
  }

  /** Idle sequences that hold a conversation's state. */
  get cached(): number {
    return this.#free.filter((slot) => slot.sequence.nextTokenIndex > 0).length;
  }

  /** Hits, misses, reused tokens and evictions so far. */
  get stats(): PromptCacheStats {
    return { ...this.#stats };
  }

  /**
   * A free sequence for a prompt of `tokens`: the one whose state the prompt extends (or mostly
   * shares, as when the last message was edited), else a fresh one, else the least recently used.
   * `reusedTokens` is how much of the prompt is already evaluated there.
   */
  async acquire(tokens: readonly Token[] = []): Promise<{ sequence: LlamaContextSequence; reusedTokens: number }> {
    let best: { index: number; matched: number } | undefined;
    for (const [index, slot] of this.#free.entries()) {
      const held = slot.sequence.contextTokens;
      // The last prompt token is always evaluated again to sample from, so it never counts.
      const matched = alignDown(Math.min(commonPrefixLength(held, tokens), Math.max(0, tokens.length - 1)));
      // Taking a sequence that shares only a little (a system prompt) would throw away another
      // conversation's state for a few tokens: that counts as no match.
      if (matched >= PROMPT_CHUNK_TOKENS && matched * 2 >= held.length && (!best || matched > best.matched)) {
        best = { index, matched };
      }
    }
    let slot: Slot | undefined;
    let reusedTokens = 0;
    if (best) {
      slot = this.#free.splice(best.index, 1)[0];
      reusedTokens = best.matched;
      this.#stats.hits++;
      this.#stats.reusedTokens += reusedTokens;
    } else {
      this.#stats.misses++;
      if (this.#context.sequencesLeft > 0) slot = { sequence: this.#context.getSequence(), lastUsed: 0 };
      else if (this.#free.length) {
        const lru = this.#free.reduce((a, b, i) => (b.lastUsed < this.#free[a].lastUsed ? i : a), 0);
        slot = this.#free.splice(lru, 1)[0];
        if (slot.sequence.nextTokenIndex > 0) this.#stats.evictions++;
      }
    }
    if (!slot) throw new TabAgentError("too_many_requests", "Every sequence of this model is busy");
    this.#busy++;
    try {
      // Evaluation must restart at a chunk boundary (see PROMPT_CHUNK_TOKENS), not where the prompts diverge.
      if (reusedTokens < slot.sequence.nextTokenIndex) {
        await slot.sequence.eraseContextTokenRanges([{ start: reusedTokens, end: slot.sequence.nextTokenIndex }]);
      }
    } catch (error) {
      this.#busy--;
      this.#free.push(slot);
      throw error;
    }
    return { sequence: slot.sequence, reusedTokens };
  }

  /** Forgets every idle conversation's state (their next turns process the whole prompt). */
  async clear(): Promise<void> {
    for (const slot of this.#free) await slot.sequence.clearHistory();
  }

  /**
   * Returns `sequence`, keeping the state of `prompt` (the request's prompt tokens) up to the last
   * whole chunk for the conversation's next turn; the reply's tokens are dropped, as the next turn
   * evaluates them as part of its prompt.
   */
  async release(sequence: LlamaContextSequence, prompt: readonly Token[]): Promise<void> {
    try {
      if (sequence.disposed) return;
      const matched = commonPrefixLength(sequence.contextTokens, prompt);
      const keep = alignDown(matched);
      if (keep < sequence.nextTokenIndex) {
        await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
      }
      this.#free.push({ sequence, lastUsed: ++this.#tick });
    } finally {
      this.#busy--;
    }
  }
}
