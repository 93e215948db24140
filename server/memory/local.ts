/**
 * {@link LocalMemory}: the in-process {@link MemoryClient} over `node:sqlite`. Writes are synchronous
 * SQLite transactions on the main thread (a few microseconds each); searches run in a worker pool
 * with read-only connections; the outbox worker keeps the derived stores in step.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { z } from "zod";
import {
  MEMORY_DEFAULT_PAGE_SIZE,
  MEMORY_MAX_MESSAGE_BYTES,
  MEMORY_MAX_MESSAGES_PER_APPEND,
  MEMORY_OUTBOX_INTERVAL_MS,
  MEMORY_SEARCH_TIMEOUT_MS,
} from "../config/mod.ts";
import { TabAgentError, validationError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { MemoryClient } from "./client.ts";
import {
  contentText,
  conversationFromRow,
  type ConversationRow,
  decodeCursor,
  encodeCursor,
  entityFromRow,
  type EntityRow,
  episodeFromRow,
  type EpisodeRow,
  FACT_COLUMNS,
  FACT_SEARCH_SQL,
  factFromRow,
  type FactRow,
  type FeedbackRow,
  formatId,
  ftsQuery,
  ID_PREFIX,
  iso,
  jsonOrNull,
  MESSAGE_COLUMNS,
  messageFromArray,
  messageFromRow,
  type MessageRow,
  messageSearchSql,
  notFound,
  parseId,
  relationFromRow,
  type RelationRow,
  requireId,
  summaryFromRow,
  type SummaryRow,
  toolResultFromRow,
  type ToolResultRow,
} from "./_rows.ts";
import { applyOutboxStep, OUTBOX_OPS, outboxBacklog, OutboxWorker, resetTails } from "./_outbox.ts";
import { SearchPool } from "./_search_pool.ts";
import {
  prepareBackupDir,
  recoverRestore,
  snapshotStores,
  stageBackup,
  swapInStaged,
  verifyBackup,
  writeManifest,
} from "./_backup.ts";
import { exportLines, importLines } from "./_jsonl.ts";
import {
  closeStores,
  openStores,
  schemaVersion,
  STORE_NAMES,
  storeFile,
  type StoreName,
  type Stores,
} from "./stores.ts";
import {
  type BackupManifest,
  type Conversation,
  type ConversationPatch,
  ConversationPatchSchema,
  EMBEDDABLE_KINDS,
  type EmbeddableKind,
  type Embedding,
  type Entity,
  type Episode,
  type Fact,
  type FactHit,
  FeedbackSchema,
  type ImportResult,
  type MemoryStats,
  type Message,
  type NewConversation,
  NewConversationSchema,
  type NewEmbedding,
  NewEmbeddingSchema,
  type NewEntity,
  NewEntitySchema,
  type NewEpisode,
  NewEpisodeSchema,
  type NewFact,
  NewFactSchema,
  type NewFeedback,
  type NewMessage,
  NewMessageSchema,
  type NewRelation,
  NewRelationSchema,
  type NewSummary,
  NewSummarySchema,
  type NewToolResult,
  NewToolResultSchema,
  type Page,
  type PageOptions,
  PageOptionsSchema,
  type PendingEmbedding,
  type Relation,
  type SearchHit,
  type SearchOptions,
  SearchOptionsSchema,
  type Summary,
  type ToolResult,
} from "./types.ts";

/** Options for {@link openLocalMemory}. */
export interface LocalMemoryOptions {
  /** Folder holding the seven store files (`--db-path`). */
  dir: string;
  /** Search workers; 0 runs searches inline (bounded by their `limit`). Default 1. */
  searchWorkers?: number;
  /** Run the outbox worker in the background (default true). */
  outbox?: boolean;
  log?: Logger;
}

/** Parses `value` with `schema` or throws `validation_failed` naming the field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(where, result.error.issues);
  return result.data;
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function newConversationId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let id = "conv_";
  for (const byte of bytes) id += ALPHABET[byte & 31];
  return id;
}

function pageOf<T, R>(rows: R[], limit: number, map: (row: R) => T, key: (row: R) => (string | number)[]): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { items: kept.map(map), next_cursor: more ? encodeCursor(key(kept[kept.length - 1])) : null };
}

function tooLarge(what: string, bytes: number): TabAgentError {
  return new TabAgentError(
    "payload_too_large",
    `${what} is ${bytes} bytes; the limit is ${MEMORY_MAX_MESSAGE_BYTES}`,
    { limit: MEMORY_MAX_MESSAGE_BYTES },
  );
}

const encoder = new TextEncoder();

function byteLength(text: string): number {
  // UTF-8 is at most 3 bytes per UTF-16 unit: only measure when the cheap bound could exceed.
  return text.length * 3 <= MEMORY_MAX_MESSAGE_BYTES ? text.length : encoder.encode(text).length;
}

/** Values bound into the message insert, in column order. */
interface PreparedMessage {
  input: NewMessage;
  text: string;
  parts: string | null;
}

/** Opens (creating and migrating) the stores in `options.dir` and starts the workers. */
export async function openLocalMemory(options: LocalMemoryOptions): Promise<LocalMemory> {
  if (
    await recoverRestore(options.dir).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    })
  ) {
    options.log?.warn("finished a restore that was interrupted", { dir: options.dir });
  }
  return new LocalMemory(options, openStores(options.dir));
}

/**
 * The in-process {@link MemoryClient}. Create it with {@link openLocalMemory}.
 *
 * @example
 * ```ts
 * const memory = await openLocalMemory({ dir: "/tmp/db" });
 * const c = await memory.createConversation({ title: "Notes" });
 * await memory.appendMessages(c.id, [{ role: "user", content: "hello" }]);
 * await memory.close();
 * ```
 */
export class LocalMemory implements MemoryClient {
  #stores: Stores;
  #statements = new Map<DatabaseSync, Map<string, StatementSync>>();
  /** The statements on the hot paths, prepared once per open (a restore reopens the stores). */
  #hot!: { insertMessage: StatementSync; getMessage: StatementSync };
  #pool: SearchPool | null = null;
  #outbox: OutboxWorker | null = null;
  /** Set while a backup copies the files: writes wait on it. */
  #writeGate: Promise<void> | null = null;
  /** Set while a restore swaps the files: everything waits on it. */
  #gate: Promise<void> | null = null;
  #closed = false;
  readonly #options: LocalMemoryOptions;

  constructor(options: LocalMemoryOptions, stores: Stores) {
    this.#options = options;
    this.#stores = stores;
    this.#prepareHot();
    this.#startWorkers();
  }

  #prepareHot(): void {
    this.#hot = {
      insertMessage: this.#stores.conversations.prepare(
        "INSERT INTO messages(conversation_id, role, content, parts, model, tool_calls, tool_call_id, prompt_tokens, " +
          "completion_tokens, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      getMessage: this.#stores.conversations.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`),
    };
    this.#hot.getMessage.setReturnArrays(true);
  }

  /** The folder holding the store files. */
  get dir(): string {
    return this.#options.dir;
  }

  #startWorkers(): void {
    const workers = this.#options.searchWorkers ?? 1;
    if (workers > 0) {
      this.#pool = new SearchPool({ dir: this.#options.dir, size: workers, timeoutMs: MEMORY_SEARCH_TIMEOUT_MS });
    }
    if (this.#options.outbox ?? true) {
      this.#outbox = new OutboxWorker({
        stores: () => this.#stores,
        intervalMs: MEMORY_OUTBOX_INTERVAL_MS,
        log: this.#options.log,
      });
      this.#outbox.start();
    }
  }

  async #stopWorkers(): Promise<void> {
    this.#outbox?.stop();
    this.#outbox = null;
    const pool = this.#pool;
    this.#pool = null;
    await pool?.close();
  }

  #sql(db: DatabaseSync, sql: string): StatementSync {
    let cache = this.#statements.get(db);
    if (!cache) {
      cache = new Map();
      this.#statements.set(db, cache);
    }
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }

  #get<T>(store: StoreName, sql: string, ...args: SQLInputValue[]): T | undefined {
    return this.#sql(this.#stores[store], sql).get(...args) as T | undefined;
  }

  #all<T>(store: StoreName, sql: string, ...args: SQLInputValue[]): T[] {
    return this.#sql(this.#stores[store], sql).all(...args) as T[];
  }

  #run(store: StoreName, sql: string, ...args: SQLInputValue[]) {
    return this.#sql(this.#stores[store], sql).run(...args);
  }

  /** Runs `fn` in one write transaction on `store`. */
  #transaction<T>(store: StoreName, fn: () => T): T {
    const db = this.#stores[store];
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      db.exec("COMMIT");
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  async #ready(): Promise<void> {
    while (this.#gate) await this.#gate;
    if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed");
  }

  async #writable(): Promise<void> {
    while (this.#gate || this.#writeGate) await (this.#gate ?? this.#writeGate);
    if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed");
  }

  #page(options: PageOptions | undefined): { limit: number; cursor?: string } {
    const parsed = parse(PageOptionsSchema, options ?? {}, "page options");
    return { limit: parsed.limit ?? MEMORY_DEFAULT_PAGE_SIZE, cursor: parsed.cursor };
  }

  // ---- conversations ----

  async createConversation(input: NewConversation = {}): Promise<Conversation> {
    const parsed = parse(NewConversationSchema, input, "conversation");
    await this.#writable();
    const id = parsed.id ?? newConversationId();
    const now = Date.now();
    try {
      this.#transaction("conversations", () => {
        this.#run(
          "conversations",
          "INSERT INTO conversations(id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
          id,
          parsed.title ?? null,
          jsonOrNull(parsed.metadata),
          now,
          now,
        );
        this.#outboxAdd("conversations", OUTBOX_OPS.conversationCreated, { id });
      });
    } catch (error) {
      if ((error as { errcode?: number }).errcode === 1555 || /UNIQUE/.test(String(error))) {
        throw new TabAgentError("conflict", `A conversation with id '${id}' already exists`, { id });
      }
      throw error;
    }
    return {
      id,
      title: parsed.title ?? null,
      metadata: parsed.metadata ?? null,
      message_count: 0,
      created_at: iso(now),
      updated_at: iso(now),
    };
  }

  #outboxAdd(store: StoreName, op: string, payload: unknown): void {
    this.#run(
      store,
      "INSERT INTO outbox(op, payload, created_at) VALUES (?, ?, ?)",
      op,
      JSON.stringify(payload),
      Date.now(),
    );
  }

  #conversationRow(id: string): ConversationRow {
    const row = this.#get<ConversationRow>("conversations", "SELECT * FROM conversations WHERE id = ?", id);
    if (!row) throw notFound("conversation", id);
    return row;
  }

  async getConversation(id: string): Promise<Conversation> {
    await this.#ready();
    return conversationFromRow(this.#conversationRow(String(id)));
  }

  async listConversations(options?: PageOptions): Promise<Page<Conversation>> {
    const { limit, cursor } = this.#page(options);
    await this.#ready();
    const rows = cursor
      ? this.#all<ConversationRow>(
        "conversations",
        "SELECT * FROM conversations WHERE (updated_at, id) < (?, ?) ORDER BY updated_at DESC, id DESC LIMIT ?",
        ...decodeCursor<[number, string]>(cursor, ["number", "string"]),
        limit + 1,
      )
      : this.#all<ConversationRow>(
        "conversations",
        "SELECT * FROM conversations ORDER BY updated_at DESC, id DESC LIMIT ?",
        limit + 1,
      );
    return pageOf(rows, limit, conversationFromRow, (row) => [row.updated_at, row.id]);
  }

  async updateConversation(id: string, patch: ConversationPatch): Promise<Conversation> {
    const parsed = parse(ConversationPatchSchema, patch, "conversation patch");
    await this.#writable();
    const row = this.#conversationRow(String(id));
    const title = parsed.title === undefined ? row.title : parsed.title;
    const metadata = parsed.metadata === undefined ? row.metadata : jsonOrNull(parsed.metadata);
    const now = Math.max(Date.now(), row.updated_at);
    this.#run(
      "conversations",
      "UPDATE conversations SET title = ?, metadata = ?, updated_at = ? WHERE id = ?",
      title,
      metadata,
      now,
      row.id,
    );
    return conversationFromRow({ ...row, title, metadata, updated_at: now });
  }

  async deleteConversation(id: string): Promise<void> {
    await this.#writable();
    this.#transaction("conversations", () => {
      const { changes } = this.#run("conversations", "DELETE FROM conversations WHERE id = ?", String(id));
      if (changes === 0) throw notFound("conversation", String(id));
      this.#outboxAdd("conversations", OUTBOX_OPS.conversationDeleted, { id: String(id) });
    });
  }

  // ---- messages ----

  #prepareMessages(messages: NewMessage[]): PreparedMessage[] {
    if (!Array.isArray(messages)) {
      throw validationError("messages", [{ path: ["messages"], message: "must be an array of messages" }]);
    }
    if (messages.length === 0 || messages.length > MEMORY_MAX_MESSAGES_PER_APPEND) {
      throw validationError("messages", [{
        path: ["messages"],
        message: `must hold 1 to ${MEMORY_MAX_MESSAGES_PER_APPEND} messages`,
      }]);
    }
    const prepared: PreparedMessage[] = [];
    for (let i = 0; i < messages.length; i++) {
      const result = NewMessageSchema.safeParse(messages[i]);
      if (!result.success) {
        throw validationError(
          "message",
          result.error.issues.map((issue) => ({ path: ["messages", i, ...issue.path], message: issue.message })),
        );
      }
      const input = result.data as NewMessage;
      let parts: string | null = null;
      let text: string;
      let bytes: number;
      if (typeof input.content === "string") {
        text = input.content;
        bytes = byteLength(text);
      } else {
        parts = JSON.stringify(input.content);
        text = contentText(input.content);
        bytes = byteLength(parts);
      }
      if (bytes > MEMORY_MAX_MESSAGE_BYTES) throw tooLarge(`messages.${i}.content`, bytes);
      prepared.push({ input, text, parts });
    }
    return prepared;
  }

  #insertMessage(conversationId: string, message: PreparedMessage, now: number): Message {
    const { input } = message;
    const { lastInsertRowid } = this.#hot.insertMessage.run(
      conversationId,
      input.role,
      message.text,
      message.parts,
      input.model ?? null,
      input.tool_calls === undefined ? null : JSON.stringify(input.tool_calls),
      input.tool_call_id ?? null,
      input.prompt_tokens ?? null,
      input.completion_tokens ?? null,
      input.metadata === undefined ? null : JSON.stringify(input.metadata),
      now,
    );
    return {
      id: ID_PREFIX.message + "_" + lastInsertRowid,
      conversation_id: conversationId,
      role: input.role,
      content: input.content,
      model: input.model ?? null,
      tool_calls: input.tool_calls ?? null,
      tool_call_id: input.tool_call_id ?? null,
      prompt_tokens: input.prompt_tokens ?? null,
      completion_tokens: input.completion_tokens ?? null,
      metadata: input.metadata ?? null,
      created_at: iso(now),
    };
  }

  async appendMessages(conversationId: string, messages: NewMessage[]): Promise<Message[]> {
    const prepared = this.#prepareMessages(messages);
    if (this.#gate || this.#writeGate || this.#closed) await this.#writable();
    const id = String(conversationId);
    const now = Date.now();
    try {
      // One statement is its own transaction; more are wrapped so they land together or not at all.
      if (prepared.length === 1) return [this.#insertMessage(id, prepared[0], now)];
      return this.#transaction("conversations", () => prepared.map((message) => this.#insertMessage(id, message, now)));
    } catch (error) {
      if ((error as { errcode?: number }).errcode === 787) throw notFound("conversation", id);
      throw error;
    }
  }

  async getMessage(id: string): Promise<Message> {
    if (this.#gate || this.#closed) await this.#ready();
    const n = parseId(ID_PREFIX.message, String(id));
    const row = n === null ? undefined : this.#hot.getMessage.get(n) as unknown[] | undefined;
    if (!row) throw notFound("message", String(id));
    return messageFromArray(row);
  }

  async listMessages(conversationId: string, options?: PageOptions): Promise<Page<Message>> {
    const { limit, cursor } = this.#page(options);
    await this.#ready();
    const id = String(conversationId);
    this.#conversationRow(id);
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const rows = this.#all<MessageRow>(
      "conversations",
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?`,
      id,
      after,
      limit + 1,
    );
    return pageOf(rows, limit, messageFromRow, (row) => [row.id]);
  }

  async searchMessages(options: SearchOptions): Promise<SearchHit[]> {
    const parsed = parse(SearchOptionsSchema, options, "search");
    const query = ftsQuery(parsed.query, parsed.match);
    if (query === null) {
      throw validationError("search", [{ path: ["query"], message: "must contain at least one word" }]);
    }
    await this.#ready();
    if (parsed.conversationId !== undefined) this.#conversationRow(parsed.conversationId);
    const limit = parsed.limit ?? 10;
    const rows = this.#pool
      ? await this.#pool.run({ kind: "messages", query, limit, conversationId: parsed.conversationId })
      : this.#all<Record<string, unknown>>(
        "conversations",
        messageSearchSql(parsed.conversationId !== undefined),
        ...(parsed.conversationId !== undefined ? [query, parsed.conversationId, limit] : [query, limit]),
      );
    return rows.map((row) => ({
      message: messageFromRow(row as unknown as MessageRow),
      conversation_id: row.conversation_id as string,
      score: row.score as number,
      snippet: row.snippet as string,
    }));
  }

  // ---- knowledge ----

  #entity(id: number): Entity | undefined {
    const row = this.#get<EntityRow>("knowledge", "SELECT * FROM entities WHERE id = ?", id);
    return row && entityFromRow(row);
  }

  async upsertEntity(input: NewEntity): Promise<Entity> {
    const parsed = parse(NewEntitySchema, input, "entity");
    await this.#writable();
    const now = Date.now();
    const row = this.#get<EntityRow>(
      "knowledge",
      `INSERT INTO entities(type, name, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(type, name) DO UPDATE SET attributes = coalesce(excluded.attributes, attributes),
         updated_at = excluded.updated_at
       RETURNING *`,
      parsed.type,
      parsed.name,
      jsonOrNull(parsed.attributes),
      now,
      now,
    )!;
    return entityFromRow(row);
  }

  async getEntity(id: string): Promise<Entity> {
    await this.#ready();
    const entity = this.#entity(requireId(ID_PREFIX.entity, "entity", String(id)));
    if (!entity) throw notFound("entity", String(id));
    return entity;
  }

  async listEntities(options: PageOptions & { type?: string } = {}): Promise<Page<Entity>> {
    const { limit, cursor } = this.#page({ cursor: options.cursor, limit: options.limit });
    await this.#ready();
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const rows = options.type === undefined
      ? this.#all<EntityRow>("knowledge", "SELECT * FROM entities WHERE id > ? ORDER BY id LIMIT ?", after, limit + 1)
      : this.#all<EntityRow>(
        "knowledge",
        "SELECT * FROM entities WHERE type = ? AND id > ? ORDER BY id LIMIT ?",
        String(options.type),
        after,
        limit + 1,
      );
    return pageOf(rows, limit, entityFromRow, (row) => [row.id]);
  }

  async addRelation(input: NewRelation): Promise<Relation> {
    const parsed = parse(NewRelationSchema, input, "relation");
    await this.#writable();
    const subject = requireId(ID_PREFIX.entity, "entity", parsed.subject_id);
    const object = requireId(ID_PREFIX.entity, "entity", parsed.object_id);
    const fact = parsed.fact_id === undefined ? null : requireId(ID_PREFIX.fact, "fact", parsed.fact_id);
    if (!this.#entity(subject)) throw notFound("entity", parsed.subject_id);
    if (!this.#entity(object)) throw notFound("entity", parsed.object_id);
    if (fact !== null && !this.#get("knowledge", "SELECT 1 FROM facts WHERE id = ?", fact)) {
      throw notFound("fact", parsed.fact_id!);
    }
    const row = this.#get<RelationRow>(
      "knowledge",
      "INSERT INTO relations(subject_id, predicate, object_id, weight, fact_id, created_at) VALUES (?, ?, ?, ?, ?, ?) " +
        "RETURNING *",
      subject,
      parsed.predicate,
      object,
      parsed.weight ?? null,
      fact,
      Date.now(),
    )!;
    return relationFromRow(row);
  }

  async listRelations(entityId: string, options?: PageOptions): Promise<Page<Relation>> {
    const { limit, cursor } = this.#page(options);
    await this.#ready();
    const id = requireId(ID_PREFIX.entity, "entity", String(entityId));
    if (!this.#entity(id)) throw notFound("entity", String(entityId));
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const rows = this.#all<RelationRow>(
      "knowledge",
      "SELECT * FROM relations WHERE (subject_id = ? OR object_id = ?) AND id > ? ORDER BY id LIMIT ?",
      id,
      id,
      after,
      limit + 1,
    );
    return pageOf(rows, limit, relationFromRow, (row) => [row.id]);
  }

  async addFact(input: NewFact): Promise<Fact> {
    const parsed = parse(NewFactSchema, input, "fact");
    await this.#writable();
    const entity = parsed.entity_id === undefined ? null : requireId(ID_PREFIX.entity, "entity", parsed.entity_id);
    if (entity !== null && !this.#entity(entity)) throw notFound("entity", parsed.entity_id!);
    const row = this.#get<FactRow>(
      "knowledge",
      `INSERT INTO facts(text, subject, predicate, object, entity_id, confidence, source_kind, source_id,
         conversation_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${FACT_COLUMNS}`,
      parsed.text,
      parsed.subject ?? null,
      parsed.predicate ?? null,
      parsed.object ?? null,
      entity,
      parsed.confidence ?? null,
      parsed.source_kind ?? "user",
      parsed.source_id ?? null,
      parsed.conversation_id ?? null,
      jsonOrNull(parsed.metadata),
      Date.now(),
    )!;
    return factFromRow(row);
  }

  async getFact(id: string): Promise<Fact> {
    await this.#ready();
    const n = requireId(ID_PREFIX.fact, "fact", String(id));
    const row = this.#get<FactRow>("knowledge", `SELECT ${FACT_COLUMNS} FROM facts WHERE id = ?`, n);
    if (!row) throw notFound("fact", String(id));
    return factFromRow(row);
  }

  async listFacts(options: PageOptions & { entityId?: string } = {}): Promise<Page<Fact>> {
    const { limit, cursor } = this.#page({ cursor: options.cursor, limit: options.limit });
    await this.#ready();
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    let rows: FactRow[];
    if (options.entityId === undefined) {
      rows = this.#all(
        "knowledge",
        `SELECT ${FACT_COLUMNS} FROM facts WHERE id > ? ORDER BY id LIMIT ?`,
        after,
        limit + 1,
      );
    } else {
      const entity = requireId(ID_PREFIX.entity, "entity", String(options.entityId));
      rows = this.#all(
        "knowledge",
        `SELECT ${FACT_COLUMNS} FROM facts WHERE entity_id = ? AND id > ? ORDER BY id LIMIT ?`,
        entity,
        after,
        limit + 1,
      );
    }
    return pageOf(rows, limit, factFromRow, (row) => [row.id]);
  }

  async deleteFact(id: string): Promise<void> {
    await this.#writable();
    const n = requireId(ID_PREFIX.fact, "fact", String(id));
    this.#transaction("knowledge", () => {
      if (this.#run("knowledge", "DELETE FROM facts WHERE id = ?", n).changes === 0) throw notFound("fact", String(id));
      this.#outboxAdd("knowledge", OUTBOX_OPS.factDeleted, { id: n });
    });
  }

  async searchFacts(options: { query: string; limit?: number }): Promise<FactHit[]> {
    const parsed = parse(SearchOptionsSchema.omit({ conversationId: true }), options, "search");
    const query = ftsQuery(parsed.query, parsed.match);
    if (query === null) {
      throw validationError("search", [{ path: ["query"], message: "must contain at least one word" }]);
    }
    await this.#ready();
    const limit = parsed.limit ?? 10;
    const rows = this.#pool
      ? await this.#pool.run({ kind: "facts", query, limit })
      : this.#all<Record<string, unknown>>("knowledge", FACT_SEARCH_SQL, query, limit);
    return rows.map((row) => ({
      fact: factFromRow(row as unknown as FactRow),
      score: row.score as number,
      snippet: row.snippet as string,
    }));
  }

  // ---- tool results ----

  async recordToolResult(input: NewToolResult): Promise<ToolResult> {
    const parsed = parse(NewToolResultSchema, input, "tool result");
    const args = jsonOrNull(parsed.arguments);
    const result = jsonOrNull(parsed.result);
    const bytes = (args?.length ?? 0) + (result?.length ?? 0);
    if (bytes > MEMORY_MAX_MESSAGE_BYTES) throw tooLarge("The tool result", bytes);
    await this.#writable();
    const row = this.#get<ToolResultRow>(
      "tool_results",
      `INSERT INTO tool_results(conversation_id, message_id, call_id, tool_name, arguments, result, status, error,
         duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      parsed.conversation_id ?? null,
      parsed.message_id ?? null,
      parsed.call_id ?? null,
      parsed.tool_name,
      args,
      result,
      parsed.status,
      parsed.error ?? null,
      parsed.duration_ms,
      Date.now(),
    )!;
    return toolResultFromRow(row);
  }

  async getToolResult(id: string): Promise<ToolResult> {
    await this.#ready();
    const n = requireId(ID_PREFIX.tool_result, "tool result", String(id));
    const row = this.#get<ToolResultRow>("tool_results", "SELECT * FROM tool_results WHERE id = ?", n);
    if (!row) throw notFound("tool result", String(id));
    return toolResultFromRow(row);
  }

  async listToolResults(
    options: PageOptions & { conversationId?: string; toolName?: string } = {},
  ): Promise<Page<ToolResult>> {
    const { limit, cursor } = this.#page({ cursor: options.cursor, limit: options.limit });
    await this.#ready();
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const where = ["id > ?"];
    const args: SQLInputValue[] = [after];
    if (options.conversationId !== undefined) {
      where.push("conversation_id = ?");
      args.push(String(options.conversationId));
    }
    if (options.toolName !== undefined) {
      where.push("tool_name = ?");
      args.push(String(options.toolName));
    }
    const rows = this.#all<ToolResultRow>(
      "tool_results",
      `SELECT * FROM tool_results WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`,
      ...args,
      limit + 1,
    );
    return pageOf(rows, limit, toolResultFromRow, (row) => [row.id]);
  }

  // ---- experience ----

  #episode(id: number): Episode | undefined {
    const row = this.#get<EpisodeRow>("experience", "SELECT * FROM episodes WHERE id = ?", id);
    if (!row) return undefined;
    const feedback = this.#all<FeedbackRow>(
      "experience",
      "SELECT * FROM feedback WHERE episode_id = ? ORDER BY id",
      id,
    );
    return episodeFromRow(row, feedback);
  }

  async recordEpisode(input: NewEpisode): Promise<Episode> {
    const parsed = parse(NewEpisodeSchema, input, "episode");
    await this.#writable();
    const now = Date.now();
    const row = this.#get<EpisodeRow>(
      "experience",
      "INSERT INTO episodes(conversation_id, task, outcome, reward, metadata, created_at, updated_at) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
      parsed.conversation_id ?? null,
      parsed.task,
      parsed.outcome,
      parsed.reward ?? null,
      jsonOrNull(parsed.metadata),
      now,
      now,
    )!;
    return episodeFromRow(row, []);
  }

  async getEpisode(id: string): Promise<Episode> {
    await this.#ready();
    const episode = this.#episode(requireId(ID_PREFIX.episode, "episode", String(id)));
    if (!episode) throw notFound("episode", String(id));
    return episode;
  }

  async addFeedback(episodeId: string, feedback: NewFeedback): Promise<Episode> {
    const parsed = parse(FeedbackSchema, feedback, "feedback");
    await this.#writable();
    const n = requireId(ID_PREFIX.episode, "episode", String(episodeId));
    const now = Date.now();
    this.#transaction("experience", () => {
      if (this.#run("experience", "UPDATE episodes SET updated_at = ? WHERE id = ?", now, n).changes === 0) {
        throw notFound("episode", String(episodeId));
      }
      this.#run(
        "experience",
        "INSERT INTO feedback(episode_id, rating, comment, created_at) VALUES (?, ?, ?, ?)",
        n,
        parsed.rating,
        parsed.comment ?? null,
        now,
      );
    });
    return this.#episode(n)!;
  }

  async listEpisodes(options?: PageOptions): Promise<Page<Episode>> {
    const { limit, cursor } = this.#page(options);
    await this.#ready();
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const rows = this.#all<EpisodeRow>(
      "experience",
      "SELECT * FROM episodes WHERE id > ? ORDER BY id LIMIT ?",
      after,
      limit + 1,
    );
    return pageOf(rows, limit, (row) => this.#episode(row.id)!, (row) => [row.id]);
  }

  // ---- summaries ----

  async putSummary(input: NewSummary): Promise<Summary> {
    const parsed = parse(NewSummarySchema, input, "summary");
    await this.#writable();
    this.#conversationRow(parsed.conversation_id);
    const range: number[] = [];
    for (const field of ["from_message_id", "to_message_id"] as const) {
      const n = parseId(ID_PREFIX.message, parsed[field]);
      const row = n === null ? undefined : this.#get<{ conversation_id: string }>(
        "conversations",
        "SELECT conversation_id FROM messages WHERE id = ?",
        n,
      );
      if (!row || row.conversation_id !== parsed.conversation_id) {
        throw new TabAgentError(
          "not_found",
          `No message '${parsed[field]}' in conversation '${parsed.conversation_id}' (${field})`,
          { id: parsed[field], field },
        );
      }
      range.push(n!);
    }
    if (range[0] > range[1]) {
      throw validationError("summary", [{ path: ["to_message_id"], message: "must not come before from_message_id" }]);
    }
    const row = this.#get<SummaryRow>(
      "summaries",
      "INSERT INTO summaries(conversation_id, from_message_id, to_message_id, text, model, created_at) " +
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
      parsed.conversation_id,
      range[0],
      range[1],
      parsed.text,
      parsed.model ?? null,
      Date.now(),
    )!;
    return summaryFromRow(row);
  }

  async listSummaries(conversationId: string, options?: PageOptions): Promise<Page<Summary>> {
    const { limit, cursor } = this.#page(options);
    await this.#ready();
    this.#conversationRow(String(conversationId));
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const rows = this.#all<SummaryRow>(
      "summaries",
      "SELECT * FROM summaries WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?",
      String(conversationId),
      after,
      limit + 1,
    );
    return pageOf(rows, limit, summaryFromRow, (row) => [row.id]);
  }

  // ---- embeddings ----

  /** The row id and conversation of an embeddable item, or not_found. */
  #embeddable(kind: EmbeddableKind, itemId: string): { n: number; conversation: string | null } {
    const prefix =
      { message: ID_PREFIX.message, fact: ID_PREFIX.fact, summary: ID_PREFIX.summary, episode: ID_PREFIX.episode }[
        kind
      ];
    const n = requireId(prefix, kind, itemId);
    const lookup: Record<EmbeddableKind, [StoreName, string]> = {
      message: ["conversations", "SELECT conversation_id FROM messages WHERE id = ?"],
      fact: ["knowledge", "SELECT NULL AS conversation_id FROM facts WHERE id = ?"],
      summary: ["summaries", "SELECT conversation_id FROM summaries WHERE id = ?"],
      episode: ["experience", "SELECT NULL AS conversation_id FROM episodes WHERE id = ?"],
    };
    const row = this.#get<{ conversation_id: string | null }>(lookup[kind][0], lookup[kind][1], n);
    if (!row) throw notFound(kind, itemId);
    return { n, conversation: row.conversation_id };
  }

  async putEmbedding(input: NewEmbedding): Promise<Embedding> {
    const parsed = parse(NewEmbeddingSchema, input, "embedding");
    await this.#writable();
    const { n, conversation } = this.#embeddable(parsed.item_kind, parsed.item_id);
    const vector = Float32Array.from(parsed.vector);
    const now = Date.now();
    this.#transaction("embeddings", () => {
      this.#run(
        "embeddings",
        "INSERT OR REPLACE INTO embeddings(item_kind, item_id, model, dimensions, vector, conversation_id, created_at) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
        parsed.item_kind,
        n,
        parsed.model,
        vector.length,
        new Uint8Array(vector.buffer),
        conversation,
        now,
      );
      this.#run("embeddings", "DELETE FROM pending WHERE item_kind = ? AND item_id = ?", parsed.item_kind, n);
    });
    return {
      item_kind: parsed.item_kind,
      item_id: parsed.item_id,
      model: parsed.model,
      dimensions: vector.length,
      vector: Array.from(vector),
      created_at: iso(now),
    };
  }

  async getEmbedding(itemKind: EmbeddableKind, itemId: string, model: string): Promise<Embedding> {
    await this.#ready();
    if (!EMBEDDABLE_KINDS.includes(itemKind)) {
      throw validationError("embedding", [{ path: ["item_kind"], message: `must be one of ${EMBEDDABLE_KINDS}` }]);
    }
    const { n } = this.#embeddable(itemKind, String(itemId));
    const row = this.#get<{ dimensions: number; vector: Uint8Array; created_at: number }>(
      "embeddings",
      "SELECT dimensions, vector, created_at FROM embeddings WHERE item_kind = ? AND item_id = ? AND model = ?",
      itemKind,
      n,
      String(model),
    );
    if (!row) {
      throw new TabAgentError("not_found", `No '${model}' embedding for ${itemKind} '${itemId}'`, { id: itemId });
    }
    const vector = new Float32Array(
      row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.vector.byteLength),
    );
    return {
      item_kind: itemKind,
      item_id: String(itemId),
      model: String(model),
      dimensions: row.dimensions,
      vector: Array.from(vector),
      created_at: iso(row.created_at),
    };
  }

  async listPendingEmbeddings(options?: PageOptions): Promise<Page<PendingEmbedding>> {
    const { limit, cursor } = this.#page(options);
    await this.#ready();
    const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
    const rows = this.#all<
      { seq: number; item_kind: EmbeddableKind; item_id: number; conversation_id: string | null; queued_at: number }
    >(
      "embeddings",
      "SELECT * FROM pending WHERE seq > ? ORDER BY seq LIMIT ?",
      after,
      limit + 1,
    );
    const prefixes = {
      message: ID_PREFIX.message,
      fact: ID_PREFIX.fact,
      summary: ID_PREFIX.summary,
      episode: ID_PREFIX.episode,
    };
    return pageOf(rows, limit, (row) => ({
      item_kind: row.item_kind,
      item_id: formatId(prefixes[row.item_kind], row.item_id),
      conversation_id: row.conversation_id,
      queued_at: iso(row.queued_at),
    }), (row) => [row.seq]);
  }

  // ---- whole memory ----

  async stats(): Promise<MemoryStats> {
    await this.#ready();
    const countOf = (store: StoreName, table: string) =>
      (this.#get<{ n: number }>(store, `SELECT count(*) AS n FROM ${table}`))!.n;
    const counters: Record<string, number> = {};
    for (
      const row of this.#all<{ name: string; value: number }>("meta", "SELECT name, value FROM counters ORDER BY name")
    ) {
      counters[row.name] = row.value;
    }
    const stores = [];
    for (const store of STORE_NAMES) {
      let bytes = 0;
      for (const suffix of ["", "-wal"]) {
        try {
          bytes += (await Deno.stat(`${this.dir}/${storeFile(store)}${suffix}`)).size;
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }
      stores.push({ name: store, schema_version: schemaVersion(this.#stores[store]), bytes });
    }
    return {
      conversations: countOf("conversations", "conversations"),
      messages: countOf("conversations", "messages"),
      entities: countOf("knowledge", "entities"),
      relations: countOf("knowledge", "relations"),
      facts: countOf("knowledge", "facts"),
      tool_results: countOf("tool_results", "tool_results"),
      episodes: countOf("experience", "episodes"),
      summaries: countOf("summaries", "summaries"),
      embeddings: countOf("embeddings", "embeddings"),
      pending_embeddings: countOf("embeddings", "pending"),
      outbox_pending: outboxBacklog(this.#stores),
      counters,
      stores,
    };
  }

  async *exportJsonl(options: { conversationId?: string } = {}): AsyncIterable<string> {
    await this.#ready();
    if (options.conversationId !== undefined) this.#conversationRow(String(options.conversationId));
    for (const line of exportLines(() => this.#stores, options.conversationId)) {
      yield line;
      if (this.#gate) await this.#ready();
    }
  }

  async importJsonl(jsonl: string): Promise<ImportResult> {
    await this.#writable();
    return importLines(this.#stores, jsonl);
  }

  async backup(dir: string): Promise<BackupManifest> {
    await prepareBackupDir(String(dir));
    await this.#writable();
    const released = Promise.withResolvers<void>();
    this.#writeGate = released.promise;
    const versions = {} as Record<StoreName, number>;
    try {
      for (const store of STORE_NAMES) versions[store] = schemaVersion(this.#stores[store]);
      await snapshotStores(this.dir, dir);
    } finally {
      this.#writeGate = null;
      released.resolve();
    }
    const manifest = await writeManifest(dir, versions);
    this.#options.log?.info("backup written", { dir, files: manifest.files.length });
    return manifest;
  }

  async restore(dir: string): Promise<BackupManifest> {
    const manifest = await verifyBackup(String(dir));
    await stageBackup(String(dir), this.dir, manifest);
    await this.#writable();
    const released = Promise.withResolvers<void>();
    this.#gate = released.promise;
    try {
      await this.#stopWorkers();
      this.#statements.clear();
      closeStores(this.#stores);
      await swapInStaged(this.dir);
      this.#stores = openStores(this.dir);
      this.#prepareHot();
      this.#startWorkers();
    } catch (error) {
      this.#closed = true;
      throw error;
    } finally {
      this.#gate = null;
      released.resolve();
    }
    this.#options.log?.info("restored from backup", { dir, created_at: manifest.created_at });
    return manifest;
  }

  async flush(): Promise<void> {
    await this.#writable();
    while (applyOutboxStep(this.#stores) > 0) {
      // each step is bounded; yield so a big backlog does not hold the event loop for long
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /**
   * Rebuilds what is derived: the FTS indexes from their tables, and the embedding queue from the
   * truth stores (items without an embedding are queued again).
   */
  async rebuildDerived(): Promise<void> {
    await this.#writable();
    this.#stores.conversations.exec("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')");
    this.#stores.knowledge.exec("INSERT INTO facts_fts(facts_fts) VALUES ('rebuild')");
    resetTails(this.#stores);
    await this.flush();
  }

  /**
   * Lists where the derived stores disagree with the truth stores (empty when they have converged):
   * every message, fact, episode and summary is embedded or queued exactly once, nothing is queued
   * for an item that is gone, and the FTS indexes pass their integrity check.
   */
  async checkDerived(): Promise<string[]> {
    await this.#ready();
    const problems: string[] = [];
    const truth: [EmbeddableKind, StoreName, string][] = [
      ["message", "conversations", "SELECT id FROM messages"],
      ["fact", "knowledge", "SELECT id FROM facts"],
      ["episode", "experience", "SELECT id FROM episodes"],
      ["summary", "summaries", "SELECT id FROM summaries"],
    ];
    for (const [kind, store, sql] of truth) {
      const ids = new Set(this.#all<{ id: number }>(store, sql).map((row) => row.id));
      const derived = new Set<number>();
      for (const table of ["pending", "embeddings"]) {
        for (
          const row of this.#all<{ item_id: number }>(
            "embeddings",
            `SELECT DISTINCT item_id FROM ${table} WHERE item_kind = ?`,
            kind,
          )
        ) {
          derived.add(row.item_id);
        }
      }
      const missing = [...ids].filter((id) => !derived.has(id));
      const stale = [...derived].filter((id) => !ids.has(id));
      if (missing.length) problems.push(`${missing.length} ${kind}(s) neither embedded nor queued`);
      if (stale.length) problems.push(`${stale.length} ${kind} embedding(s) or queue entries for deleted items`);
    }
    const summaries = this.#all<{ conversation_id: string }>(
      "summaries",
      "SELECT DISTINCT conversation_id FROM summaries",
    );
    const orphans = summaries.filter((row) =>
      !this.#get("conversations", "SELECT 1 FROM conversations WHERE id = ?", row.conversation_id)
    );
    if (orphans.length) problems.push(`${orphans.length} conversation(s) deleted but still summarised`);
    for (const [store, table] of [["conversations", "messages_fts"], ["knowledge", "facts_fts"]] as const) {
      try {
        this.#stores[store].exec(`INSERT INTO ${table}(${table}, rank) VALUES ('integrity-check', 1)`);
      } catch (error) {
        problems.push(`${table}: ${error instanceof Error ? error.message : error}`);
      }
    }
    return problems;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#gate) await this.#gate;
    this.#closed = true;
    await this.#stopWorkers();
    this.#statements.clear();
    closeStores(this.#stores);
  }
}
