/**
 * The model orchestrator (the seed's ModelOrchestrator): finds models in the cache
 * (`<cache>/<org>--<name>/`), loads them (load → ready → unload), keeps them for Ollama-style
 * `keep_alive`, evicts least-recently-used models to stay inside the memory budget from hardware
 * detection, and routes every call through the scheduler. Its state feeds `/v1/models` (`isLoaded`),
 * `/v1/health` and `/v1/system`.
 *
 * @example
 * ```ts
 * import { ModelOrchestrator } from "./mod.ts";
 * const orchestrator = new ModelOrchestrator({ modelCachePath, hardware, scheduler, log });
 * await orchestrator.start();
 * orchestrator.isLoaded("org/model");
 * ```
 * @module
 */
export {
  DEFAULT_PROMPT_CACHE_SEQUENCES,
  DEFAULT_SEQUENCES_PER_MODEL,
  type InferenceStatus,
  type LoadedModelStatus,
  type ModelHandle,
  ModelOrchestrator,
  type ModelState,
  ONNX_MEMORY_FACTOR,
  type OrchestratorOptions,
  type RunOptions,
} from "./orchestrator.ts";
export {
  cacheDirName,
  listCachedModels,
  locateModel,
  MODEL_ID_PATTERN,
  type ModelFormat,
  type ModelLocation,
} from "./locate.ts";
export { DEFAULT_KEEP_ALIVE_MS, parseKeepAlive } from "./keep_alive.ts";
