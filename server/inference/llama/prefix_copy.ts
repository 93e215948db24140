/**
 * A new conversation starts from another sequence's shared prefix (a system prompt, a long
 * instruction) without evaluating it again: the local build copies the KV cells across sequences
 * (`tabagentCopySequencePrefix`, scripts/llama_native.ts), and this module brings node-llama-cpp's
 * books on the receiving sequence in line with what it now holds. The copy is exact on that build:
 * its kernels give every row the same bits whatever the batch (row-by-row flash attention, no
 * llamafile), so copied cells are those a fresh evaluation of the prefix writes.
 */
import type { Llama, LlamaContext, LlamaContextSequence } from "node-llama-cpp";
import { sequencePrefixCopier } from "./runtime.ts";
import { sequenceInternals } from "./internals.ts";

/** Copies `from`'s first `keep` tokens into `to` (emptied first); false when it could not. */
export type CopyPrefix = (from: LlamaContextSequence, to: LlamaContextSequence, keep: number) => Promise<boolean>;

interface NativeContext {
  decodeBatch: (...args: unknown[]) => Promise<unknown>;
}

/**
 * Knows whether a batch of the context is decoding now. The copy is queued in the KV cache's state,
 * which the decoding thread reads at the start of each batch, so it runs only between batches.
 */
class DecodeActivity {
  #inFlight?: Promise<unknown>;

  static track(context: LlamaContext): DecodeActivity | undefined {
    const native = (context as unknown as { _ctx?: NativeContext })._ctx;
    const decodeBatch = native?.decodeBatch;
    if (!native || typeof decodeBatch !== "function") return undefined;
    const activity = new DecodeActivity();
    native.decodeBatch = (...args) => {
      const decoding = decodeBatch.apply(native, args);
      activity.#inFlight = decoding;
      decoding.then(
        () => activity.#settled(decoding),
        () => activity.#settled(decoding),
      );
      return decoding;
    };
    return activity;
  }

  #settled(decoding: Promise<unknown>): void {
    if (this.#inFlight === decoding) this.#inFlight = undefined;
  }

  /** Runs `fn` (synchronous) once no batch is decoding, in the same turn as the check. */
  async between<T>(fn: () => T): Promise<T> {
    while (this.#inFlight) await this.#inFlight.catch(() => undefined);
    return fn();
  }
}

/**
 * The prefix copy for sequences of `context`, or undefined where the binding has none (the
 * prebuilt) or node-llama-cpp's internals are not the pinned version's.
 *
 * @example
 * ```ts
 * const copy = prefixCopy(llama, context);
 * if (copy && await copy(donor, fresh, 48)) console.log(fresh.nextTokenIndex); // 48
 * ```
 */
export function prefixCopy(llama: Llama, context: LlamaContext): CopyPrefix | undefined {
  const copy = sequencePrefixCopier(llama);
  const activity = copy && DecodeActivity.track(context);
  if (!copy || !activity) return undefined;
  const native = (context as unknown as { _ctx: unknown })._ctx;
  return async (from, to, keep) => {
    const source = sequenceInternals(from);
    const target = sequenceInternals(to);
    if (typeof source._sequenceId !== "number" || !Array.isArray(target._loadedTokenPredictions)) return false;
    // Predicted (not yet validated) tokens would make the books differ from the cells.
    if (source._loadedTokenPredictions.length > 0 || keep <= 0 || keep > from.nextTokenIndex) return false;
    await to.clearHistory();
    return await activity.between(() => {
      const prefix = source._contextTokens.slice(0, keep);
      if (from.disposed || to.disposed || prefix.length !== keep) return false;
      if (!copy(native, source._sequenceId, target._sequenceId, keep)) return false;
      target._contextTokens = prefix;
      target._nextTokenIndex = keep;
      target._loadedTokenPredictions.length = 0;
      return true;
    });
  };
}
