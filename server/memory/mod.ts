/**
 * MIA memory: seven SQLite stores under `--db-path` (`conversations`, `knowledge`, `tool_results`,
 * `experience` hold the truth; `embeddings`, `summaries`, `meta` are derived), one
 * {@link MemoryClient} interface with an in-process ({@link LocalMemory}) and a gRPC
 * ({@link RemoteMemory}) implementation, full-text search, JSONL export/import, and backups.
 *
 * **Guarantee.** A write is acknowledged (its promise resolves) only after its SQLite transaction
 * committed to the WAL, so no acknowledged write is lost when the process dies, SIGKILL included
 * (`synchronous=NORMAL`: an OS crash or power cut may roll back the last few commits, never corrupt
 * the files). Everything one call writes into one store is one transaction: an append of many
 * messages lands whole or not at all, with the conversation's message count. The messages'
 * full-text index is derived: an append indexes the backlog in its own transaction once a few
 * hundred messages wait, and otherwise a search indexes it before it runs, so a search always sees
 * every acknowledged message (an index entry is never needed for durability). Effects on other
 * stores (embedding queue, summaries of a deleted conversation, counters) are not in that
 * transaction: the truth store records them (its append-only tables, or an `outbox` row written in
 * the same transaction), and the outbox worker applies them to the derived stores idempotently,
 * recording in each derived store how far it got in the same transaction as the effect. After a
 * crash at any point the derived stores therefore converge to the truth once the worker has run;
 * they can also be rebuilt from it at any time.
 *
 * @example
 * ```ts
 * import { openLocalMemory } from "./mod.ts";
 * const memory = await openLocalMemory({ dir: "/tmp/tabagent_db" });
 * const conversation = await memory.createConversation({ title: "Trip" });
 * await memory.appendMessages(conversation.id, [{ role: "user", content: "Book a train to Lyon" }]);
 * console.log(await memory.searchMessages({ query: "train" }));
 * await memory.close();
 * ```
 * @module
 */
export {
  MEMORY_METHODS,
  type MemoryCalls,
  type MemoryClient,
  type MemoryMethodName,
  type SearchBodySource,
} from "./client.ts";
export { LocalMemory, type LocalMemoryOptions, type MemoryEmbedder, openLocalMemory } from "./local.ts";
export * from "./types.ts";
export { ImportLineSchema } from "./_import.ts";
export { STORE_NAMES, type StoreName, SYNCHRONOUS } from "./stores.ts";
export { connectRemoteMemory, RemoteMemory, type RemoteMemoryOptions } from "./remote.ts";
export { type DatabaseServer, serveDatabase } from "./grpc_server.ts";
export { MemoryComponent, type MemoryConfig, openMemoryForCommand, readStatsForCommand } from "./component.ts";
