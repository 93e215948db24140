/**
 * The sequences of one context, handed out so that a request lands where its prompt's prefix is
 * already evaluated: a conversation's next turn (or any request whose messages extend an earlier
 * one) continues on the sequence that holds the earlier turns, and only the new tokens are
 * processed. Sequences beyond the parallelism keep idle conversations; the least recently used is
 * overwritten when a new prompt needs room.
 */
import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";
import { TabAgentError } from "../../errors/mod.ts";
import type { CopyPrefix } from "./prefix_copy.ts";

/**
 * Why a reply is evaluated again before it is kept, measured on SmolLM2 (Q4_1, F16 KV cache) with
 * node-llama-cpp 3.21.1's CPU build, flash attention off: a run of tokens evaluated in batches of
 * two or more tokens gives bit-identical next-token probabilities however it is split (one batch;
 * chunks of 2; 42 + 2), whatever the thread count, but a batch of ONE token does not: llama.cpp
 * sends matrix products with one row to ggml's own dot products and those with two or more rows to
 * llamafile's sgemm ("only enable sgemm for prompt processing", `n < 2`), which sums in another
 * order. For this model that concerns the attention products against the F16 KV cache and the Q8_0
 * output head (Q4_1 weights use the same kernel either way), so the results are often identical
 * and sometimes not: evaluating the last token of a prompt alone changed the top probability at
 * 14 of 50 positions, by up to 0.03 (0.260 vs 0.235). Generated tokens are evaluated one at a time,
 * so a reply's KV is not what a fresh evaluation of the conversation gives (next turn's top token
 * 0.326 with the reply's KV kept vs 0.338 fresh), and keeping it would change greedy replies at near
 * ties. So once the reply is sent its tokens are evaluated again in batches of two or more, and a
 * continued prompt always evaluates at least {@link MIN_EVALUATED_TOKENS} tokens: the next turn then
 * finds prompt and reply exactly as a fresh evaluation would. With the prebuilt's flash attention
 * on, even a cached prompt prefix is not exact (its kernel tiles a prompt's rows); the local build
 * computes it row by row (scripts/llama_native.ts), which is exact, and runs with it on.
 */
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
  /**
   * Requests that started from a copy of another sequence's shared prefix (a system prompt): their
   * copied tokens count in `reusedTokens` too.
   */
  prefixCopies: number;
}

interface Slot {
  sequence: LlamaContextSequence;
  lastUsed: number;
  /** The tokens the sequence holds once `pending` is evaluated. */
  tokens: readonly Token[];
  /** The reply's tokens, still to be evaluated again (in batches, while the model is idle). */
  pending: Token[];
  /** The batch of `pending` being evaluated now. */
  refilling?: Promise<void>;
}

/** Reply tokens evaluated again at once while the model is idle: small, so a new request waits little. */
export const REFILL_BATCH_TOKENS = 32;

/**
 * The fewest tokens evaluated together on a sequence: a lone token takes llama.cpp's one-row
 * kernels, which do not give what a batch gives (see the module note).
 */
export const MIN_EVALUATED_TOKENS = 2;

/**
 * The shortest shared prefix worth copying from another sequence. The copy waits for the batch in
 * flight and then moves the rows of the copied cells (the local build's patched stream copy), and a
 * few tokens evaluate cheaply anyway. The figure is a judgement, not measured against other values.
 */
export const MIN_COPIED_TOKENS = 16;

/** How many held tokens past the shared prefix make a sequence another conversation, not this one's. */
const DIVERGED_TOKENS = 4;

/** How many of `pending` tokens to evaluate in the next refill batch: never one alone, nor one left over. */
export function refillBatchSize(pending: number, batch = REFILL_BATCH_TOKENS): number {
  if (pending < MIN_EVALUATED_TOKENS) return 0;
  if (pending <= batch) return pending;
  return pending - batch < MIN_EVALUATED_TOKENS ? batch - MIN_EVALUATED_TOKENS + 1 : batch;
}

/**
 * How long a released reply waits before it is evaluated again in the background (ms). A client
 * that sends the conversation's next turn at once (an agent's tool loop, the peer bench) finds the
 * reply not yet evaluated, and the reply and the new turn go through the model in one pass (one
 * read of the weights) instead of a refill batch, awaited, then a second pass for the new turn.
 * A person typing the next turn never notices the wait.
 */
export const REFILL_DELAY_MS = 50;

/**
 * Whether `context` evaluates a token alone exactly as inside a batch, so that a reply's KV, built
 * one generated token at a time, equals a fresh evaluation. Compares the next-token probabilities
 * after each of the last `positions` tokens of `tokens`, evaluated alone vs in one batch (node-llama-cpp's
 * prebuilt CPU build differs at about 3 positions in 10 with SmolLM2; a llama.cpp built with
 * `GGML_LLAMAFILE=OFF` differs at none). Leaves `sequence` empty.
 */
export async function evaluatesLoneTokensAsBatches(
  sequence: LlamaContextSequence,
  tokens: readonly Token[],
  positions = 16,
): Promise<boolean> {
  if (tokens.length < positions + 2) throw new Error("evaluatesLoneTokensAsBatches: too few tokens");
  const start = tokens.length - positions;
  const withProbabilities = (token: Token) => [token, { generateNext: { probabilities: true } }] as const;
  const top = (p: Map<Token, number> | undefined) => JSON.stringify([...(p ?? new Map()).entries()].slice(0, 5));
  try {
    const batch = await sequence.controlledEvaluate(
      tokens.map((token, i) => (i >= start ? withProbabilities(token) : token) as never),
    );
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(0, start));
    for (let i = start; i < tokens.length; i++) {
      const [alone] = await sequence.controlledEvaluate([withProbabilities(tokens[i]) as never]);
      if (top(alone?.next?.probabilities) !== top(batch[i]?.next?.probabilities)) return false;
    }
    return true;
  } finally {
    await sequence.clearHistory();
  }
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
  #stats: PromptCacheStats = { hits: 0, misses: 0, reusedTokens: 0, evictions: 0, prefixCopies: 0 };
  /** The prompt of each generating sequence: a new request may copy the prefix it shares. */
  readonly #busyPrompts = new Map<LlamaContextSequence, readonly Token[]>();

  readonly #keepReplies: boolean;
  readonly #copyPrefix?: CopyPrefix;

  /**
   * `sequences`: empty sequences already taken from `context`.
   * `keepReplies`: keep a reply's KV as generated instead of evaluating it again, for a build where
   * a lone token evaluates exactly as in a batch ({@link evaluatesLoneTokensAsBatches}).
   * `copyPrefix`: where the binding can, a request that no sequence holds the start of starts from
   * a copy of the longest prefix another sequence (idle or generating) shares with it.
   */
  constructor(
    context: LlamaContext,
    options: { keepReplies?: boolean; sequences?: LlamaContextSequence[]; copyPrefix?: CopyPrefix } = {},
  ) {
    this.#context = context;
    this.#keepReplies = options.keepReplies ?? false;
    this.#copyPrefix = options.copyPrefix;
    // Sequences already taken from the context (empty): free from the start.
    for (const sequence of options.sequences ?? []) this.#free.push({ sequence, lastUsed: 0, tokens: [], pending: [] });
  }

  /** Whether replies are kept as generated (true) or evaluated again before the next turn (false). */
  get keepsReplies(): boolean {
    return this.#keepReplies;
  }

  /** Sequences generating now. */
  get busy(): number {
    return this.#busy;
  }

  /** Idle sequences that hold a conversation's state. */
  get cached(): number {
    return this.#free.filter((slot) => slot.tokens.length > 0).length;
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
  acquire(tokens: readonly Token[] = []): Promise<{ sequence: LlamaContextSequence; reusedTokens: number }> {
    // One at a time: a request choosing while another copies a prefix could empty its donor first.
    const acquired = this.#acquiring.then(() => this.#acquireNow(tokens));
    this.#acquiring = acquired.catch(() => undefined);
    return acquired;
  }

  #acquiring: Promise<unknown> = Promise.resolve();

  async #acquireNow(tokens: readonly Token[]): Promise<{ sequence: LlamaContextSequence; reusedTokens: number }> {
    const best = this.#bestMatch(tokens);
    let slot: Slot | undefined;
    let reusedTokens = 0;
    if (best) {
      slot = this.#free.splice(best.index, 1)[0];
      reusedTokens = best.matched;
      this.#stats.hits++;
      this.#stats.reusedTokens += reusedTokens;
    } else {
      this.#stats.misses++;
      if (this.#context.sequencesLeft > 0) {
        slot = { sequence: this.#context.getSequence(), lastUsed: 0, tokens: [], pending: [] };
      } else if (this.#free.length) {
        const lru = this.#free.reduce((a, b, i) => (b.lastUsed < this.#free[a].lastUsed ? i : a), 0);
        slot = this.#free.splice(lru, 1)[0];
        if (slot.tokens.length > 0) this.#stats.evictions++;
      }
    }
    if (!slot) throw new TabAgentError("too_many_requests", "Every sequence of this model is busy");
    const donor = best ? undefined : this.#donorFor(tokens, slot);
    this.#busy++;
    try {
      await slot.refilling;
      if (best && slot.pending.length) {
        // Back before the model was idle long enough: the rest of the reply is not evaluated yet. It
        // is evaluated with the new prompt tokens, in the same batch (a batch of several tokens
        // evaluates exactly as a fresh prompt would, see the module note), which saves a pass.
        const evaluated = slot.sequence.nextTokenIndex;
        if (reusedTokens > evaluated) {
          this.#stats.reusedTokens -= reusedTokens - evaluated;
          reusedTokens = evaluated;
        }
      }
      slot.pending = [];
      if (donor && await this.#copyPrefix!(donor.sequence, slot.sequence, donor.shared)) {
        reusedTokens = donor.shared;
        this.#stats.prefixCopies++;
        this.#stats.reusedTokens += reusedTokens;
      }
      // What the prompts do not share goes now, so the sequence never holds another request's tokens.
      if (reusedTokens < slot.sequence.nextTokenIndex) {
        await slot.sequence.eraseContextTokenRanges([{ start: reusedTokens, end: slot.sequence.nextTokenIndex }]);
      }
    } catch (error) {
      this.#busy--;
      this.#free.push(slot);
      throw error;
    }
    this.#busyPrompts.set(slot.sequence, tokens);
    return { sequence: slot.sequence, reusedTokens };
  }

  /** The free sequence whose state `tokens` should continue, and how much of it they share; undefined for none. */
  #bestMatch(tokens: readonly Token[]): { index: number; matched: number } | undefined {
    let best: { index: number; matched: number } | undefined;
    let longest: { index: number; matched: number } | undefined;
    for (const [index, slot] of this.#free.entries()) {
      const held = slot.tokens;
      // The last prompt tokens are always evaluated again, with the one to sample from: never fewer than
      // MIN_EVALUATED_TOKENS, as a lone token would not evaluate as in a fresh prompt (module note).
      const matched = Math.min(commonPrefixLength(held, tokens), Math.max(0, tokens.length - MIN_EVALUATED_TOKENS));
      // Taking a sequence that shares only a little (a system prompt) would throw away another
      // conversation's state for a few tokens: that counts as no match.
      if (matched > 0 && matched * 2 >= held.length && (!best || matched > best.matched)) {
        best = { index, matched };
      }
      if (matched > 0 && (!longest || matched > longest.matched)) longest = { index, matched };
    }
    const emptyLeft = this.#context.sequencesLeft > 0 || this.#free.some((free) => !free.tokens.length);
    // A match that the prompt does not extend would cut another conversation short (two chats with
    // one system prompt). Where the shared prefix can be copied into a fresh sequence instead, nothing
    // is lost. A few tokens of difference are a turn's closing markers rendered again, not another chat.
    if (
      best && this.#copyPrefix && emptyLeft && this.#free[best.index].tokens.length - best.matched > DIVERGED_TOKENS
    ) {
      return undefined;
    }
    // Every sequence holds a conversation and one must go. Where the binding cannot copy a prefix, the
    // one sharing the longest prefix gives its place and keeps that prefix (llama-server's slots do the
    // same); otherwise the least recently used one goes and the prefix is copied, which keeps both.
    if (!best && !emptyLeft && !this.#copyPrefix && longest && longest.matched >= MIN_COPIED_TOKENS) return longest;
    return best;
  }

  /**
   * The sequence, idle or generating, whose evaluated state shares the longest prefix with `tokens`
   * (at least {@link MIN_COPIED_TOKENS}), for a request given `slot`, which holds none of it; its
   * state stays as it is.
   */
  #donorFor(tokens: readonly Token[], slot: Slot): { sequence: LlamaContextSequence; shared: number } | undefined {
    if (!this.#copyPrefix) return undefined;
    let donor: { sequence: LlamaContextSequence; shared: number } | undefined;
    const candidates: [LlamaContextSequence, readonly Token[]][] = [
      ...this.#free.map((free) => [free.sequence, free.tokens] as [LlamaContextSequence, readonly Token[]]),
      ...this.#busyPrompts,
    ];
    for (const [sequence, held] of candidates) {
      if (sequence === slot.sequence || sequence.disposed) continue;
      // Only what is evaluated there now, and never the prompt's last tokens (see MIN_EVALUATED_TOKENS).
      const shared = Math.min(
        commonPrefixLength(held, tokens),
        sequence.nextTokenIndex,
        tokens.length - MIN_EVALUATED_TOKENS,
      );
      if (shared >= MIN_COPIED_TOKENS && shared > (donor?.shared ?? 0)) donor = { sequence, shared };
    }
    return donor;
  }

  /** Evaluates every idle conversation's pending reply tokens now, without waiting for the delay. */
  async refillNow(): Promise<void> {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    for (const slot of [...this.#free]) {
      // The background pump may be refilling this slot: one batch at a time on a sequence.
      // A lone pending token stays pending: the next turn evaluates it with its own tokens.
      while (slot.refilling || (refillBatchSize(slot.pending.length) && !slot.sequence.disposed)) {
        await (slot.refilling ?? this.#refill(slot, refillBatchSize(slot.pending.length, slot.pending.length)));
      }
    }
  }

  /** Forgets every idle conversation's state (their next turns process the whole prompt). */
  async clear(): Promise<void> {
    for (const slot of this.#free) {
      slot.pending = [];
      await slot.refilling;
      await slot.sequence.clearHistory();
      slot.tokens = [];
    }
  }

  /**
   * Returns `sequence`, keeping the state of `prompt` (the request's prompt tokens) for the
   * conversation's next turn; the reply's tokens are dropped, as the next turn evaluates them as
   * part of its prompt (see the module note).
   */
  async release(sequence: LlamaContextSequence, prompt: readonly Token[]): Promise<void> {
    this.#busyPrompts.delete(sequence);
    try {
      if (sequence.disposed) return;
      const held = sequence.contextTokens;
      if (prompt.length === 0) {
        // Nothing to keep (an infill's markers): the state is useless to a later prompt.
        await sequence.clearHistory();
        this.#free.push({ sequence, lastUsed: ++this.#tick, tokens: [], pending: [] });
        return;
      }
      if (this.#keepReplies) {
        // The build evaluates a lone token as a batch would: the generated KV is the fresh one.
        this.#free.push({ sequence, lastUsed: ++this.#tick, tokens: [...held], pending: [] });
        return;
      }
      const matched = commonPrefixLength(held, prompt);
      const reply = held.slice(matched);
      if (matched < sequence.nextTokenIndex) {
        await sequence.eraseContextTokenRanges([{ start: matched, end: sequence.nextTokenIndex }]);
      }
      // The reply is evaluated again in batches once the model is idle (see #pump): the next turn
      // then starts after it, exactly as a fresh evaluation of the whole conversation would.
      this.#free.push({
        sequence,
        lastUsed: ++this.#tick,
        tokens: [...prompt.slice(0, matched), ...reply],
        pending: reply,
      });
    } finally {
      this.#busy--;
      this.#schedulePump();
    }
  }

  #pumpTimer?: ReturnType<typeof setTimeout>;

  /** Starts {@link #pump} after {@link REFILL_DELAY_MS}, unless a start is already scheduled. */
  #schedulePump(): void {
    if (this.#pumpTimer !== undefined) return;
    const timer = setTimeout(() => {
      this.#pumpTimer = undefined;
      this.#pump();
    }, REFILL_DELAY_MS);
    // An idle server (or a test) does not stay alive for a refill.
    Deno.unrefTimer(timer);
    this.#pumpTimer = timer;
  }

  /** Evaluates up to `count` of `slot`'s pending reply tokens as one batch. */
  #refill(slot: Slot, count: number): Promise<void> {
    const batch = slot.pending.splice(0, count);
    slot.refilling = slot.sequence.evaluateWithoutGeneratingNewTokens(batch).then(
      () => {
        slot.refilling = undefined;
      },
      async (_error: unknown) => {
        // Cut short (the model is closing) or failed: no usable state, the next turn evaluates it all.
        slot.refilling = undefined;
        slot.pending = [];
        slot.tokens = [];
        if (!slot.sequence.disposed) await slot.sequence.clearHistory();
      },
    );
    return slot.refilling;
  }

  #pumping = false;

  /** Evaluates pending reply tokens, a small batch at a time, while no request is generating. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    (async () => {
      try {
        while (this.#busy === 0) {
          const slot = this.#free.find((s) =>
            refillBatchSize(s.pending.length) > 0 && !s.refilling && !s.sequence.disposed
          );
          if (!slot) break;
          await this.#refill(slot, refillBatchSize(slot.pending.length));
        }
      } finally {
        this.#pumping = false;
      }
    })();
  }
}
