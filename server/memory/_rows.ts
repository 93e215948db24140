/** Row ↔ object mapping, public ids, cursors and FTS5 query building, shared by the client and the workers. */
import { MEMORY_MAX_QUERY_TERMS } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import { CURSOR_PATTERN } from "./types.ts";
import type {
  ContentPart,
  Conversation,
  Entity,
  Episode,
  Fact,
  Message,
  Metadata,
  Relation,
  Role,
  SearchHit,
  Summary,
  ToolResult,
} from "./types.ts";

/** Id prefixes by kind: ids are `<prefix>_<n>`, where n is the row id. */
export const ID_PREFIX = {
  message: "msg",
  entity: "ent",
  relation: "rel",
  fact: "fact",
  tool_result: "tool",
  episode: "ep",
  summary: "sum",
  document: "doc",
  chunk: "chunk",
} as const;

/** A public id for row `n`. */
export function formatId(prefix: string, n: number | bigint): string {
  return `${prefix}_${n}`;
}

/** The row id in a public id, or null when `id` is not one of `prefix`'s. */
export function parseId(prefix: string, id: string): number | null {
  if (id.length <= prefix.length + 1 || !id.startsWith(prefix) || id[prefix.length] !== "_") return null;
  const digits = id.slice(prefix.length + 1);
  if (!/^[1-9][0-9]{0,15}$/.test(digits)) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}

/** `not_found` for `what` with `id`. */
export function notFound(what: string, id: string): TabAgentError {
  return new TabAgentError("not_found", `No ${what} with id '${id}'`, { id });
}

/** The row id in `id`, or a `not_found` error (an id of the wrong shape names nothing). */
export function requireId(prefix: string, what: string, id: string): number {
  const n = parseId(prefix, id);
  if (n === null) throw notFound(what, id);
  return n;
}

/** ISO time of epoch milliseconds. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** JSON text or null. */
export function jsonOrNull(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

/** Parsed JSON or null. */
export function parseJson<T>(text: string | null): T | null {
  return text === null ? null : JSON.parse(text) as T;
}

/** A message row as stored. */
export interface MessageRow {
  id: number;
  conversation_id: string;
  role: string;
  content: string;
  parts: string | null;
  model: string | null;
  tool_calls: string | null;
  tool_call_id: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  metadata: string | null;
  created_at: number;
}

/** The message columns, in {@link MessageRow} order. */
export const MESSAGE_COLUMNS =
  "id, conversation_id, role, content, parts, model, tool_calls, tool_call_id, prompt_tokens, completion_tokens, metadata, created_at";

/** A message from its row. */
export function messageFromRow(row: MessageRow): Message {
  return {
    id: ID_PREFIX.message + "_" + row.id,
    conversation_id: row.conversation_id,
    role: row.role as Role,
    content: row.parts === null ? row.content : JSON.parse(row.parts) as ContentPart[],
    model: row.model,
    tool_calls: row.tool_calls === null ? null : JSON.parse(row.tool_calls) as unknown[],
    tool_call_id: row.tool_call_id,
    prompt_tokens: row.prompt_tokens,
    completion_tokens: row.completion_tokens,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata) as Metadata,
    created_at: iso(row.created_at),
  };
}

/** A message search hit from its row: the message columns, `score` and `snippet` (see {@link messageSearchSql}). */
export function searchHitFromRow(row: Record<string, unknown>): SearchHit {
  return {
    message: messageFromRow(row as unknown as MessageRow),
    conversation_id: row.conversation_id as string,
    score: row.score as number,
    snippet: row.snippet as string,
  };
}

const utf8 = new TextEncoder();

/**
 * A message search's answer as the HTTP route sends it: `{"hits": [...]}` in UTF-8 JSON, best
 * first. The search worker builds it, so the event loop only passes the bytes on.
 */
export function searchHitsBody(rows: Record<string, unknown>[]): Uint8Array<ArrayBuffer> {
  return utf8.encode(JSON.stringify({ hits: rows.map(searchHitFromRow) }));
}

/**
 * A message from a row read with `setReturnArrays(true)` in {@link MESSAGE_COLUMNS} order: point
 * reads are the hottest read path, and array rows skip building a keyed object per row.
 */
export function messageFromArray(row: unknown[]): Message {
  return {
    id: ID_PREFIX.message + "_" + row[0],
    conversation_id: row[1] as string,
    role: row[2] as Role,
    content: row[4] === null ? row[3] as string : JSON.parse(row[4] as string) as ContentPart[],
    model: row[5] as string | null,
    tool_calls: row[6] === null ? null : JSON.parse(row[6] as string) as unknown[],
    tool_call_id: row[7] as string | null,
    prompt_tokens: row[8] as number | null,
    completion_tokens: row[9] as number | null,
    metadata: row[10] === null ? null : JSON.parse(row[10] as string) as Metadata,
    created_at: new Date(row[11] as number).toISOString(),
  };
}

/** The searchable text of message content: the string, or its text parts joined. */
export function contentText(content: string | ContentPart[]): string {
  if (typeof content === "string") return content;
  let text = "";
  for (const part of content) if (part.type === "text") text += (text ? "\n" : "") + part.text;
  return text;
}

/** A fact row as stored. */
export interface FactRow {
  id: number;
  text: string;
  subject: string | null;
  predicate: string | null;
  object: string | null;
  entity_id: number | null;
  confidence: number | null;
  source_kind: string;
  source_id: string | null;
  conversation_id: string | null;
  metadata: string | null;
  created_at: number;
  valid_from: number | null;
  valid_to: number | null;
  superseded_by: number | null;
}

/** The fact columns. */
export const FACT_COLUMNS =
  "id, text, subject, predicate, object, entity_id, confidence, source_kind, source_id, conversation_id, metadata, created_at, valid_from, valid_to, superseded_by";

/** A fact from its row. */
export function factFromRow(row: FactRow): Fact {
  return {
    id: formatId(ID_PREFIX.fact, row.id),
    text: row.text,
    subject: row.subject,
    predicate: row.predicate,
    object: row.object,
    entity_id: row.entity_id === null ? null : formatId(ID_PREFIX.entity, row.entity_id),
    confidence: row.confidence,
    source_kind: row.source_kind,
    source_id: row.source_id,
    conversation_id: row.conversation_id,
    metadata: parseJson<Metadata>(row.metadata),
    created_at: iso(row.created_at),
    valid_from: row.valid_from === null ? null : iso(row.valid_from),
    valid_to: row.valid_to === null ? null : iso(row.valid_to),
    superseded_by: row.superseded_by === null ? null : formatId(ID_PREFIX.fact, row.superseded_by),
  };
}

/** Encodes a keyset position (a number, then an optional string) as a cursor. */
export function encodeCursor(key: [number] | [number, string]): string {
  return key.length === 1 ? String(key[0]) : `${key[0]}.${key[1]}`;
}

/**
 * Decodes a cursor made by {@link encodeCursor} into a key of `shape`, or throws 400 naming
 * `cursor`. A one-part key ignores what follows the dot; a two-part key without one compares
 * before every id at that number.
 */
export function decodeCursor<T extends [number] | [number, string]>(
  cursor: string,
  shape: ["number"] | ["number", "string"],
): T {
  if (!CURSOR_PATTERN.test(cursor)) {
    throw new TabAgentError("validation_failed", "Invalid cursor: pass back a next_cursor this server returned", {
      errors: [{ field: "cursor", message: "not a cursor from this list" }],
    });
  }
  const dot = cursor.indexOf(".");
  const number = Number(dot === -1 ? cursor : cursor.slice(0, dot));
  return (shape.length === 1 ? [number] : [number, dot === -1 ? "" : cursor.slice(dot + 1)]) as T;
}

/**
 * Turns free text into a safe FTS5 query: each word quoted (so operators and punctuation in user
 * input cannot change the query's meaning). `all` requires every word (a search box); `any` takes
 * items with any of them, best BM25 first (recall for a question in natural language). Null when
 * no word is left.
 */
export function ftsQuery(text: string, match: "all" | "any" = "all"): string | null {
  const words = text.normalize("NFKC").match(/[\p{L}\p{N}_]+/gu);
  if (!words) return null;
  return words.slice(0, MEMORY_MAX_QUERY_TERMS).map((word) => `"${word}"`).join(match === "any" ? " OR " : " ");
}

/** Snippet markers around matched words. */
export const SNIPPET_OPEN = "**";
/** Snippet end marker. */
export const SNIPPET_CLOSE = "**";

/** The SQL a message search runs (shared by the worker and the inline path). */
export function messageSearchSql(byConversation: boolean): string {
  return `SELECT ${MESSAGE_COLUMNS.split(", ").map((c) => `m.${c}`).join(", ")}, -f.rank AS score,
      snippet(messages_fts, 0, '${SNIPPET_OPEN}', '${SNIPPET_CLOSE}', '…', 16) AS snippet
    FROM messages_fts f JOIN messages m ON m.id = f.rowid
    WHERE messages_fts MATCH ?${byConversation ? " AND m.conversation_id = ?" : ""}
    ORDER BY f.rank LIMIT ?`;
}

/** The SQL a fact search runs. */
export const FACT_SEARCH_SQL = `SELECT ${FACT_COLUMNS.split(", ").map((c) => `x.${c}`).join(", ")}, -f.rank AS score,
    snippet(facts_fts, 0, '${SNIPPET_OPEN}', '${SNIPPET_CLOSE}', '…', 16) AS snippet
  FROM facts_fts f JOIN facts x ON x.id = f.rowid WHERE facts_fts MATCH ? ORDER BY f.rank LIMIT ?`;

/** A stored row. */
export interface ConversationRow {
  id: string;
  title: string | null;
  metadata: string | null;
  message_count: number;
  created_at: number;
  updated_at: number;
}

/** Maps a stored row to its public shape. */
export function conversationFromRow(row: ConversationRow): Conversation {
  return {
    id: row.id,
    title: row.title,
    metadata: parseJson<Metadata>(row.metadata),
    message_count: row.message_count,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

// ---- the other stores ----

/** A stored row. */
export interface EntityRow {
  id: number;
  type: string;
  name: string;
  attributes: string | null;
  created_at: number;
  updated_at: number;
  /** The weaver's normalised name (weaver/names.ts). */
  name_key?: string | null;
}

/** Maps a stored row to its public shape. */
export function entityFromRow(row: EntityRow): Entity {
  return {
    id: formatId(ID_PREFIX.entity, row.id),
    type: row.type,
    name: row.name,
    attributes: parseJson<Metadata>(row.attributes),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** A stored row. */
export interface RelationRow {
  id: number;
  subject_id: number;
  predicate: string;
  object_id: number;
  weight: number | null;
  fact_id: number | null;
  created_at: number;
  valid_from?: number | null;
  valid_to?: number | null;
}

/** Maps a stored row to its public shape. */
export function relationFromRow(row: RelationRow): Relation {
  return {
    id: formatId(ID_PREFIX.relation, row.id),
    subject_id: formatId(ID_PREFIX.entity, row.subject_id),
    predicate: row.predicate,
    object_id: formatId(ID_PREFIX.entity, row.object_id),
    weight: row.weight,
    fact_id: row.fact_id === null ? null : formatId(ID_PREFIX.fact, row.fact_id),
    created_at: iso(row.created_at),
    valid_from: row.valid_from == null ? null : iso(row.valid_from),
    valid_to: row.valid_to == null ? null : iso(row.valid_to),
  };
}

/** A stored row. */
export interface ToolResultRow {
  id: number;
  conversation_id: string | null;
  message_id: string | null;
  call_id: string | null;
  tool_name: string;
  arguments: string | null;
  result: string | null;
  status: "ok" | "error";
  error: string | null;
  duration_ms: number;
  created_at: number;
}

/** Maps a stored row to its public shape. */
export function toolResultFromRow(row: ToolResultRow): ToolResult {
  return {
    id: formatId(ID_PREFIX.tool_result, row.id),
    conversation_id: row.conversation_id,
    message_id: row.message_id,
    call_id: row.call_id,
    tool_name: row.tool_name,
    arguments: parseJson(row.arguments),
    result: parseJson(row.result),
    status: row.status,
    error: row.error,
    duration_ms: row.duration_ms,
    created_at: iso(row.created_at),
  };
}

/**
 * The text a tool result is embedded and shown from: the tool's name, its arguments and what it
 * returned (or its error), JSON strings unwrapped so the words read as words.
 */
export function toolResultText(
  row: Pick<ToolResultRow, "tool_name" | "arguments" | "result" | "error">,
): string {
  const plain = (json: string) => {
    try {
      const value = JSON.parse(json);
      return typeof value === "string" ? value : json;
    } catch (error) {
      if (error instanceof SyntaxError) return json;
      throw error;
    }
  };
  const lines = [`tool ${row.tool_name}`];
  if (row.arguments !== null) lines.push(`arguments: ${plain(row.arguments)}`);
  if (row.result !== null) lines.push(`result: ${plain(row.result)}`);
  if (row.error !== null) lines.push(`error: ${row.error}`);
  return lines.join("\n");
}

/** A stored row. */
export interface EpisodeRow {
  id: number;
  conversation_id: string | null;
  task: string;
  outcome: Episode["outcome"];
  reward: number | null;
  metadata: string | null;
  created_at: number;
  updated_at: number;
}

/** A stored row. */
export interface FeedbackRow {
  rating: -1 | 0 | 1;
  comment: string | null;
  created_at: number;
}

/** Maps a stored row to its public shape. */
export function episodeFromRow(row: EpisodeRow, feedback: FeedbackRow[]): Episode {
  return {
    id: formatId(ID_PREFIX.episode, row.id),
    conversation_id: row.conversation_id,
    task: row.task,
    outcome: row.outcome,
    reward: row.reward,
    metadata: parseJson<Metadata>(row.metadata),
    feedback: feedback.map((f) => ({ rating: f.rating, comment: f.comment, created_at: iso(f.created_at) })),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** A stored row. */
export interface SummaryRow {
  id: number;
  conversation_id: string;
  from_message_id: number;
  to_message_id: number;
  text: string;
  model: string | null;
  created_at: number;
}

/** Maps a stored row to its public shape. */
export function summaryFromRow(row: SummaryRow): Summary {
  return {
    id: formatId(ID_PREFIX.summary, row.id),
    conversation_id: row.conversation_id,
    from_message_id: formatId(ID_PREFIX.message, row.from_message_id),
    to_message_id: formatId(ID_PREFIX.message, row.to_message_id),
    text: row.text,
    model: row.model,
    created_at: iso(row.created_at),
  };
}
