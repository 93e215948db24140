import type {
  BackupManifest,
  Conversation,
  ConversationPatch,
  EmbeddableKind,
  Embedding,
  Entity,
  Episode,
  Fact,
  FactHit,
  ImportResult,
  MemoryStats,
  Message,
  NewConversation,
  NewEmbedding,
  NewEntity,
  NewEpisode,
  NewFact,
  NewFeedback,
  NewMessage,
  NewRelation,
  NewSummary,
  NewToolResult,
  Page,
  PageOptions,
  PendingEmbedding,
  Relation,
  SearchHit,
  SearchOptions,
  Summary,
  ToolResult,
} from "./types.ts";

/**
 * The one way the rest of the server reads and writes memory. Two implementations pass the same
 * test suite: {@link LocalMemory} (in-process, over `node:sqlite`) and {@link RemoteMemory} (over the
 * gRPC `DatabaseService`). Every method validates its input and throws a `TabAgentError`:
 * `validation_failed` naming the field, `payload_too_large`, `not_found` for unknown ids.
 *
 * @example
 * ```ts
 * const conversation = await memory.createConversation({ title: "Trip" });
 * await memory.appendMessages(conversation.id, [{ role: "user", content: "Book a train to Lyon" }]);
 * const hits = await memory.searchMessages({ query: "train Lyon", limit: 5 });
 * ```
 */
export interface MemoryClient {
  // conversations
  createConversation(input?: NewConversation): Promise<Conversation>;
  getConversation(id: string): Promise<Conversation>;
  /** Most recently active first. */
  listConversations(options?: PageOptions): Promise<Page<Conversation>>;
  updateConversation(id: string, patch: ConversationPatch): Promise<Conversation>;
  /** Deletes the conversation and its messages; its summaries and embeddings follow via the outbox. */
  deleteConversation(id: string): Promise<void>;

  // messages
  /** Appends in one transaction: all messages are stored or none. */
  appendMessages(conversationId: string, messages: NewMessage[]): Promise<Message[]>;
  getMessage(id: string): Promise<Message>;
  /** Oldest first. */
  listMessages(conversationId: string, options?: PageOptions): Promise<Page<Message>>;
  /** FTS5 over message text, best first (BM25). */
  searchMessages(options: SearchOptions): Promise<SearchHit[]>;

  // knowledge
  /** Creates the entity or updates the attributes of the one with the same type and name. */
  upsertEntity(input: NewEntity): Promise<Entity>;
  getEntity(id: string): Promise<Entity>;
  listEntities(options?: PageOptions & { type?: string }): Promise<Page<Entity>>;
  addRelation(input: NewRelation): Promise<Relation>;
  /** Relations where the entity is subject or object. */
  listRelations(entityId: string, options?: PageOptions): Promise<Page<Relation>>;
  addFact(input: NewFact): Promise<Fact>;
  getFact(id: string): Promise<Fact>;
  listFacts(options?: PageOptions & { entityId?: string }): Promise<Page<Fact>>;
  deleteFact(id: string): Promise<void>;
  searchFacts(options: { query: string; limit?: number }): Promise<FactHit[]>;

  // tool results
  recordToolResult(input: NewToolResult): Promise<ToolResult>;
  getToolResult(id: string): Promise<ToolResult>;
  listToolResults(options?: PageOptions & { conversationId?: string; toolName?: string }): Promise<Page<ToolResult>>;

  // experience
  recordEpisode(input: NewEpisode): Promise<Episode>;
  getEpisode(id: string): Promise<Episode>;
  addFeedback(episodeId: string, feedback: NewFeedback): Promise<Episode>;
  listEpisodes(options?: PageOptions): Promise<Page<Episode>>;

  // summaries (derived)
  putSummary(input: NewSummary): Promise<Summary>;
  listSummaries(conversationId: string, options?: PageOptions): Promise<Page<Summary>>;

  // embeddings (derived)
  putEmbedding(input: NewEmbedding): Promise<Embedding>;
  getEmbedding(itemKind: EmbeddableKind, itemId: string, model: string): Promise<Embedding>;
  /** Items still waiting for an embedding, oldest first. */
  listPendingEmbeddings(options?: PageOptions): Promise<Page<PendingEmbedding>>;

  // whole-memory operations
  stats(): Promise<MemoryStats>;
  /** Every truth item as JSON lines (`{"record":"conversation",…}`), or one conversation's. */
  exportJsonl(options?: { conversationId?: string }): AsyncIterable<string>;
  /** Imports what {@link exportJsonl} wrote; conversations that already exist are skipped. */
  importJsonl(jsonl: string): Promise<ImportResult>;
  /** Writes a consistent snapshot of all seven stores and a checksummed manifest into `dir`. */
  backup(dir: string): Promise<BackupManifest>;
  /** Verifies the backup in `dir` and swaps it in for the live stores; a damaged backup changes nothing. */
  restore(dir: string): Promise<BackupManifest>;
  /** Applies pending outbox work now (tests and shutdown); resolves when the derived stores have caught up. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
