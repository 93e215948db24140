/**
 * llama.cpp through `node-llama-cpp`: the runtime (threads and backend from hardware detection),
 * GGUF models with one context and N sequences, the model's own chat template, sampling, stop
 * sequences, JSON-Schema output and forced tool calls through grammars, streaming, token counting
 * and cancellation by `AbortSignal`.
 *
 * @example
 * ```ts
 * import { createLlamaRuntime, LlamaTextModel } from "./mod.ts";
 * const llama = await createLlamaRuntime({ threads: 1, gpu: false });
 * const model = await LlamaTextModel.load(llama, "model.gguf", { sequences: 2, threads: 1 });
 * const prepared = await model.prepareChat({ messages: [{ role: "user", content: "hi" }], maxTokens: 16 });
 * const result = await model.generateChat(prepared, { onText: (t) => console.log(t) });
 * ```
 * @module
 */
export { createLlamaRuntime, llamaBinding, type LlamaRuntimeOptions } from "./runtime.ts";
export {
  DEFAULT_CONTEXT_SIZE,
  DEFAULT_TEMPERATURE,
  type LlamaModelOptions,
  LlamaTextModel,
  type PreparedChat,
  type PreparedCompletion,
  type PreparedInfill,
} from "./model.ts";
export { toChatHistory } from "./history.ts";
export { type PromptCacheStats, REFILL_DELAY_MS } from "./sequence_pool.ts";
export {
  chooseLlamaThreads,
  chooseLlamaThreadsForBusy,
  fixedLlamaThreads,
  LlamaThreadGovernor,
  type LoadProbe,
  type ThreadPolicy,
} from "./threads.ts";
export { DecodeThreadTuner } from "./decode_threads.ts";
export { DecodePlacement } from "./placement.ts";
export { type BindingChoice, chooseLlamaBinding, findNativeBinding, llamaCacheDir } from "./native_binding.ts";
export type * from "./types.ts";
