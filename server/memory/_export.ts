/**
 * JSONL export: one JSON object a line with a `record` kind: each conversation followed by its
 * messages and summaries, then entities, facts, relations, tool results and episodes (one
 * conversation's export: the conversation, its messages, summaries and tool results). Embeddings
 * are derived and not exported: the importing side queues the items for embedding again.
 * `_import.ts` reads it back.
 */
import type { SQLInputValue } from "node:sqlite";
import {
  conversationFromRow,
  type ConversationRow,
  entityFromRow,
  episodeFromRow,
  FACT_COLUMNS,
  factFromRow,
  type FeedbackRow,
  MESSAGE_COLUMNS,
  messageFromRow,
  relationFromRow,
  summaryFromRow,
  toolResultFromRow,
} from "./_rows.ts";
import type { StoreName, Stores } from "./stores.ts";

/** Rows read per statement: no long read transaction is held, and writes go on in between. */
const CHUNK = 500;

/** Reads `sql` (which takes `…params, after, limit`) on the current stores. */
type Read = <R>(store: StoreName, sql: string, ...args: SQLInputValue[]) => R[];

/** One kind of exported record: where its rows are and how a row becomes the line's object. */
interface RecordTable {
  record: string;
  store: StoreName;
  /** `SELECT … WHERE <scope> id > ? ORDER BY id LIMIT ?` with `{scope}` for an optional filter. */
  select: string;
  // deno-lint-ignore no-explicit-any
  toItem(row: any, read: Read): object;
}

const byId = (columns: string, table: string) =>
  `SELECT ${columns} FROM ${table} WHERE {scope} id > ? ORDER BY id LIMIT ?`;

const MESSAGES: RecordTable = {
  record: "message",
  store: "conversations",
  select: byId(MESSAGE_COLUMNS, "messages"),
  toItem: messageFromRow,
};
const SUMMARIES: RecordTable = {
  record: "summary",
  store: "summaries",
  select: byId("*", "summaries"),
  toItem: summaryFromRow,
};
const TOOL_RESULTS: RecordTable = {
  record: "tool_result",
  store: "tool_results",
  select: byId("*", "tool_results"),
  toItem: toolResultFromRow,
};

/** What follows each conversation's line, filtered to that conversation. */
const PER_CONVERSATION = [MESSAGES, SUMMARIES];

/** Everything not inside a conversation, in the order import needs it (entities before what cites them). */
const KNOWLEDGE_AND_EXPERIENCE: RecordTable[] = [
  { record: "entity", store: "knowledge", select: byId("*", "entities"), toItem: entityFromRow },
  { record: "fact", store: "knowledge", select: byId(FACT_COLUMNS, "facts"), toItem: factFromRow },
  { record: "relation", store: "knowledge", select: byId("*", "relations"), toItem: relationFromRow },
  TOOL_RESULTS,
  {
    record: "episode",
    store: "experience",
    select: byId("*", "episodes"),
    toItem: (row, read) =>
      episodeFromRow(
        row,
        read<FeedbackRow>("experience", "SELECT * FROM feedback WHERE episode_id = ? ORDER BY id", row.id),
      ),
  },
];

function line(record: string, item: object): string {
  return JSON.stringify({ record, ...item });
}

/** Every line of `table`, in id order, optionally only the rows of one conversation. */
function* linesOf(read: Read, table: RecordTable, conversationId?: string): Generator<string> {
  const scoped = conversationId !== undefined;
  const sql = table.select.replace("{scope}", scoped ? "conversation_id = ? AND" : "");
  let after = 0;
  while (true) {
    const rows = read<{ id: number }>(table.store, sql, ...(scoped ? [conversationId] : []), after, CHUNK);
    for (const row of rows) yield line(table.record, table.toItem(row, read));
    if (rows.length < CHUNK) return;
    after = rows[rows.length - 1].id;
  }
}

/** Conversations in id order (or the one asked for), in keyset chunks. */
function* conversationRows(read: Read, conversationId?: string): Generator<ConversationRow> {
  if (conversationId !== undefined) {
    yield* read<ConversationRow>("conversations", "SELECT * FROM conversations WHERE id = ?", conversationId);
    return;
  }
  let after = "";
  while (true) {
    const rows = read<ConversationRow>(
      "conversations",
      "SELECT * FROM conversations WHERE id > ? ORDER BY id LIMIT ?",
      after,
      CHUNK,
    );
    yield* rows;
    if (rows.length < CHUNK) return;
    after = rows[rows.length - 1].id;
  }
}

/**
 * Yields the export line by line. `stores` is called per statement: a restore may swap them.
 *
 * @example
 * ```ts
 * for (const text of exportLines(() => stores)) await file.write(encoder.encode(text + "\n"));
 * ```
 */
export function* exportLines(stores: () => Stores, conversationId?: string): Generator<string> {
  const read: Read = <R>(store: StoreName, sql: string, ...args: SQLInputValue[]) =>
    stores()[store].prepare(sql).all(...args) as R[];
  for (const conversation of conversationRows(read, conversationId)) {
    yield line("conversation", conversationFromRow(conversation));
    for (const table of PER_CONVERSATION) yield* linesOf(read, table, conversation.id);
  }
  if (conversationId !== undefined) {
    // One conversation's export carries what was recorded about it, not the whole knowledge base.
    yield* linesOf(read, TOOL_RESULTS, conversationId);
    return;
  }
  for (const table of KNOWLEDGE_AND_EXPERIENCE) yield* linesOf(read, table);
}
