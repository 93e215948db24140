/**
 * The model orchestrator (the seed's ModelOrchestrator): asks the model cache (`models/`, injected
 * by `app.ts`) where a model's weights are, loads them (load → ready → unload), keeps them for Ollama-style
 * `keep_alive`, evicts least-recently-used models to stay inside the memory budget from hardware
 * detection, and routes every call through the scheduler. Its state feeds `/v1/models` (`isLoaded`),
 * `/v1/health` and `/v1/system`.
 *
 * @example
 * ```ts
 * import { ModelOrchestrator } from "./mod.ts";
 * const orchestrator = new ModelOrchestrator({ models: new ModelCache(root), hardware, scheduler, log });
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
  type ModelLocator,
  ModelOrchestrator,
  type ModelState,
  ONNX_MEMORY_FACTOR,
  type OrchestratorOptions,
  type RunOptions,
} from "./orchestrator.ts";
export { DEFAULT_KEEP_ALIVE_MS, KEEP_ALIVE_MESSAGE, KEEP_ALIVE_PATTERN, parseKeepAlive } from "./keep_alive.ts";
