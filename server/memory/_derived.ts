/**
 * The derived stores' items: summaries of message ranges and embeddings of items (with the queue of
 * items still waiting for one), and checking or rebuilding what is derived from the truth stores.
 */
import { TabAgentError, validationError } from "../errors/mod.ts";
import { type MemoryContext, pageOf, pageOptions, parse, type StoreAccess } from "./_context.ts";
import { conversationRow } from "./_conversations.ts";
import { messageIndexBacklog } from "./_message_index.ts";
import {
  decodeCursor,
  formatId,
  ID_PREFIX,
  iso,
  notFound,
  parseId,
  requireId,
  summaryFromRow,
  type SummaryRow,
} from "./_rows.ts";
import type { StoreName } from "./stores.ts";
import {
  EMBEDDABLE_KINDS,
  type EmbeddableKind,
  type Embedding,
  type NewEmbedding,
  NewEmbeddingSchema,
  type NewSummary,
  NewSummarySchema,
  type Page,
  type PageOptions,
  type PendingEmbedding,
  type Summary,
} from "./types.ts";

// ---- summaries ----

/** Stores a summary of a range of one conversation's messages. */
export async function putSummary(ctx: MemoryContext, input: NewSummary): Promise<Summary> {
  const parsed = parse(NewSummarySchema, input, "summary");
  await ctx.writable();
  const db = ctx.db;
  conversationRow(db, parsed.conversation_id);
  const range: number[] = [];
  for (const field of ["from_message_id", "to_message_id"] as const) {
    const n = parseId(ID_PREFIX.message, parsed[field]);
    const row = n === null ? undefined : db.get<{ conversation_id: string }>(
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
  return summaryFromRow(insertSummary(db, { ...parsed, from: range[0], to: range[1] }, Date.now()));
}

/** A summary to insert: the message range as row numbers. */
export interface SummaryValues {
  conversation_id: string;
  from: number;
  to: number;
  text: string;
  model?: string | null;
}

/** Inserts a summary created at `createdAt` (ms); the live call and import both write here. */
export function insertSummary(db: StoreAccess, values: SummaryValues, createdAt: number): SummaryRow {
  return db.get<SummaryRow>(
    "summaries",
    "INSERT INTO summaries(conversation_id, from_message_id, to_message_id, text, model, created_at) " +
      "VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
    values.conversation_id,
    values.from,
    values.to,
    values.text,
    values.model ?? null,
    createdAt,
  )!;
}

/** A conversation's summaries, oldest first. */
export async function listSummaries(
  ctx: MemoryContext,
  conversationId: string,
  options?: PageOptions,
): Promise<Page<Summary>> {
  const { limit, cursor } = pageOptions(options);
  await ctx.ready();
  conversationRow(ctx.db, String(conversationId));
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const rows = ctx.db.all<SummaryRow>(
    "summaries",
    "SELECT * FROM summaries WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?",
    String(conversationId),
    after,
    limit + 1,
  );
  return pageOf(rows, limit, summaryFromRow, (row) => [row.id]);
}

// ---- embeddings ----

const KIND_PREFIX: Record<EmbeddableKind, string> = {
  message: ID_PREFIX.message,
  fact: ID_PREFIX.fact,
  summary: ID_PREFIX.summary,
  episode: ID_PREFIX.episode,
  chunk: ID_PREFIX.chunk,
  tool_result: ID_PREFIX.tool_result,
};

const ITEM_LOOKUP: Record<EmbeddableKind, [StoreName, string]> = {
  message: ["conversations", "SELECT conversation_id FROM messages WHERE id = ?"],
  fact: ["knowledge", "SELECT NULL AS conversation_id FROM facts WHERE id = ?"],
  summary: ["summaries", "SELECT conversation_id FROM summaries WHERE id = ?"],
  episode: ["experience", "SELECT NULL AS conversation_id FROM episodes WHERE id = ?"],
  chunk: [
    "conversations",
    "SELECT d.conversation_id FROM document_chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?",
  ],
  // a tool result outlives its conversation (its own store keeps it), so its embedding is not filed
  // under the conversation, whose deletion would take the vector and leave the result unembedded
  tool_result: ["tool_results", "SELECT NULL AS conversation_id FROM tool_results WHERE id = ?"],
};

/** The row id and conversation of an embeddable item, or not_found. */
function embeddable(
  ctx: MemoryContext,
  kind: EmbeddableKind,
  itemId: string,
): { n: number; conversation: string | null } {
  const n = requireId(KIND_PREFIX[kind], kind, itemId);
  const row = ctx.db.get<{ conversation_id: string | null }>(ITEM_LOOKUP[kind][0], ITEM_LOOKUP[kind][1], n);
  if (!row) throw notFound(kind, itemId);
  return { n, conversation: row.conversation_id };
}

/** Stores (or replaces) an item's embedding by one model and takes the item off the queue. */
export async function putEmbedding(ctx: MemoryContext, input: NewEmbedding): Promise<Embedding> {
  const parsed = parse(NewEmbeddingSchema, input, "embedding");
  await ctx.writable();
  const db = ctx.db;
  const { n, conversation } = embeddable(ctx, parsed.item_kind, parsed.item_id);
  const vector = Float32Array.from(parsed.vector);
  const now = Date.now();
  db.transaction("embeddings", () => {
    db.run(
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
    db.run("embeddings", "DELETE FROM pending WHERE item_kind = ? AND item_id = ?", parsed.item_kind, n);
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

/** An item's embedding by `model`. */
export async function getEmbedding(
  ctx: MemoryContext,
  itemKind: EmbeddableKind,
  itemId: string,
  model: string,
): Promise<Embedding> {
  await ctx.ready();
  if (!EMBEDDABLE_KINDS.includes(itemKind)) {
    throw validationError("embedding", [{ path: ["item_kind"], message: `must be one of ${EMBEDDABLE_KINDS}` }]);
  }
  const { n } = embeddable(ctx, itemKind, String(itemId));
  const row = ctx.db.get<{ dimensions: number; vector: Uint8Array; created_at: number }>(
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

/** Items waiting for an embedding, oldest first. */
export async function listPendingEmbeddings(
  ctx: MemoryContext,
  options?: PageOptions,
): Promise<Page<PendingEmbedding>> {
  const { limit, cursor } = pageOptions(options);
  await ctx.ready();
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const rows = ctx.db.all<
    { seq: number; item_kind: EmbeddableKind; item_id: number; conversation_id: string | null; queued_at: number }
  >(
    "embeddings",
    "SELECT * FROM pending WHERE seq > ? ORDER BY seq LIMIT ?",
    after,
    limit + 1,
  );
  return pageOf(rows, limit, (row) => ({
    item_kind: row.item_kind,
    item_id: formatId(KIND_PREFIX[row.item_kind], row.item_id),
    conversation_id: row.conversation_id,
    queued_at: iso(row.queued_at),
  }), (row) => [row.seq]);
}

// ---- consistency ----

/**
 * Lists where the derived stores disagree with the truth stores (empty when they have converged):
 * every message, fact, episode, summary, page chunk and tool result is embedded or queued exactly once, nothing is queued
 * for an item that is gone, and the FTS indexes pass their integrity check.
 */
export async function checkDerived(ctx: MemoryContext): Promise<string[]> {
  await ctx.ready();
  const db = ctx.db;
  const problems: string[] = [];
  const truth: [EmbeddableKind, StoreName, string][] = [
    ["message", "conversations", "SELECT id FROM messages"],
    ["fact", "knowledge", "SELECT id FROM facts"],
    ["episode", "experience", "SELECT id FROM episodes"],
    ["summary", "summaries", "SELECT id FROM summaries"],
    ["chunk", "conversations", "SELECT id FROM document_chunks"],
    ["tool_result", "tool_results", "SELECT id FROM tool_results"],
  ];
  for (const [kind, store, sql] of truth) {
    const ids = new Set(db.all<{ id: number }>(store, sql).map((row) => row.id));
    const derived = new Set<number>();
    for (const table of ["pending", "embeddings"]) {
      for (
        const row of db.all<{ item_id: number }>(
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
  const summaries = db.all<{ conversation_id: string }>("summaries", "SELECT DISTINCT conversation_id FROM summaries");
  const orphans = summaries.filter((row) =>
    !db.get("conversations", "SELECT 1 FROM conversations WHERE id = ?", row.conversation_id)
  );
  if (orphans.length) problems.push(`${orphans.length} conversation(s) deleted but still summarised`);
  const unindexed = messageIndexBacklog(db.stores.conversations);
  if (unindexed) problems.push(`${unindexed} message(s) not yet in the full-text index`);
  const ftsTables = [
    ["conversations", "messages_fts"],
    ["knowledge", "facts_fts"],
    ["tool_results", "tool_results_fts"],
  ] as const;
  for (const [store, table] of ftsTables) {
    // rank 1 also compares the index with its table: that would only repeat a backlog reported above.
    const rank = table === "messages_fts" && unindexed ? 0 : 1;
    try {
      db.stores[store].exec(`INSERT INTO ${table}(${table}, rank) VALUES ('integrity-check', ${rank})`);
    } catch (error) {
      problems.push(`${table}: ${error instanceof Error ? error.message : error}`);
    }
  }
  return problems;
}
