/**
 * JSONL export and import. One JSON object a line with a `record` kind: each conversation followed by its
 * messages and summaries, then entities, facts, relations, tool results and episodes. Embeddings
 * are derived and not exported: the importing side queues the items for embedding again.
 * Import keeps conversation ids, gives other items new ids (and maps references between them),
 * and skips what is already there, so importing the same file twice adds nothing the second time.
 */
import type { SQLInputValue } from "node:sqlite";
import { z } from "zod";
import { MEMORY_MAX_IMPORT_BYTES } from "../config/mod.ts";
import { TabAgentError, validationError } from "../errors/mod.ts";
import {
  conversationFromRow,
  type ConversationRow,
  entityFromRow,
  type EntityRow,
  episodeFromRow,
  type EpisodeRow,
  FACT_COLUMNS,
  factFromRow,
  type FactRow,
  type FeedbackRow,
  ID_PREFIX,
  jsonOrNull,
  MESSAGE_COLUMNS,
  messageFromRow,
  type MessageRow,
  parseId,
  relationFromRow,
  type RelationRow,
  summaryFromRow,
  type SummaryRow,
  toolResultFromRow,
  type ToolResultRow,
} from "./_rows.ts";
import { indexPendingMessages } from "./_message_index.ts";
import { OUTBOX_OPS } from "./_outbox.ts";
import type { StoreName, Stores } from "./stores.ts";
import {
  ContentPartSchema,
  FeedbackSchema,
  type ImportResult,
  NewConversationSchema,
  NewEntitySchema,
  NewEpisodeSchema,
  NewFactSchema,
  NewMessageSchema,
  NewRelationSchema,
  NewSummarySchema,
  NewToolResultSchema,
} from "./types.ts";

const CHUNK = 500;

function* chunks<R extends { id: number }>(read: (after: number) => R[]): Generator<R> {
  let after = 0;
  while (true) {
    const rows = read(after);
    yield* rows;
    if (rows.length < CHUNK) return;
    after = rows[rows.length - 1].id;
  }
}

function line(type: string, value: object): string {
  return JSON.stringify({ record: type, ...value });
}

/**
 * Yields the export line by line, reading in small keyset chunks so no long read transaction is
 * held and writes go on in between. `stores` is called per chunk: a restore may swap them.
 */
export function* exportLines(stores: () => Stores, conversationId?: string): Generator<string> {
  const all = <R>(store: StoreName, sql: string, ...args: SQLInputValue[]) =>
    stores()[store].prepare(sql).all(...args) as R[];
  let after = "";
  while (true) {
    const conversations = conversationId !== undefined
      ? all<ConversationRow>("conversations", "SELECT * FROM conversations WHERE id = ?", conversationId)
      : all<ConversationRow>(
        "conversations",
        "SELECT * FROM conversations WHERE id > ? ORDER BY id LIMIT ?",
        after,
        CHUNK,
      );
    for (const conversation of conversations) {
      yield line("conversation", conversationFromRow(conversation));
      for (
        const row of chunks((id) =>
          all<MessageRow>(
            "conversations",
            `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ${CHUNK}`,
            conversation.id,
            id,
          )
        )
      ) yield line("message", messageFromRow(row));
      for (
        const row of chunks((id) =>
          all<SummaryRow>(
            "summaries",
            `SELECT * FROM summaries WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ${CHUNK}`,
            conversation.id,
            id,
          )
        )
      ) yield line("summary", summaryFromRow(row));
    }
    if (conversationId !== undefined || conversations.length < CHUNK) break;
    after = conversations[conversations.length - 1].id;
  }
  if (conversationId !== undefined) {
    // One conversation's export carries what was recorded about it, not the whole knowledge base.
    for (
      const row of chunks((id) =>
        all<ToolResultRow>(
          "tool_results",
          `SELECT * FROM tool_results WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ${CHUNK}`,
          conversationId,
          id,
        )
      )
    ) yield line("tool_result", toolResultFromRow(row));
    return;
  }
  for (
    const row of chunks((id) =>
      all<EntityRow>("knowledge", `SELECT * FROM entities WHERE id > ? ORDER BY id LIMIT ${CHUNK}`, id)
    )
  ) {
    yield line("entity", entityFromRow(row));
  }
  for (
    const row of chunks((id) =>
      all<FactRow>("knowledge", `SELECT ${FACT_COLUMNS} FROM facts WHERE id > ? ORDER BY id LIMIT ${CHUNK}`, id)
    )
  ) yield line("fact", factFromRow(row));
  for (
    const row of chunks((id) =>
      all<RelationRow>("knowledge", `SELECT * FROM relations WHERE id > ? ORDER BY id LIMIT ${CHUNK}`, id)
    )
  ) {
    yield line("relation", relationFromRow(row));
  }
  for (
    const row of chunks((id) =>
      all<ToolResultRow>("tool_results", `SELECT * FROM tool_results WHERE id > ? ORDER BY id LIMIT ${CHUNK}`, id)
    )
  ) yield line("tool_result", toolResultFromRow(row));
  for (
    const row of chunks((id) =>
      all<EpisodeRow>("experience", `SELECT * FROM episodes WHERE id > ? ORDER BY id LIMIT ${CHUNK}`, id)
    )
  ) {
    const feedback = all<FeedbackRow>("experience", "SELECT * FROM feedback WHERE episode_id = ? ORDER BY id", row.id);
    yield line("episode", episodeFromRow(row, feedback));
  }
}

const stamp = z.object({ created_at: z.iso.datetime() });
const LINE_SCHEMAS = {
  conversation: NewConversationSchema.extend({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    title: z.string().max(1_000).nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  }),
  message: NewMessageSchema.extend({
    id: z.string(),
    conversation_id: z.string(),
    content: z.union([z.string(), z.array(ContentPartSchema)]),
    model: z.string().nullable(),
    tool_calls: z.array(z.unknown()).nullable(),
    tool_call_id: z.string().nullable(),
    prompt_tokens: z.number().int().min(0).nullable(),
    completion_tokens: z.number().int().min(0).nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
  }).extend(stamp.shape),
  summary: NewSummarySchema.extend({ id: z.string(), model: z.string().nullable() }).extend(stamp.shape),
  entity: NewEntitySchema.extend({ id: z.string(), attributes: z.record(z.string(), z.unknown()).nullable() }).extend(
    stamp.shape,
  ),
  fact: z.object({
    ...NewFactSchema.shape,
    id: z.string(),
    ...Object.fromEntries(
      ["subject", "predicate", "object", "entity_id", "source_id", "conversation_id"].map((
        key,
      ) => [key, z.string().nullable()]),
    ),
    confidence: z.number().min(0).max(1).nullable(),
    source_kind: z.string(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    ...stamp.shape,
  }),
  relation: NewRelationSchema.extend({ id: z.string(), weight: z.number().nullable(), fact_id: z.string().nullable() })
    .extend(stamp.shape),
  tool_result: NewToolResultSchema.extend({
    id: z.string(),
    ...Object.fromEntries(
      ["call_id", "conversation_id", "message_id", "error"].map((key) => [key, z.string().nullable()]),
    ),
  }).extend(stamp.shape),
  episode: NewEpisodeSchema.extend({
    id: z.string(),
    conversation_id: z.string().nullable(),
    reward: z.number().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    feedback: z.array(FeedbackSchema.extend({ comment: z.string().nullable() }).extend(stamp.shape)),
    updated_at: z.iso.datetime(),
  }).extend(stamp.shape),
} as const;

type LineType = keyof typeof LINE_SCHEMAS;
// deno-lint-ignore no-explicit-any
type Parsed = { type: LineType; value: any };

function parseLines(jsonl: string): Parsed[] {
  if (jsonl.length > MEMORY_MAX_IMPORT_BYTES) {
    throw new TabAgentError("payload_too_large", `The import is larger than ${MEMORY_MAX_IMPORT_BYTES} bytes`, {
      limit: MEMORY_MAX_IMPORT_BYTES,
    });
  }
  const parsed: Parsed[] = [];
  const lines = jsonl.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].trim();
    if (text === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw validationError("import", [{ path: [`line ${i + 1}`], message: "is not JSON" }]);
    }
    const type = (value as { record?: unknown })?.record;
    if (typeof type !== "string" || !(type in LINE_SCHEMAS)) {
      throw validationError("import", [{
        path: [`line ${i + 1}`, "record"],
        message: `must be one of ${Object.keys(LINE_SCHEMAS).join(", ")}`,
      }]);
    }
    const result = LINE_SCHEMAS[type as LineType].safeParse(value);
    if (!result.success) {
      throw validationError(
        "import",
        result.error.issues.map((issue) => ({ path: [`line ${i + 1}`, ...issue.path], message: issue.message })),
      );
    }
    parsed.push({ type: type as LineType, value: result.data });
  }
  return parsed;
}

const ms = (text: string) => Date.parse(text);

/** Imports a JSONL export; validates every line before writing anything. */
export function importLines(stores: Stores, jsonl: string): ImportResult {
  const lines = parseLines(jsonl);
  const imported: Record<string, number> = {};
  const skipped: Record<string, number> = {};
  const bump = (record: Record<string, number>, type: string) => record[type] = (record[type] ?? 0) + 1;
  const messageIds = new Map<string, number>();
  const entityIds = new Map<string, number>();
  const factIds = new Map<string, number>();
  const skippedConversations = new Set<string>();
  const get = <R>(store: StoreName, sql: string, ...args: SQLInputValue[]) =>
    stores[store].prepare(sql).get(...args) as R | undefined;
  const run = (store: StoreName, sql: string, ...args: SQLInputValue[]) => stores[store].prepare(sql).run(...args);
  const touched: StoreName[] = ["conversations", "knowledge", "tool_results", "experience", "summaries"];
  for (const store of touched) stores[store].exec("BEGIN IMMEDIATE");
  try {
    for (const { type, value } of lines) {
      switch (type) {
        case "conversation": {
          if (get("conversations", "SELECT 1 FROM conversations WHERE id = ?", value.id)) {
            skippedConversations.add(value.id);
            bump(skipped, type);
            break;
          }
          run(
            "conversations",
            "INSERT INTO conversations(id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            value.id,
            value.title,
            jsonOrNull(value.metadata),
            ms(value.created_at),
            ms(value.updated_at),
          );
          run(
            "conversations",
            "INSERT INTO outbox(op, payload, created_at) VALUES (?, ?, ?)",
            OUTBOX_OPS.conversationCreated,
            JSON.stringify({ id: value.id }),
            Date.now(),
          );
          bump(imported, type);
          break;
        }
        case "message": {
          if (skippedConversations.has(value.conversation_id)) {
            bump(skipped, type);
            break;
          }
          const parts = typeof value.content === "string" ? null : JSON.stringify(value.content);
          const text = typeof value.content === "string"
            ? value.content
            : value.content.filter((p: { type: string }) => p.type === "text").map((p: { text: string }) => p.text)
              .join("\n");
          try {
            const { lastInsertRowid } = run(
              "conversations",
              "INSERT INTO messages(conversation_id, role, content, parts, model, tool_calls, tool_call_id, " +
                "prompt_tokens, completion_tokens, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              value.conversation_id,
              value.role,
              text,
              parts,
              value.model,
              jsonOrNull(value.tool_calls),
              value.tool_call_id,
              value.prompt_tokens,
              value.completion_tokens,
              jsonOrNull(value.metadata),
              ms(value.created_at),
            );
            messageIds.set(value.id, Number(lastInsertRowid));
            run(
              "conversations",
              "UPDATE conversations SET message_count = message_count + 1, updated_at = max(updated_at, ?) WHERE id = ?",
              ms(value.created_at),
              value.conversation_id,
            );
          } catch (error) {
            if ((error as { errcode?: number }).errcode === 787) {
              throw new TabAgentError(
                "validation_failed",
                `Invalid import: message ${value.id} belongs to conversation '${value.conversation_id}', which is not in the file`,
                { errors: [{ field: "conversation_id", message: "unknown conversation" }] },
              );
            }
            throw error;
          }
          bump(imported, type);
          break;
        }
        case "summary": {
          const from = messageIds.get(value.from_message_id);
          const to = messageIds.get(value.to_message_id);
          if (skippedConversations.has(value.conversation_id) || from === undefined || to === undefined) {
            bump(skipped, type);
            break;
          }
          run(
            "summaries",
            "INSERT INTO summaries(conversation_id, from_message_id, to_message_id, text, model, created_at) " +
              "VALUES (?, ?, ?, ?, ?, ?)",
            value.conversation_id,
            from,
            to,
            value.text,
            value.model,
            ms(value.created_at),
          );
          bump(imported, type);
          break;
        }
        case "entity": {
          const existing = get<{ id: number }>(
            "knowledge",
            "SELECT id FROM entities WHERE type = ? AND name = ?",
            value.type,
            value.name,
          );
          if (existing) {
            entityIds.set(value.id, existing.id);
            bump(skipped, type);
            break;
          }
          const { lastInsertRowid } = run(
            "knowledge",
            "INSERT INTO entities(type, name, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            value.type,
            value.name,
            jsonOrNull(value.attributes),
            ms(value.created_at),
            ms(value.created_at),
          );
          entityIds.set(value.id, Number(lastInsertRowid));
          bump(imported, type);
          break;
        }
        case "fact": {
          const existing = get<{ id: number }>(
            "knowledge",
            "SELECT id FROM facts WHERE text = ? AND source_kind = ? AND source_id IS ? AND created_at = ?",
            value.text,
            value.source_kind,
            value.source_id,
            ms(value.created_at),
          );
          if (existing) {
            factIds.set(value.id, existing.id);
            bump(skipped, type);
            break;
          }
          const { lastInsertRowid } = run(
            "knowledge",
            `INSERT INTO facts(text, subject, predicate, object, entity_id, confidence, source_kind, source_id,
               conversation_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            value.text,
            value.subject,
            value.predicate,
            value.object,
            value.entity_id === null ? null : entityIds.get(value.entity_id) ?? null,
            value.confidence,
            value.source_kind,
            value.source_id,
            value.conversation_id,
            jsonOrNull(value.metadata),
            ms(value.created_at),
          );
          factIds.set(value.id, Number(lastInsertRowid));
          bump(imported, type);
          break;
        }
        case "relation": {
          const subject = entityIds.get(value.subject_id);
          const object = entityIds.get(value.object_id);
          const fact = value.fact_id === null ? null : factIds.get(value.fact_id) ?? null;
          if (
            subject === undefined || object === undefined ||
            get(
              "knowledge",
              "SELECT 1 FROM relations WHERE subject_id = ? AND predicate = ? AND object_id = ?",
              subject,
              value.predicate,
              object,
            )
          ) {
            bump(skipped, type);
            break;
          }
          run(
            "knowledge",
            "INSERT INTO relations(subject_id, predicate, object_id, weight, fact_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            subject,
            value.predicate,
            object,
            value.weight,
            fact,
            ms(value.created_at),
          );
          bump(imported, type);
          break;
        }
        case "tool_result": {
          if (
            get(
              "tool_results",
              "SELECT 1 FROM tool_results WHERE tool_name = ? AND call_id IS ? AND created_at = ?",
              value.tool_name,
              value.call_id,
              ms(value.created_at),
            )
          ) {
            bump(skipped, type);
            break;
          }
          const messageId = value.message_id !== null && parseId(ID_PREFIX.message, value.message_id) !== null
            ? `${ID_PREFIX.message}_${messageIds.get(value.message_id) ?? parseId(ID_PREFIX.message, value.message_id)}`
            : value.message_id;
          run(
            "tool_results",
            `INSERT INTO tool_results(conversation_id, message_id, call_id, tool_name, arguments, result, status, error,
               duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            value.conversation_id,
            messageId,
            value.call_id,
            value.tool_name,
            jsonOrNull(value.arguments),
            jsonOrNull(value.result),
            value.status,
            value.error,
            value.duration_ms,
            ms(value.created_at),
          );
          bump(imported, type);
          break;
        }
        case "episode": {
          if (
            get(
              "experience",
              "SELECT 1 FROM episodes WHERE task = ? AND created_at = ?",
              value.task,
              ms(value.created_at),
            )
          ) {
            bump(skipped, type);
            break;
          }
          const { lastInsertRowid } = run(
            "experience",
            "INSERT INTO episodes(conversation_id, task, outcome, reward, metadata, created_at, updated_at) " +
              "VALUES (?, ?, ?, ?, ?, ?, ?)",
            value.conversation_id,
            value.task,
            value.outcome,
            value.reward,
            jsonOrNull(value.metadata),
            ms(value.created_at),
            ms(value.updated_at),
          );
          for (const feedback of value.feedback) {
            run(
              "experience",
              "INSERT INTO feedback(episode_id, rating, comment, created_at) VALUES (?, ?, ?, ?)",
              lastInsertRowid,
              feedback.rating,
              feedback.comment,
              ms(feedback.created_at),
            );
          }
          bump(imported, type);
          break;
        }
      }
    }
    // One index catch-up for the whole import (the index is derived; see _message_index.ts).
    indexPendingMessages(stores.conversations);
    // Truth stores first: if the process dies between commits, what is committed re-imports as skipped.
    for (const store of touched) stores[store].exec("COMMIT");
  } catch (error) {
    for (const store of touched) if (stores[store].isTransaction) stores[store].exec("ROLLBACK");
    throw error;
  }
  return { imported, skipped };
}
