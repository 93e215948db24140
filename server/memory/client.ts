/**
 * The memory API, declared once. {@link MEMORY_METHODS} is a table of every call: its gRPC method
 * in `protos/database.proto`, how the client's arguments become the request and back, and the zod
 * schema of its result. The {@link MemoryClient} type is inferred from it; {@link RemoteMemory}
 * and the gRPC server (`grpc_server.ts`) are generated from it; {@link LocalMemory} implements it.
 *
 * **Adding a memory method** (e.g. `searchHybrid`) touches:
 * 1. `protos/database.proto`: the rpc and its request/response messages (`*_json` fields carry
 *    free-form JSON, `optional` fields are null when unset; `_proto.ts` maps them by name);
 * 2. this table: one entry, with the result schema in `types.ts` (HTTP documents the same schema);
 * 3. one implementation: a function `(ctx, ...args)` in the store module that owns the data
 *    (`_conversations.ts`, `_knowledge.ts`, …), listed in `local.ts`'s `STORE_OPERATIONS`; a call
 *    that needs LocalMemory's own state (workers, gates, an index it owns) is a method of the class.
 * The remote client, the gRPC server and the shared test suite's clients need nothing more; TypeScript
 * refuses a LocalMemory that lacks the method. HTTP routes, if any, reuse the result schema.
 *
 * ```ts
 * // client.ts, in MEMORY_METHODS:
 * searchHybrid: rpc("SearchHybrid", (options: HybridOptions) => options)({
 *   result: z.array(HybridHitSchema),
 *   args: (r) => [r as HybridOptions],
 *   reply: "hits",
 * }),
 * ```
 *
 * @example
 * ```ts
 * const conversation = await memory.createConversation({ title: "Trip" });
 * await memory.appendMessages(conversation.id, [{ role: "user", content: "Book a train to Lyon" }]);
 * const hits = await memory.searchMessages({ query: "train Lyon", limit: 5 });
 * ```
 * @module
 */
import { z } from "zod";
import { type MemoryQueryInput, MemoryQueryResultSchema } from "./query/schema.ts";
import { DocumentSchema, type NewDocument } from "./types.ts";
import { GraphPathSchema, NeighborhoodSchema } from "./weaver/graph.ts";
import { type ConsolidateOptions, ConsolidationSchema, WeaverStatusSchema } from "./weaver/schema.ts";
import type { FactListOptions } from "./_knowledge.ts";
import {
  BackupManifestSchema,
  type ConversationPatch,
  ConversationSchema,
  type EmbeddableKind,
  EmbeddingSchema,
  EntitySchema,
  EpisodeSchema,
  FactHitSchema,
  FactSchema,
  type ImportResult,
  MemoryStatsSchema,
  MessageSchema,
  type NewConversation,
  type NewEmbedding,
  type NewEntity,
  type NewEpisode,
  type NewFact,
  type NewFeedback,
  type NewMessage,
  type NewRelation,
  type NewSummary,
  type NewToolResult,
  type PageOptions,
  pageSchema,
  PendingEmbeddingSchema,
  RelationSchema,
  SearchHitSchema,
  type SearchOptions,
  SummarySchema,
  ToolResultSchema,
} from "./types.ts";

/** A request or reply as `_proto.ts` decodes it: domain keys, JSON fields already parsed. */
// deno-lint-ignore no-explicit-any
export type Wire = Record<string, any>;

/** One memory call. */
export interface MethodSpec<A extends unknown[], R extends z.ZodType> {
  /** The gRPC method in `DatabaseService`. */
  rpc: string;
  /** What the call resolves to. */
  result: R;
  /** The client's arguments → the RPC request. */
  request: (...args: A) => Wire;
  /** The request as the server decoded it → the client's arguments. */
  args: (request: Wire) => A;
  /** The reply message wraps the result in this field (lists of hits or items); `empty` for void. */
  reply?: "items" | "hits" | "empty";
  /** Backups, restores, imports and flushes may run for minutes. */
  long?: boolean;
}

/**
 * Declares a call: `rpc(name, request)({ result, args, … })`. Two steps so that TypeScript fixes the
 * arguments from `request` before it checks that `args` gives them back.
 */
function rpc<A extends unknown[]>(name: string, request: (...args: A) => Wire) {
  return <R extends z.ZodType>(spec: Omit<MethodSpec<A, R>, "rpc" | "request">): MethodSpec<A, R> => ({
    ...spec,
    rpc: name,
    request,
  });
}

/** Pagination fields of a `ListRequest`. */
function page(request: Wire): PageOptions {
  return defined({ cursor: request.cursor, limit: request.limit });
}

/** `value` without its undefined fields: the input schemas tell absent from unset. */
export function defined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

const nothing = z.void();

/** Every memory call (see the module doc for how to add one). */
export const MEMORY_METHODS = {
  // conversations
  createConversation: rpc("CreateConversation", (input: NewConversation = {}) => input)({
    result: ConversationSchema,
    args: (r) => [r as NewConversation],
  }),
  getConversation: rpc("GetConversation", (id: string) => ({ id }))({
    result: ConversationSchema,
    args: (r) => [r.id],
  }),
  /** Most recently active first. */
  listConversations: rpc("ListConversations", (options: PageOptions = {}) => options)({
    result: pageSchema(ConversationSchema, "ConversationPage"),
    args: (r) => [page(r)],
  }),
  updateConversation: rpc("UpdateConversation", (id: string, patch: ConversationPatch) => ({
    id,
    title: patch.title ?? undefined,
    metadata: patch.metadata ?? undefined,
    clear_title: patch.title === null,
    clear_metadata: patch.metadata === null,
  }))({
    result: ConversationSchema,
    args: (r) => [
      r.id,
      defined({ title: r.clear_title ? null : r.title, metadata: r.clear_metadata ? null : r.metadata }),
    ],
  }),
  /** Deletes the conversation and its messages; its summaries and embeddings follow via the outbox. */
  deleteConversation: rpc("DeleteConversation", (id: string) => ({ id }))({
    result: nothing,
    args: (r) => [r.id],
    reply: "empty",
  }),

  // messages
  /** Appends in one transaction: all messages are stored or none. */
  appendMessages: rpc(
    "AppendMessages",
    (conversationId: string, messages: NewMessage[]) => ({ conversation_id: conversationId, messages }),
  )({
    result: z.array(MessageSchema),
    args: (r) => [r.conversation_id, r.messages],
    reply: "items",
  }),
  getMessage: rpc("GetMessage", (id: string) => ({ id }))({
    result: MessageSchema,
    args: (r) => [r.id],
  }),
  /** Oldest first. */
  listMessages: rpc(
    "ListMessages",
    (conversationId: string, options: PageOptions = {}) => ({ ...options, parent_id: conversationId }),
  )({
    result: pageSchema(MessageSchema, "MessagePage"),
    args: (r) => [r.parent_id, page(r)],
  }),
  /** FTS5 over message text, best first (BM25). */
  searchMessages: rpc("SearchMessages", (options: SearchOptions) => ({
    query: options.query,
    limit: options.limit,
    conversation_id: options.conversationId,
    match: options.match,
  }))({
    result: z.array(SearchHitSchema),
    args: (r) => [defined({ query: r.query, limit: r.limit, conversationId: r.conversation_id, match: r.match })],
    reply: "hits",
  }),

  // knowledge
  /** Creates the entity or updates the attributes of the one with the same type and name. */
  upsertEntity: rpc("UpsertEntity", (input: NewEntity) => input)({
    result: EntitySchema,
    args: (r) => [r as NewEntity],
  }),
  getEntity: rpc("GetEntity", (id: string) => ({ id }))({
    result: EntitySchema,
    args: (r) => [r.id],
  }),
  listEntities: rpc("ListEntities", (options: PageOptions & { type?: string } = {}) => options)({
    result: pageSchema(EntitySchema, "EntityPage"),
    args: (r) => [defined({ ...page(r), type: r.type })],
  }),
  addRelation: rpc("AddRelation", (input: NewRelation) => input)({
    result: RelationSchema,
    args: (r) => [r as NewRelation],
  }),
  /** Relations where the entity is subject or object. */
  listRelations: rpc(
    "ListRelations",
    (entityId: string, options: PageOptions = {}) => ({ ...options, parent_id: entityId }),
  )({
    result: pageSchema(RelationSchema, "RelationPage"),
    args: (r) => [r.parent_id, page(r)],
  }),
  addFact: rpc("AddFact", (input: NewFact) => input)({
    result: FactSchema,
    args: (r) => [r as NewFact],
  }),
  getFact: rpc("GetFact", (id: string) => ({ id }))({
    result: FactSchema,
    args: (r) => [r.id],
  }),
  /** Oldest first; `asOf` (ISO time): only what was true then; `current`: only what is true now. */
  listFacts: rpc(
    "ListFacts",
    (options: FactListOptions = {}) => ({
      ...page(options as PageOptions),
      parent_id: options.entityId,
      as_of: options.asOf,
      current: options.current,
    }),
  )({
    result: pageSchema(FactSchema, "FactPage"),
    args: (r) => [defined({ ...page(r), entityId: r.parent_id, asOf: r.as_of, current: r.current })],
  }),
  deleteFact: rpc("DeleteFact", (id: string) => ({ id }))({
    result: nothing,
    args: (r) => [r.id],
    reply: "empty",
  }),
  searchFacts: rpc("SearchFacts", (options: { query: string; limit?: number }) => options)({
    result: z.array(FactHitSchema),
    args: (r) => [defined({ query: r.query, limit: r.limit })],
    reply: "hits",
  }),

  // tool results
  recordToolResult: rpc("RecordToolResult", (input: NewToolResult) => input)({
    result: ToolResultSchema,
    args: (r) => [r as NewToolResult],
  }),
  getToolResult: rpc("GetToolResult", (id: string) => ({ id }))({
    result: ToolResultSchema,
    args: (r) => [r.id],
  }),
  listToolResults: rpc(
    "ListToolResults",
    (options: PageOptions & { conversationId?: string; toolName?: string } = {}) => ({
      ...page(options),
      conversation_id: options.conversationId,
      tool_name: options.toolName,
    }),
  )({
    result: pageSchema(ToolResultSchema, "ToolResultPage"),
    args: (r) => [defined({ ...page(r), conversationId: r.conversation_id, toolName: r.tool_name })],
  }),

  // experience
  recordEpisode: rpc("RecordEpisode", (input: NewEpisode) => input)({
    result: EpisodeSchema,
    args: (r) => [r as NewEpisode],
  }),
  getEpisode: rpc("GetEpisode", (id: string) => ({ id }))({
    result: EpisodeSchema,
    args: (r) => [r.id],
  }),
  addFeedback: rpc(
    "AddFeedback",
    (episodeId: string, feedback: NewFeedback) => ({ episode_id: episodeId, ...feedback }),
  )({
    result: EpisodeSchema,
    args: (r) => [r.episode_id, defined({ rating: r.rating, comment: r.comment }) as NewFeedback],
  }),
  listEpisodes: rpc("ListEpisodes", (options: PageOptions = {}) => options)({
    result: pageSchema(EpisodeSchema, "EpisodePage"),
    args: (r) => [page(r)],
  }),

  // summaries (derived)
  putSummary: rpc("PutSummary", (input: NewSummary) => input)({
    result: SummarySchema,
    args: (r) => [r as NewSummary],
  }),
  listSummaries: rpc(
    "ListSummaries",
    (conversationId: string, options: PageOptions = {}) => ({ ...options, parent_id: conversationId }),
  )({
    result: pageSchema(SummarySchema, "SummaryPage"),
    args: (r) => [r.parent_id, page(r)],
  }),

  // embeddings (derived)
  putEmbedding: rpc("PutEmbedding", (input: NewEmbedding) => input)({
    result: EmbeddingSchema,
    args: (r) => [r as NewEmbedding],
  }),
  getEmbedding: rpc("GetEmbedding", (itemKind: EmbeddableKind, itemId: string, model: string) => ({
    item_kind: itemKind,
    item_id: itemId,
    model,
  }))({
    result: EmbeddingSchema,
    args: (r) => [r.item_kind, r.item_id, r.model],
  }),
  /** Items still waiting for an embedding, oldest first. */
  listPendingEmbeddings: rpc("ListPendingEmbeddings", (options: PageOptions = {}) => options)({
    result: pageSchema(PendingEmbeddingSchema, "PendingEmbeddingPage"),
    args: (r) => [page(r)],
  }),

  // whole-memory operations
  stats: rpc("Stats", () => ({}))({
    result: MemoryStatsSchema,
    args: () => [],
  }),
  /** Writes a consistent snapshot of all seven stores and a checksummed manifest into `dir`. */
  backup: rpc("Backup", (dir: string) => ({ dir }))({
    result: BackupManifestSchema,
    args: (r) => [r.dir],
    long: true,
  }),
  /** Verifies the backup in `dir` and swaps it in for the live stores; a damaged backup changes nothing. */
  restore: rpc("Restore", (dir: string) => ({ dir }))({
    result: BackupManifestSchema,
    args: (r) => [r.dir],
    long: true,
  }),
  /** Applies pending outbox work now (tests and shutdown); resolves when the derived stores have caught up. */
  flush: rpc("Flush", () => ({}))({
    result: nothing,
    args: () => [],
    reply: "empty",
    long: true,
  }),

  // documents: pages the user brought into a chat
  /** Keeps a page (URL, title, text in chunks, embedded in the background). */
  addDocument: rpc("AddDocument", (input: NewDocument) => input)({
    result: DocumentSchema,
    args: (r) => [r as NewDocument],
  }),
  getDocument: rpc("GetDocument", (id: string) => ({ id }))({
    result: DocumentSchema,
    args: (r) => [r.id],
  }),
  /** Deletes the page and its chunks; their embeddings follow via the outbox. */
  deleteDocument: rpc("DeleteDocument", (id: string) => ({ id }))({
    result: nothing,
    args: (r) => [r.id],
    reply: "empty",
  }),

  // the knowledge graph (weaver/)
  /** Entities within `depth` hops (1–4) of one entity, with the relations among them. */
  entityNeighbors: rpc("EntityNeighbors", (id: string, depth?: number) => ({ id, depth }))({
    result: NeighborhoodSchema,
    args: (r) => [r.id, r.depth ?? undefined],
  }),
  /** The shortest path between two entities over current relations (at most `maxDepth` hops, 1–6). */
  graphPath: rpc("GraphPath", (from: string, to: string, maxDepth?: number) => ({ from, to, max_depth: maxDepth }))({
    result: GraphPathSchema,
    args: (r) => [r.from, r.to, r.max_depth ?? undefined],
  }),
  /** The weaver's mode, queue and counts. */
  weaverStatus: rpc("WeaverStatus", () => ({}))({
    result: WeaverStatusSchema,
    args: () => [],
  }),
  /** Applies the outbox and weaves every queued message now (when the weaver is on); returns its status. */
  weavePending: rpc("WeavePending", () => ({}))({
    result: WeaverStatusSchema,
    args: () => [],
    long: true,
  }),
  /** Merges duplicate entities: same normalised name, then name embeddings at least `threshold` similar. */
  consolidateEntities: rpc("ConsolidateEntities", (options: ConsolidateOptions = {}) => options)({
    result: ConsolidationSchema,
    args: (r) => [defined({ threshold: r.threshold ?? undefined })],
    long: true,
  }),

  // retrieval
  /** Hybrid search: keyword and vector lists fused, filtered and ranked (see query/engine.ts). */
  query: rpc("Query", (input: MemoryQueryInput) => ({ query: input }))({
    result: MemoryQueryResultSchema,
    args: (r) => [r.query as MemoryQueryInput],
  }),
};

type Methods = typeof MEMORY_METHODS;

/** The name of a call in {@link MEMORY_METHODS}. */
export type MemoryMethodName = keyof Methods;

/** The calls {@link MEMORY_METHODS} declares, as methods. */
export type MemoryCalls = {
  [K in MemoryMethodName]: (
    ...args: Parameters<Methods[K]["request"]>
  ) => Promise<z.output<Methods[K]["result"]>>;
};

/**
 * The one way the rest of the server reads and writes memory. Two implementations pass the same
 * test suite: `LocalMemory` (in-process, over `node:sqlite`) and `RemoteMemory` (over the gRPC
 * `DatabaseService`). Every method validates its input and throws a `TabAgentError`:
 * `validation_failed` naming the field, `payload_too_large`, `not_found` for unknown ids.
 */
export interface MemoryClient extends MemoryCalls {
  /** Every truth item as JSON lines (`{"record":"conversation",…}`), or one conversation's (a server stream). */
  exportJsonl(options?: { conversationId?: string }): AsyncIterable<string>;
  /**
   * Imports what `exportJsonl` wrote (a text, or its bytes as they arrive); what already exists is
   * skipped. A bad line fails the import with `validation_failed` naming the line, and writes nothing.
   * Over gRPC it is a client stream (`ImportJsonl`), so the text is never sent in one message.
   */
  importJsonl(source: string | ReadableStream<Uint8Array>): Promise<ImportResult>;
  close(): Promise<void>;
}

/**
 * A memory that can also answer {@link MemoryClient.searchMessages} as the HTTP route's body:
 * `{"hits": [...]}` in UTF-8 JSON, the same hits, built off the event loop (`LocalMemory` builds it
 * in its search worker). The route uses it where the client has it and `searchMessages` elsewhere
 * (`RemoteMemory`, whose hits arrive over gRPC as objects anyway).
 */
export interface SearchBodySource {
  searchMessagesBody(options: SearchOptions): Promise<Uint8Array<ArrayBuffer>>;
}

/** Every call of {@link MEMORY_METHODS} with its spec, for code that generates clients or servers. */
export function methodEntries(): [MemoryMethodName, MethodSpec<unknown[], z.ZodType>][] {
  return Object.entries(MEMORY_METHODS) as [MemoryMethodName, MethodSpec<unknown[], z.ZodType>][];
}

/** The reply message of a call → its result (a client unwraps what the server wrapped). */
export function resultFromReply(spec: MethodSpec<unknown[], z.ZodType>, reply: Wire): unknown {
  if (spec.reply === "empty") return undefined;
  return spec.reply ? reply[spec.reply] : reply;
}

/** A call's result → its reply message. */
export function replyFromResult(spec: MethodSpec<unknown[], z.ZodType>, result: unknown): unknown {
  if (spec.reply === "empty") return {};
  return spec.reply ? { [spec.reply]: result } : result;
}
