/**
 * node-llama-cpp's tokenizer with its answers kept (LRU): a chat prompt is tokenized piece by piece
 * (the template's fixed parts, each message), and most pieces recur from one request to the next
 * (the system message, the turn markers). Tokenizing SmolLM2's 37-token "What is 2+2?" prompt took
 * 0.2–0.7 ms of the event loop, before the first token; its fixed parts are now looked up.
 * @module
 */
import type { Tokenizer } from "node-llama-cpp";

/** Pieces longer than this (characters) are tokenized every time: kept ones cost memory. */
export const CACHED_PIECE_MAX_CHARS = 4096;

/**
 * `tokenizer` with the same answers, the last `capacity` distinct pieces' kept. Each call gets its
 * own array (callers may change theirs).
 *
 * @example
 * ```ts
 * const tokenize = cachedTokenizer(model.tokenizer, 256);
 * const tokens = llamaText.tokenize(tokenize);
 * ```
 */
export function cachedTokenizer(tokenizer: Tokenizer, capacity: number): Tokenizer {
  const kept = new Map<string, readonly number[]>();
  const cached = ((text: string, specialTokens?: boolean | "builtin", options?: "trimLeadingSpace") => {
    if (text.length > CACHED_PIECE_MAX_CHARS) return tokenizer(text, specialTokens as boolean, options);
    const key = `${specialTokens ?? false}\u0000${options ?? ""}\u0000${text}`;
    const hit = kept.get(key);
    if (hit) {
      // most recently used last, so that the first key is the one to evict
      kept.delete(key);
      kept.set(key, hit);
      return hit.slice();
    }
    const tokens = tokenizer(text, specialTokens as boolean, options);
    kept.set(key, tokens.slice());
    if (kept.size > capacity) kept.delete(kept.keys().next().value!);
    return tokens;
  }) as Tokenizer;
  return Object.freeze(Object.assign(cached, {
    detokenize: tokenizer.detokenize,
    isSpecialToken: tokenizer.isSpecialToken,
    isEogToken: tokenizer.isEogToken,
  }));
}
