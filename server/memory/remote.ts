/**
 * {@link RemoteMemory}: the {@link MemoryClient} that talks to a `DatabaseService` over gRPC, so
 * memory can live in another process. Errors come back as the same TabAgentErrors the server threw.
 */
import * as grpc from "@grpc/grpc-js";
import { TabAgentError } from "../errors/mod.ts";
import type { MemoryClient } from "./client.ts";
import { fromGrpcError, GRPC_MAX_MESSAGE_BYTES, loadDatabaseProto, methodTypes } from "./_proto.ts";
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

/** Time one call may take before it fails with `timeout` (ms); backups and restores get longer. */
const CALL_DEADLINE_MS = 60_000;
const LONG_CALL_DEADLINE_MS = 30 * 60_000;
const LONG_CALLS = new Set(["Backup", "Restore", "ImportJsonl", "Flush"]);

/** Options for {@link connectRemoteMemory}. */
export interface RemoteMemoryOptions {
  /** `unix:/path/memory.sock` or `127.0.0.1:<port>`. */
  address: string;
  /** The server's API token; null when it runs with --no-auth. */
  token: string | null;
}

/** Connects to the DatabaseService at `options.address` and waits until the channel is ready. */
export async function connectRemoteMemory(options: RemoteMemoryOptions): Promise<RemoteMemory> {
  const memory = new RemoteMemory(options);
  await memory.ready();
  return memory;
}

type Wire = Record<string, unknown>;

/**
 * The gRPC {@link MemoryClient}.
 *
 * @example
 * ```ts
 * const memory = await connectRemoteMemory({ address: "unix:/tmp/memory.sock", token });
 * const c = await memory.createConversation({ title: "remote" });
 * await memory.close();
 * ```
 */
export class RemoteMemory implements MemoryClient {
  #client: grpc.Client;
  #proto = loadDatabaseProto();
  #metadata = new grpc.Metadata();
  #methods: Map<string, { request: string; response: string }>;

  constructor(options: RemoteMemoryOptions) {
    this.#client = new this.#proto.Client(options.address, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
    });
    if (options.token !== null) this.#metadata.set("authorization", `Bearer ${options.token}`);
    this.#methods = methodTypes(this.#proto.service);
  }

  /** Resolves once connected; fails with `unavailable` after `timeoutMs`. */
  ready(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (error) => {
        if (error) reject(new TabAgentError("unavailable", `Memory service unreachable: ${error.message}`));
        else resolve();
      });
    });
  }

  #call<T>(name: string, request: unknown = {}): Promise<T> {
    const method = this.#methods.get(name)!;
    const wire = this.#proto.toWire(method.request, request);
    const deadline = Date.now() + (LONG_CALLS.has(name) ? LONG_CALL_DEADLINE_MS : CALL_DEADLINE_MS);
    return new Promise((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      (this.#client as any)[name](
        wire,
        this.#metadata,
        { deadline },
        (error: grpc.ServiceError | null, reply: Wire) => {
          if (error) reject(fromGrpcError(error));
          else resolve(this.#proto.fromWire(method.response, reply, "output") as T);
        },
      );
    });
  }

  #list(options: PageOptions = {}, filters: Wire = {}): Wire {
    return { cursor: options.cursor, limit: options.limit, ...filters };
  }

  createConversation(input: NewConversation = {}): Promise<Conversation> {
    return this.#call("CreateConversation", input);
  }
  getConversation(id: string): Promise<Conversation> {
    return this.#call("GetConversation", { id });
  }
  listConversations(options?: PageOptions): Promise<Page<Conversation>> {
    return this.#call("ListConversations", this.#list(options));
  }
  updateConversation(id: string, patch: ConversationPatch): Promise<Conversation> {
    return this.#call("UpdateConversation", {
      id,
      title: patch.title ?? undefined,
      metadata: patch.metadata ?? undefined,
      clear_title: patch.title === null,
      clear_metadata: patch.metadata === null,
    });
  }
  async deleteConversation(id: string): Promise<void> {
    await this.#call("DeleteConversation", { id });
  }
  async appendMessages(conversationId: string, messages: NewMessage[]): Promise<Message[]> {
    const reply = await this.#call<{ items: Message[] }>("AppendMessages", {
      conversation_id: conversationId,
      messages,
    });
    return reply.items;
  }
  getMessage(id: string): Promise<Message> {
    return this.#call("GetMessage", { id });
  }
  listMessages(conversationId: string, options?: PageOptions): Promise<Page<Message>> {
    return this.#call("ListMessages", this.#list(options, { parent_id: conversationId }));
  }
  async searchMessages(options: SearchOptions): Promise<SearchHit[]> {
    const reply = await this.#call<{ hits: SearchHit[] }>("SearchMessages", {
      query: options.query,
      limit: options.limit,
      conversation_id: options.conversationId,
      match: options.match,
    });
    return reply.hits;
  }
  upsertEntity(input: NewEntity): Promise<Entity> {
    return this.#call("UpsertEntity", input);
  }
  getEntity(id: string): Promise<Entity> {
    return this.#call("GetEntity", { id });
  }
  listEntities(options: PageOptions & { type?: string } = {}): Promise<Page<Entity>> {
    return this.#call("ListEntities", this.#list(options, { type: options.type }));
  }
  addRelation(input: NewRelation): Promise<Relation> {
    return this.#call("AddRelation", input);
  }
  listRelations(entityId: string, options?: PageOptions): Promise<Page<Relation>> {
    return this.#call("ListRelations", this.#list(options, { parent_id: entityId }));
  }
  addFact(input: NewFact): Promise<Fact> {
    return this.#call("AddFact", input);
  }
  getFact(id: string): Promise<Fact> {
    return this.#call("GetFact", { id });
  }
  listFacts(options: PageOptions & { entityId?: string } = {}): Promise<Page<Fact>> {
    return this.#call("ListFacts", this.#list(options, { parent_id: options.entityId }));
  }
  async deleteFact(id: string): Promise<void> {
    await this.#call("DeleteFact", { id });
  }
  async searchFacts(options: { query: string; limit?: number }): Promise<FactHit[]> {
    return (await this.#call<{ hits: FactHit[] }>("SearchFacts", options)).hits;
  }
  recordToolResult(input: NewToolResult): Promise<ToolResult> {
    return this.#call("RecordToolResult", input);
  }
  getToolResult(id: string): Promise<ToolResult> {
    return this.#call("GetToolResult", { id });
  }
  listToolResults(
    options: PageOptions & { conversationId?: string; toolName?: string } = {},
  ): Promise<Page<ToolResult>> {
    return this.#call(
      "ListToolResults",
      this.#list(options, { conversation_id: options.conversationId, tool_name: options.toolName }),
    );
  }
  recordEpisode(input: NewEpisode): Promise<Episode> {
    return this.#call("RecordEpisode", input);
  }
  getEpisode(id: string): Promise<Episode> {
    return this.#call("GetEpisode", { id });
  }
  addFeedback(episodeId: string, feedback: NewFeedback): Promise<Episode> {
    return this.#call("AddFeedback", { episode_id: episodeId, ...feedback });
  }
  listEpisodes(options?: PageOptions): Promise<Page<Episode>> {
    return this.#call("ListEpisodes", this.#list(options));
  }
  putSummary(input: NewSummary): Promise<Summary> {
    return this.#call("PutSummary", input);
  }
  listSummaries(conversationId: string, options?: PageOptions): Promise<Page<Summary>> {
    return this.#call("ListSummaries", this.#list(options, { parent_id: conversationId }));
  }
  putEmbedding(input: NewEmbedding): Promise<Embedding> {
    return this.#call("PutEmbedding", input);
  }
  getEmbedding(itemKind: EmbeddableKind, itemId: string, model: string): Promise<Embedding> {
    return this.#call("GetEmbedding", { item_kind: itemKind, item_id: itemId, model });
  }
  listPendingEmbeddings(options?: PageOptions): Promise<Page<PendingEmbedding>> {
    return this.#call("ListPendingEmbeddings", this.#list(options));
  }
  stats(): Promise<MemoryStats> {
    return this.#call("Stats");
  }
  async *exportJsonl(options: { conversationId?: string } = {}): AsyncIterable<string> {
    const wire = this.#proto.toWire("ExportRequest", { conversation_id: options.conversationId });
    // deno-lint-ignore no-explicit-any
    const stream = (this.#client as any).ExportJsonl(wire, this.#metadata) as grpc.ClientReadableStream<Wire>;
    try {
      for await (const message of stream) yield (message as { line: string }).line;
    } catch (error) {
      throw fromGrpcError(error as grpc.ServiceError);
    } finally {
      stream.cancel();
    }
  }
  importJsonl(jsonl: string): Promise<ImportResult> {
    return this.#call("ImportJsonl", { jsonl });
  }
  backup(dir: string): Promise<BackupManifest> {
    return this.#call("Backup", { dir });
  }
  restore(dir: string): Promise<BackupManifest> {
    return this.#call("Restore", { dir });
  }
  async flush(): Promise<void> {
    await this.#call("Flush");
  }
  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
  }
}
