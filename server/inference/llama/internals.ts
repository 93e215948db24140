/**
 * What the prompt cache's copy (prefix_copy.ts) and the native decode loop (decode_loop.ts) read and
 * write inside node-llama-cpp 3.21.1's `LlamaContextSequence` (pinned in package.json): the
 * sequence's id in the context and its books of the tokens its KV cells hold.
 * @module
 */
import type { LlamaContextSequence, Token } from "node-llama-cpp";

/** A sequence's internals; each user checks their shape before relying on them. */
export interface SequenceInternals {
  _sequenceId: number;
  _contextTokens: Token[];
  _nextTokenIndex: number;
  _loadedTokenPredictions: unknown[];
}

/** `sequence` seen through its internals. */
export function sequenceInternals(sequence: LlamaContextSequence): SequenceInternals {
  return sequence as unknown as SequenceInternals;
}
