/**
 * Typed multi-stage pipelines (pre-process → model → post-process, chaining, per-stage errors) and
 * the retrieval-augmented chat pipeline: memory search → prompt → generate → store.
 *
 * @example
 * ```ts
 * import { completeTurnPipeline, prepareTurnPipeline } from "./mod.ts";
 * const turn = await prepareTurnPipeline(memory).run({ model: "org/m", messages, conversationId: "c1", useMemory: true });
 * const done = await completeTurnPipeline(memory, (turn) => generate(turn.prompt)).run(turn);
 * ```
 * @module
 */
export { Pipeline, type Stage, stage, type StageContext } from "./pipeline.ts";
export {
  type ChatTurn,
  type CompletedTurn,
  completeTurnPipeline,
  type ConversationMemory,
  MEMORY_RECALL_LIMIT,
  type MemoryHit,
  newTurnMessages,
  type PreparedTurn,
  prepareTurnPipeline,
  type StoredMessage,
} from "./rag_chat.ts";
