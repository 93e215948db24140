/** Conversations and their messages: create, list, update, delete, append, read and search. */
import type { StatementSync } from "node:sqlite";
import { MEMORY_MAX_MESSAGE_BYTES, MEMORY_MAX_MESSAGES_PER_APPEND } from "../config/mod.ts";
import { TabAgentError, validationError } from "../errors/mod.ts";
import { byteLength, type MemoryContext, pageOf, pageOptions, parse, type StoreAccess, tooLarge } from "./_context.ts";
import { catchUpMessageIndex, indexedUpTo, indexMessagesAfter, MESSAGE_INDEX_DEFER_LIMIT } from "./_message_index.ts";
import { OUTBOX_OPS } from "./_outbox.ts";
import { prepareAll, preparedOnce } from "./_prepared.ts";
import {
  contentText,
  conversationFromRow,
  type ConversationRow,
  decodeCursor,
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
  searchHitFromRow,
  searchHitsBody,
} from "./_rows.ts";
import {
  type Conversation,
  type ConversationPatch,
  ConversationPatchSchema,
  type Message,
  type NewConversation,
  NewConversationSchema,
  type NewMessage,
  NewMessageSchema,
  type Page,
  type PageOptions,
  ROLES,
  type SearchHit,
  type SearchOptions,
  SearchOptionsSchema,
} from "./types.ts";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function newConversationId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let id = "conv_";
  for (const byte of bytes) id += ALPHABET[byte & 31];
  return id;
}

/** The statements on the hot paths, prepared once per open of the stores (a restore reopens them). */
const hot = preparedOnce((db: StoreAccess) =>
  prepareAll((sql) => db.stores.conversations.prepare(sql), {
    sql: {
      begin: "BEGIN IMMEDIATE",
      commit: "COMMIT",
      touchConversation:
        "UPDATE conversations SET message_count = message_count + ?, updated_at = max(updated_at, ?) WHERE id = ?",
      insertMessage:
        "INSERT INTO messages(conversation_id, role, content, parts, model, tool_calls, tool_call_id, prompt_tokens, " +
        "completion_tokens, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      getMessage: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`,
    },
    arrays: ["getMessage"],
  })
);

/** The stored row of conversation `id`, or `not_found`. */
export function conversationRow(db: StoreAccess, id: string): ConversationRow {
  const row = db.get<ConversationRow>("conversations", "SELECT * FROM conversations WHERE id = ?", id);
  if (!row) throw notFound("conversation", id);
  return row;
}

/** Creates a conversation (`conflict` when its id is taken). */
export async function createConversation(ctx: MemoryContext, input: NewConversation = {}): Promise<Conversation> {
  const parsed = parse(NewConversationSchema, input, "conversation");
  await ctx.writable();
  const id = parsed.id ?? newConversationId();
  const now = Date.now();
  const db = ctx.db;
  try {
    db.transaction("conversations", () => insertConversation(db, { ...parsed, id }, { created: now, updated: now }));
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

/**
 * Inserts a conversation with the given timestamps (ms) and records it in the outbox (call inside a
 * transaction); the live call and import both write here.
 */
export function insertConversation(
  db: StoreAccess,
  input: { id: string; title?: string | null; metadata?: Record<string, unknown> | null },
  at: { created: number; updated: number },
): void {
  db.run(
    "conversations",
    "INSERT INTO conversations(id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
    input.id,
    input.title ?? null,
    jsonOrNull(input.metadata),
    at.created,
    at.updated,
  );
  db.outboxAdd("conversations", OUTBOX_OPS.conversationCreated, { id: input.id });
}

/** Conversation `id`. */
export async function getConversation(ctx: MemoryContext, id: string): Promise<Conversation> {
  await ctx.ready();
  return conversationFromRow(conversationRow(ctx.db, String(id)));
}

/** Conversations, most recently updated first. */
export async function listConversations(ctx: MemoryContext, options?: PageOptions): Promise<Page<Conversation>> {
  const { limit, cursor } = pageOptions(options);
  await ctx.ready();
  const rows = cursor
    ? ctx.db.all<ConversationRow>(
      "conversations",
      "SELECT * FROM conversations WHERE (updated_at, id) < (?, ?) ORDER BY updated_at DESC, id DESC LIMIT ?",
      ...decodeCursor<[number, string]>(cursor, ["number", "string"]),
      limit + 1,
    )
    : ctx.db.all<ConversationRow>(
      "conversations",
      "SELECT * FROM conversations ORDER BY updated_at DESC, id DESC LIMIT ?",
      limit + 1,
    );
  return pageOf(rows, limit, conversationFromRow, (row) => [row.updated_at, row.id]);
}

/** Changes a conversation's title or metadata. */
export async function updateConversation(
  ctx: MemoryContext,
  id: string,
  patch: ConversationPatch,
): Promise<Conversation> {
  const parsed = parse(ConversationPatchSchema, patch, "conversation patch");
  await ctx.writable();
  const row = conversationRow(ctx.db, String(id));
  const title = parsed.title === undefined ? row.title : parsed.title;
  const metadata = parsed.metadata === undefined ? row.metadata : jsonOrNull(parsed.metadata);
  const now = Math.max(Date.now(), row.updated_at);
  ctx.db.run(
    "conversations",
    "UPDATE conversations SET title = ?, metadata = ?, updated_at = ? WHERE id = ?",
    title,
    metadata,
    now,
    row.id,
  );
  return conversationFromRow({ ...row, title, metadata, updated_at: now });
}

/** Deletes a conversation with its messages; the outbox clears what was derived from it. */
export async function deleteConversation(ctx: MemoryContext, id: string): Promise<void> {
  await ctx.writable();
  const db = ctx.db;
  db.transaction("conversations", () => {
    const { changes } = db.run("conversations", "DELETE FROM conversations WHERE id = ?", String(id));
    if (changes === 0) throw notFound("conversation", String(id));
    db.outboxAdd("conversations", OUTBOX_OPS.conversationDeleted, { id: String(id) });
  });
}

/** Values bound into the message insert. */
export interface PreparedMessage {
  input: NewMessage;
  text: string;
  parts: string | null;
}

const ROLE_SET: ReadonlySet<unknown> = new Set(ROLES);

/**
 * `{ role, content }` with a known role, string content and no other member, exactly as
 * NewMessageSchema would accept and return it; null for anything else (zod checks those).
 */
function plainTextMessage(value: unknown): { role: NewMessage["role"]; content: string } | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const { role, content } = value as { role?: unknown; content?: unknown };
  if (typeof content !== "string" || !ROLE_SET.has(role)) return null;
  let keys = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (key !== "role" && key !== "content") return null;
    keys++;
  }
  return keys === 2 ? { role: role as NewMessage["role"], content } : null;
}

function prepareMessages(messages: NewMessage[]): PreparedMessage[] {
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
    const plain = plainTextMessage(messages[i]);
    if (plain !== null) {
      // The common case, checked without zod: its object parse cost microseconds a message.
      if (byteLength(plain.content) > MEMORY_MAX_MESSAGE_BYTES) {
        throw tooLarge(`messages.${i}.content`, byteLength(plain.content));
      }
      prepared.push({ input: plain, text: plain.content, parts: null });
      continue;
    }
    const result = NewMessageSchema.safeParse(messages[i]);
    if (!result.success) {
      throw validationError(
        "message",
        result.error.issues.map((issue) => ({ path: ["messages", i, ...issue.path], message: issue.message })),
      );
    }
    prepared.push(prepareMessage(result.data as NewMessage, `messages.${i}.content`));
  }
  return prepared;
}

/** The stored form of a parsed message; `payload_too_large` (naming `where`) over the message limit. */
export function prepareMessage(input: NewMessage, where: string): PreparedMessage {
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
  if (bytes > MEMORY_MAX_MESSAGE_BYTES) throw tooLarge(where, bytes);
  return { input, text, parts };
}

/**
 * Inserts one message created at `createdAt` (ms) and counts it on its conversation (call inside a
 * transaction); import writes here, the append path below does the same in bulk with its hot statements.
 */
export function insertMessage(db: StoreAccess, conversationId: string, message: PreparedMessage, createdAt: number) {
  const statements = hot(db);
  const n = insertMessageRow(statements.insertMessage, conversationId, message, createdAt);
  statements.touchConversation.run(1, createdAt, conversationId);
  return n;
}

function insertMessageRow(
  statement: StatementSync,
  conversationId: string,
  message: PreparedMessage,
  now: number,
): number {
  const { input } = message;
  return Number(
    statement.run(
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
    ).lastInsertRowid,
  );
}

function storedMessage(conversationId: string, n: number, input: NewMessage, createdAt: string): Message {
  return {
    id: ID_PREFIX.message + "_" + n,
    conversation_id: conversationId,
    role: input.role,
    content: input.content,
    model: input.model ?? null,
    tool_calls: input.tool_calls ?? null,
    tool_call_id: input.tool_call_id ?? null,
    prompt_tokens: input.prompt_tokens ?? null,
    completion_tokens: input.completion_tokens ?? null,
    metadata: input.metadata ?? null,
    created_at: createdAt,
  };
}

/**
 * Appends messages to a conversation in one transaction, which also counts them on the
 * conversation once and indexes them for search when enough wait (see _message_index.ts).
 */
export async function appendMessages(
  ctx: MemoryContext,
  conversationId: string,
  messages: NewMessage[],
): Promise<Message[]> {
  const prepared = prepareMessages(messages);
  if (ctx.writeBlocked) await ctx.writable();
  const id = String(conversationId);
  const now = Date.now();
  const db = ctx.db;
  const conversations = db.stores.conversations;
  const statements = hot(db);
  const ids: number[] = [];
  statements.begin.run();
  try {
    if (statements.touchConversation.run(prepared.length, now, id).changes === 0) throw notFound("conversation", id);
    for (const message of prepared) ids.push(insertMessageRow(statements.insertMessage, id, message, now));
    const last = ids[ids.length - 1];
    const indexed = indexedUpTo(conversations);
    if (last - indexed >= MESSAGE_INDEX_DEFER_LIMIT) indexMessagesAfter(conversations, indexed, last);
    else db.messagesBehind = true;
    statements.commit.run();
  } catch (error) {
    if (conversations.isTransaction) conversations.exec("ROLLBACK");
    if ((error as { errcode?: number }).errcode === 787) throw notFound("conversation", id);
    throw error;
  }
  const createdAt = iso(now);
  return prepared.map((message, i) => storedMessage(id, ids[i], message.input, createdAt));
}

/** Brings the message index up to date before a search, so the search sees every acknowledged message. */
export async function catchUpBeforeSearch(ctx: MemoryContext): Promise<void> {
  if (ctx.writeBlocked) await ctx.writable();
  const db = ctx.db;
  catchUpMessageIndex(db.stores.conversations);
  db.messagesBehind = false;
}

/** Message `id`. */
export async function getMessage(ctx: MemoryContext, id: string): Promise<Message> {
  if (ctx.readBlocked) await ctx.ready();
  const n = parseId(ID_PREFIX.message, String(id));
  const row = n === null ? undefined : hot(ctx.db).getMessage.get(n) as unknown[] | undefined;
  if (!row) throw notFound("message", String(id));
  return messageFromArray(row);
}

/** A conversation's messages, oldest first. */
export async function listMessages(
  ctx: MemoryContext,
  conversationId: string,
  options?: PageOptions,
): Promise<Page<Message>> {
  const { limit, cursor } = pageOptions(options);
  await ctx.ready();
  const id = String(conversationId);
  conversationRow(ctx.db, id);
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const rows = ctx.db.all<MessageRow>(
    "conversations",
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?`,
    id,
    after,
    limit + 1,
  );
  return pageOf(rows, limit, messageFromRow, (row) => [row.id]);
}

/** A checked message search; `query` null when the text holds no word (it finds nothing). */
type MessageSearch = { query: string | null; limit: number; conversationId?: string };

function hasWords(search: MessageSearch): search is MessageSearch & { query: string } {
  return search.query !== null;
}

/**
 * A message search's terms, checked, once memory is ready and the full-text index has caught up:
 * at once when nothing has to be waited for (no restore running, no message appended since the last
 * search), else a promise. Searches come in bursts, and each promise and `await` on their way was
 * event-loop work that a `/v1/health` call arriving among them waited for.
 */
function messageSearch(ctx: MemoryContext, options: SearchOptions): MessageSearch | Promise<MessageSearch> {
  const parsed = parse(SearchOptionsSchema, options, "search");
  // Text without a word (punctuation, white space) finds nothing, as a search box answers it.
  const query = ftsQuery(parsed.query, parsed.match);
  const search = { query, limit: parsed.limit ?? 10, conversationId: parsed.conversationId };
  if (ctx.readBlocked || ctx.db.messagesBehind) return readyToSearch(ctx, search);
  if (search.conversationId !== undefined) conversationRow(ctx.db, search.conversationId);
  return search;
}

/** {@link messageSearch} when memory is not ready or the index is behind: waits, catches up, then checks. */
async function readyToSearch(ctx: MemoryContext, search: MessageSearch): Promise<MessageSearch> {
  await ctx.ready();
  if (ctx.db.messagesBehind) await catchUpBeforeSearch(ctx);
  if (search.conversationId !== undefined) conversationRow(ctx.db, search.conversationId);
  return search;
}

/** Runs a message search on the main thread's connection (no search worker). */
function searchInline(ctx: MemoryContext, search: MessageSearch): Record<string, unknown>[] {
  const { query, limit, conversationId } = search;
  if (query === null) return [];
  return ctx.db.all<Record<string, unknown>>(
    "conversations",
    messageSearchSql(conversationId !== undefined),
    ...(conversationId !== undefined ? [query, conversationId, limit] : [query, limit]),
  );
}

/** Full-text search over messages, best BM25 first (in a search worker when there is one). */
export async function searchMessages(ctx: MemoryContext, options: SearchOptions): Promise<SearchHit[]> {
  const search = await messageSearch(ctx, options);
  if (!hasWords(search)) return [];
  const rows = ctx.pool ? await ctx.pool.run({ kind: "messages", ...search }) : searchInline(ctx, search);
  return rows.map(searchHitFromRow);
}

/**
 * {@link searchMessages} answered as the HTTP body, `{"hits": [...]}` in UTF-8 JSON, built in the
 * search worker when there is one: the event loop then only passes the bytes on. No `await` when
 * nothing has to be waited for (see {@link messageSearch}).
 */
export function searchMessagesBody(ctx: MemoryContext, options: SearchOptions): Promise<Uint8Array<ArrayBuffer>> {
  try {
    const search = messageSearch(ctx, options);
    return search instanceof Promise ? search.then((ready) => searchBody(ctx, ready)) : searchBody(ctx, search);
  } catch (error) {
    return Promise.reject(error);
  }
}

function searchBody(ctx: MemoryContext, search: MessageSearch): Promise<Uint8Array<ArrayBuffer>> {
  if (ctx.pool && hasWords(search)) return ctx.pool.body(search);
  return Promise.resolve(searchHitsBody(searchInline(ctx, search)));
}
