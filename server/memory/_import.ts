/**
 * JSONL import of what `_export.ts` wrote, streamed: lines are read one by one (a whole text or a
 * byte stream such as an HTTP body), each validated with one discriminated union on `record`, and
 * spooled to a temporary file; only when every line is valid are the records written, in batches of
 * {@link MEMORY_IMPORT_BATCH} (one transaction each), with each store module's own insert function,
 * keeping the file's timestamps. Memory stays bounded by a batch and the id maps, not by the body.
 *
 * Import keeps conversation ids, gives other items new ids (mapping references between them), and
 * is idempotent per record: what is already there is skipped, and the messages of a conversation
 * that is already there are matched by position, so its summaries and tool results still find
 * them. The five stores commit one after the other; if the process dies in between, importing the
 * same file again completes what is missing.
 */
import { z } from "zod";
import { MEMORY_IMPORT_BATCH, MEMORY_MAX_IMPORT_BYTES } from "../config/mod.ts";
import { TabAgentError, validationError } from "../errors/mod.ts";
import type { StoreAccess } from "./_context.ts";
import { insertConversation, insertMessage, prepareMessage } from "./_conversations.ts";
import { insertSummary } from "./_derived.ts";
import { insertEpisode, insertFeedback } from "./_experience.ts";
import { insertEntity, insertFact, insertRelation } from "./_knowledge.ts";
import { indexPendingMessages } from "./_message_index.ts";
import { ID_PREFIX, parseId } from "./_rows.ts";
import { insertToolResult } from "./_tool_results.ts";
import type { StoreName } from "./stores.ts";
import {
  ContentPartSchema,
  FeedbackSchema,
  type ImportResult,
  NewConversationSchema,
  NewEntitySchema,
  NewEpisodeSchema,
  NewFactSchema,
  type NewMessage,
  NewMessageSchema,
  NewRelationSchema,
  NewSummarySchema,
  NewToolResultSchema,
} from "./types.ts";

const stamp = { created_at: z.iso.datetime() };
const nullableObject = z.record(z.string(), z.unknown()).nullable();
const nullableString = z.string().nullable();

/** One line of an export, by its `record` kind. */
export const ImportLineSchema = z.discriminatedUnion("record", [
  NewConversationSchema.extend({
    record: z.literal("conversation"),
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    title: z.string().max(1_000).nullable(),
    metadata: nullableObject,
    updated_at: z.iso.datetime(),
    ...stamp,
  }),
  NewMessageSchema.extend({
    record: z.literal("message"),
    id: z.string(),
    conversation_id: z.string(),
    content: z.union([z.string(), z.array(ContentPartSchema)]),
    model: nullableString,
    tool_call_id: nullableString,
    tool_calls: z.array(z.unknown()).nullable(),
    prompt_tokens: z.number().int().min(0).nullable(),
    completion_tokens: z.number().int().min(0).nullable(),
    metadata: nullableObject,
    ...stamp,
  }),
  NewSummarySchema.extend({ record: z.literal("summary"), id: z.string(), model: z.string().nullable(), ...stamp }),
  NewEntitySchema.extend({ record: z.literal("entity"), id: z.string(), attributes: nullableObject, ...stamp }),
  NewFactSchema.extend({
    record: z.literal("fact"),
    id: z.string(),
    subject: nullableString,
    predicate: nullableString,
    object: nullableString,
    entity_id: nullableString,
    source_id: nullableString,
    conversation_id: nullableString,
    confidence: z.number().min(0).max(1).nullable(),
    source_kind: z.string(),
    metadata: nullableObject,
    // absent in exports made before fact validity existed
    valid_from: z.iso.datetime().nullable().optional(),
    valid_to: z.iso.datetime().nullable().optional(),
    superseded_by: nullableString.optional(),
    ...stamp,
  }),
  NewRelationSchema.extend({
    record: z.literal("relation"),
    id: z.string(),
    weight: z.number().nullable(),
    fact_id: z.string().nullable(),
    ...stamp,
  }),
  NewToolResultSchema.extend({
    record: z.literal("tool_result"),
    id: z.string(),
    call_id: nullableString,
    conversation_id: nullableString,
    message_id: nullableString,
    error: nullableString,
    ...stamp,
  }),
  NewEpisodeSchema.extend({
    record: z.literal("episode"),
    id: z.string(),
    conversation_id: z.string().nullable(),
    reward: z.number().nullable(),
    metadata: nullableObject,
    feedback: z.array(FeedbackSchema.extend({ comment: z.string().nullable(), ...stamp })),
    updated_at: z.iso.datetime(),
    ...stamp,
  }),
]);

type ImportLine = z.infer<typeof ImportLineSchema>;
type Kind = ImportLine["record"];
type LineOf<K extends Kind> = Extract<ImportLine, { record: K }>;

/** What an import reads: a whole JSONL text, or the bytes of one as they arrive (an HTTP body). */
export type ImportSource = string | ReadableStream<Uint8Array>;

function tooLarge(): TabAgentError {
  return new TabAgentError("payload_too_large", `The import is larger than ${MEMORY_MAX_IMPORT_BYTES} bytes`, {
    limit: MEMORY_MAX_IMPORT_BYTES,
  });
}

/** The lines of `source` with their numbers (from 1); refuses a source over the import limit as it arrives. */
async function* numberedLines(source: ImportSource): AsyncGenerator<[number, string]> {
  if (typeof source === "string" && source.length > MEMORY_MAX_IMPORT_BYTES) throw tooLarge();
  const chunks = typeof source === "string" ? [source] : source;
  const decoder = new TextDecoder();
  let bytes = 0;
  let line = 0;
  let pending = "";
  for await (const chunk of chunks) {
    let text: string;
    if (typeof chunk === "string") text = chunk;
    else {
      bytes += chunk.byteLength;
      if (bytes > MEMORY_MAX_IMPORT_BYTES) throw tooLarge();
      text = decoder.decode(chunk, { stream: true });
    }
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; start = end + 1, end = text.indexOf("\n", start)) {
      yield [++line, pending + text.slice(start, end)];
      pending = "";
    }
    pending += text.slice(start);
  }
  yield [++line, pending + decoder.decode()];
}

/** Validates line `n`; a bad one fails the import with `validation_failed` naming the line. */
function parseLine(n: number, text: string): ImportLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw validationError("import", [{ path: [`line ${n}`], message: "is not JSON" }]);
  }
  const result = ImportLineSchema.safeParse(value);
  if (!result.success) {
    throw validationError(
      "import",
      result.error.issues.map((issue) => ({ path: [`line ${n}`, ...issue.path], message: issue.message })),
    );
  }
  return result.data;
}

/**
 * Validates every line of `source` into a temporary file (the parsed records, one a line), so a bad
 * line anywhere writes nothing while only one line is held in memory. Returns the file's path.
 */
async function spoolValidLines(source: ImportSource): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "tabagent-import-", suffix: ".jsonl" });
  try {
    using file = await Deno.open(path, { write: true });
    const encoder = new TextEncoder();
    let buffered: string[] = [];
    let size = 0;
    for await (const [n, text] of numberedLines(source)) {
      if (text.trim() === "") continue;
      const record = JSON.stringify(parseLine(n, text.trim()));
      buffered.push(record);
      size += record.length;
      if (size < 1 << 20) continue;
      await writeAll(file, encoder.encode(buffered.join("\n") + "\n"));
      buffered = [];
      size = 0;
    }
    if (buffered.length > 0) await writeAll(file, encoder.encode(buffered.join("\n") + "\n"));
    return path;
  } catch (error) {
    await Deno.remove(path);
    throw error;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
}

/** A conversation that was already there: its messages in order, matched to the file's by position. */
interface ExistingConversation {
  rows: { id: number; role: string; created_at: number }[];
  next: number;
}

/** What one import has mapped so far: ids in the file → row numbers here. */
interface ImportState {
  db: StoreAccess;
  messages: Map<string, number>;
  entities: Map<string, number>;
  facts: Map<string, number>;
  existing: Map<string, ExistingConversation>;
}

const ms = (text: string) => Date.parse(text);

/** `value` with its nulls as absent fields: the store inserts take the live API's optional inputs. */
function absentNulls<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) as {
    [K in keyof T]: Exclude<T[K], null>;
  };
}

function importConversation(state: ImportState, line: LineOf<"conversation">): boolean {
  const { db } = state;
  if (db.get("conversations", "SELECT 1 FROM conversations WHERE id = ?", line.id)) {
    const rows = db.all<ExistingConversation["rows"][number]>(
      "conversations",
      "SELECT id, role, created_at FROM messages WHERE conversation_id = ? ORDER BY id",
      line.id,
    );
    state.existing.set(line.id, { rows, next: 0 });
    return false;
  }
  insertConversation(db, line, { created: ms(line.created_at), updated: ms(line.updated_at) });
  return true;
}

function importMessage(state: ImportState, line: LineOf<"message">): boolean {
  const existing = state.existing.get(line.conversation_id);
  if (existing) {
    const row = existing.rows[existing.next++];
    if (row && row.role === line.role && row.created_at === ms(line.created_at)) state.messages.set(line.id, row.id);
    return false;
  }
  const { id: _id, record: _record, conversation_id: _conversation, created_at: _created, ...message } = line;
  const prepared = prepareMessage(absentNulls(message) as NewMessage, `message ${line.id}`);
  try {
    state.messages.set(line.id, insertMessage(state.db, line.conversation_id, prepared, ms(line.created_at)));
  } catch (error) {
    if ((error as { errcode?: number }).errcode === 787) {
      throw new TabAgentError(
        "validation_failed",
        `Invalid import: message ${line.id} belongs to conversation '${line.conversation_id}', which is not in the file`,
        { errors: [{ field: "conversation_id", message: "unknown conversation" }] },
      );
    }
    throw error;
  }
  return true;
}

function importSummary(state: ImportState, line: LineOf<"summary">): boolean {
  const from = state.messages.get(line.from_message_id);
  const to = state.messages.get(line.to_message_id);
  if (from === undefined || to === undefined) return false;
  const there = state.db.get(
    "summaries",
    "SELECT 1 FROM summaries WHERE conversation_id = ? AND from_message_id = ? AND to_message_id = ? AND text = ?",
    line.conversation_id,
    from,
    to,
    line.text,
  );
  if (there) return false;
  insertSummary(state.db, { ...line, from, to }, ms(line.created_at));
  return true;
}

function importEntity(state: ImportState, line: LineOf<"entity">): boolean {
  const existing = state.db.get<{ id: number }>(
    "knowledge",
    "SELECT id FROM entities WHERE type = ? AND name = ?",
    line.type,
    line.name,
  );
  if (existing) {
    state.entities.set(line.id, existing.id);
    return false;
  }
  const created = ms(line.created_at);
  state.entities.set(line.id, insertEntity(state.db, absentNulls(line), { created, updated: created }).id);
  return true;
}

function importFact(state: ImportState, line: LineOf<"fact">): boolean {
  const created = ms(line.created_at);
  const existing = state.db.get<{ id: number }>(
    "knowledge",
    "SELECT id FROM facts WHERE text = ? AND source_kind = ? AND source_id IS ? AND created_at = ?",
    line.text,
    line.source_kind,
    line.source_id,
    created,
  );
  if (existing) {
    state.facts.set(line.id, existing.id);
    return false;
  }
  const entity = line.entity_id === null ? null : state.entities.get(line.entity_id) ?? null;
  const { valid_from, valid_to, superseded_by: _superseded, ...rest } = line;
  const values = { ...absentNulls(rest), entity, valid_from: valid_from ? ms(valid_from) : created };
  const row = insertFact(state.db, { ...values, valid_to: valid_to ? ms(valid_to) : null }, created);
  state.facts.set(line.id, row.id);
  return true;
}

function importRelation(state: ImportState, line: LineOf<"relation">): boolean {
  const subject = state.entities.get(line.subject_id);
  const object = state.entities.get(line.object_id);
  if (subject === undefined || object === undefined) return false;
  const there = state.db.get(
    "knowledge",
    "SELECT 1 FROM relations WHERE subject_id = ? AND predicate = ? AND object_id = ?",
    subject,
    line.predicate,
    object,
  );
  if (there) return false;
  const fact = line.fact_id === null ? null : state.facts.get(line.fact_id) ?? null;
  insertRelation(
    state.db,
    { subject, predicate: line.predicate, object, weight: line.weight, fact },
    ms(line.created_at),
  );
  return true;
}

function importToolResult(state: ImportState, line: LineOf<"tool_result">): boolean {
  const created = ms(line.created_at);
  const there = state.db.get(
    "tool_results",
    "SELECT 1 FROM tool_results WHERE tool_name = ? AND call_id IS ? AND created_at = ?",
    line.tool_name,
    line.call_id,
    created,
  );
  if (there) return false;
  const n = line.message_id === null ? null : parseId(ID_PREFIX.message, line.message_id);
  const messageId = n === null ? line.message_id : `${ID_PREFIX.message}_${state.messages.get(line.message_id!) ?? n}`;
  insertToolResult(state.db, { ...absentNulls(line), message_id: messageId ?? undefined }, created);
  return true;
}

function importEpisode(state: ImportState, line: LineOf<"episode">): boolean {
  const created = ms(line.created_at);
  if (state.db.get("experience", "SELECT 1 FROM episodes WHERE task = ? AND created_at = ?", line.task, created)) {
    return false;
  }
  const row = insertEpisode(state.db, absentNulls(line), { created, updated: ms(line.updated_at) });
  for (const feedback of line.feedback) {
    insertFeedback(state.db, row.id, absentNulls(feedback), ms(feedback.created_at));
  }
  return true;
}

/** Writes one record; true when it was new, false when it was skipped. */
const IMPORTERS: { [K in Kind]: (state: ImportState, line: LineOf<K>) => boolean } = {
  conversation: importConversation,
  message: importMessage,
  summary: importSummary,
  entity: importEntity,
  fact: importFact,
  relation: importRelation,
  tool_result: importToolResult,
  episode: importEpisode,
};

/** Truth stores first: what they committed re-imports as skipped, and the summaries then find their messages. */
const WRITTEN: StoreName[] = ["conversations", "knowledge", "tool_results", "experience", "summaries"];

/** Writes `lines` in one transaction per store, counting each record as imported or skipped. */
function writeBatch(state: ImportState, lines: ImportLine[], result: ImportResult): void {
  const { db } = state;
  for (const store of WRITTEN) db.stores[store].exec("BEGIN IMMEDIATE");
  try {
    for (const line of lines) {
      const importer = IMPORTERS[line.record] as (state: ImportState, line: ImportLine) => boolean;
      const counts = importer(state, line) ? result.imported : result.skipped;
      counts[line.record] = (counts[line.record] ?? 0) + 1;
    }
    // One index catch-up a batch (the index is derived; see _message_index.ts).
    indexPendingMessages(db.stores.conversations);
    for (const store of WRITTEN) db.stores[store].exec("COMMIT");
  } catch (error) {
    for (const store of WRITTEN) if (db.stores[store].isTransaction) db.stores[store].exec("ROLLBACK");
    throw error;
  }
}

/**
 * Imports a JSONL export: validates every line before writing anything, then writes in batches.
 * `beforeBatch` runs before each batch's transaction (the caller waits out backups there).
 *
 * @example
 * ```ts
 * const { imported, skipped } = await importJsonl(db, (await Deno.open("memory.jsonl")).readable);
 * ```
 */
export async function importJsonl(
  db: StoreAccess,
  source: ImportSource,
  options: { beforeBatch?: () => Promise<void> } = {},
): Promise<ImportResult> {
  const spool = await spoolValidLines(source);
  try {
    const result: ImportResult = { imported: {}, skipped: {} };
    const state: ImportState = { db, messages: new Map(), entities: new Map(), facts: new Map(), existing: new Map() };
    let batch: ImportLine[] = [];
    const write = async () => {
      await options.beforeBatch?.();
      writeBatch(state, batch, result);
      batch = [];
    };
    // The stream closes the file when it ends or when the loop leaves early.
    for await (const [, text] of numberedLines((await Deno.open(spool)).readable)) {
      if (text === "") continue;
      // Validated on the way in: the spool holds zod's output.
      batch.push(JSON.parse(text) as ImportLine);
      if (batch.length >= MEMORY_IMPORT_BATCH) await write();
    }
    if (batch.length > 0) await write();
    return result;
  } finally {
    await Deno.remove(spool);
  }
}
