/**
 * Typed multi-stage pipelines (pre-process → model → post-process, chaining, per-stage errors) and
 * the retrieval-augmented chat pipeline: memory search → prompt → generate → store.
 *
 * @example
 * ```ts
 * import { ragChatPipeline } from "./mod.ts";
 * const pipeline = ragChatPipeline(memory, (turn) => generate(turn.prompt));
 * const done = await pipeline.run({ model: "org/m", messages, conversationId: "c1", useMemory: true });
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
  ragChatPipeline,
  type StoredMessage,
} from "./rag_chat.ts";
