/**
 * In-process inference: llama.cpp (`llama/`), ONNX Runtime (`onnx/`), tokenizers, pipelines, the
 * scheduler every model call goes through, and the orchestrator that loads and evicts models.
 * Each sub-module has its own `mod.ts`; this one re-exports what the composition root needs.
 *
 * @example
 * ```ts
 * import { ModelOrchestrator, Scheduler } from "./mod.ts";
 * ```
 * @module
 */
export { ModelOrchestrator } from "./orchestrator/mod.ts";
export { Scheduler } from "./scheduler/mod.ts";
export { type ConversationMemory } from "./pipeline/mod.ts";
export { inferenceChecks } from "./doctor.ts";
