/**
 * ONNX Runtime on `onnxruntime-node`: sessions with execution-provider fallback to CPU, tensors,
 * IO names and shapes, the execution-provider catalog with what this build and machine can use,
 * and embedding models (encoder + tokenizer.json).
 *
 * @example
 * ```ts
 * import { chooseProviders, compiledBackends, providerStatuses } from "./mod.ts";
 * const providers = chooseProviders(providerStatuses(compiledBackends(), hardware));
 * ```
 * @module
 */
export {
  chooseProviders,
  type CompiledBackend,
  EXECUTION_PROVIDERS,
  type ProviderEntry,
  type ProviderStatus,
  providerStatuses,
} from "./providers.ts";
export {
  compiledBackends,
  createSession,
  installedProviderLibraries,
  int64Tensor,
  type ModelIo,
  type OnnxSession,
  type TensorSpec,
} from "./session.ts";
export { type EmbeddingResult, MAX_EMBEDDING_TOKENS, OnnxEmbeddingModel } from "./embedding.ts";
