/**
 * What the memory stores hold, as clients see it, and the zod schemas that every way in (the
 * in-process client, gRPC, HTTP) parses input with before anything is written.
 */
import { z } from "zod";
import {
  MEMORY_MAX_EMBEDDING_DIMENSIONS,
  MEMORY_MAX_JSON_BYTES,
  MEMORY_MAX_NAME_LENGTH,
  MEMORY_MAX_PAGE_SIZE,
  MEMORY_MAX_QUERY_LENGTH,
  MEMORY_MAX_SEARCH_LIMIT,
  MEMORY_MAX_TEXT_LENGTH,
} from "../config/mod.ts";

/** Free-form JSON object stored with an item. */
export type Metadata = Record<string, unknown>;

/** A page of a list, newest or oldest first as each list says; `next_cursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Cursor pagination input shared by every list call. */
export interface PageOptions {
  cursor?: string;
  limit?: number;
}

/** A stored conversation. */
export interface Conversation {
  id: string;
  title: string | null;
  metadata: Metadata | null;
  message_count: number;
  created_at: string;
  updated_at: string;
}

/** The roles a chat message can have (OpenAI's). */
export const ROLES = ["system", "user", "assistant", "tool"] as const;
/** A message role. */
export type Role = typeof ROLES[number];

/** One part of a multi-part message (OpenAI content parts). */
export type ContentPart =
  | { type: "text"; text: string }
  | { type: "image_url"; image_url: { url: string; detail?: "auto" | "low" | "high" } }
  | { type: "input_audio"; input_audio: { data: string; format: string } }
  | { type: "file"; file: { file_data?: string; file_id?: string; filename?: string } };

/** A message to store. */
export interface NewMessage {
  role: Role;
  content: string | ContentPart[];
  model?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  metadata?: Metadata;
}

/** A stored message. Ids are `msg_<n>`, increasing in write order. */
export interface Message {
  id: string;
  conversation_id: string;
  role: Role;
  content: string | ContentPart[];
  model: string | null;
  tool_calls: unknown[] | null;
  tool_call_id: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  metadata: Metadata | null;
  created_at: string;
}

/** A full-text search hit: higher `score` is better (BM25, negated); `snippet` marks matches with `**`. */
export interface SearchHit {
  message: Message;
  conversation_id: string;
  score: number;
  snippet: string;
}

/** A knowledge entity (a person, page, project …), unique by `type` and `name`. */
export interface Entity {
  id: string;
  type: string;
  name: string;
  attributes: Metadata | null;
  created_at: string;
  updated_at: string;
}

/** A typed edge between two entities. */
export interface Relation {
  id: string;
  subject_id: string;
  predicate: string;
  object_id: string;
  weight: number | null;
  fact_id: string | null;
  created_at: string;
}

/** A fact with its provenance: where it was learned (`source_kind`, `source_id`, `conversation_id`). */
export interface Fact {
  id: string;
  text: string;
  subject: string | null;
  predicate: string | null;
  object: string | null;
  entity_id: string | null;
  confidence: number | null;
  source_kind: string;
  source_id: string | null;
  conversation_id: string | null;
  metadata: Metadata | null;
  created_at: string;
}

/** A fact search hit. */
export interface FactHit {
  fact: Fact;
  score: number;
  snippet: string;
}

/** One recorded tool call and what it returned. */
export interface ToolResult {
  id: string;
  conversation_id: string | null;
  message_id: string | null;
  call_id: string | null;
  tool_name: string;
  arguments: unknown;
  result: unknown;
  status: "ok" | "error";
  error: string | null;
  duration_ms: number;
  created_at: string;
}

/** How an episode ended. */
export const OUTCOMES = ["success", "failure", "partial", "unknown"] as const;

/** User feedback on an episode: -1 (bad), 0 (neutral), 1 (good). */
export interface Feedback {
  rating: -1 | 0 | 1;
  comment: string | null;
  created_at: string;
}

/** An episode of experience: a task the agent attempted, its outcome and the user's feedback. */
export interface Episode {
  id: string;
  conversation_id: string | null;
  task: string;
  outcome: typeof OUTCOMES[number];
  reward: number | null;
  metadata: Metadata | null;
  feedback: Feedback[];
  created_at: string;
  updated_at: string;
}

/** A summary of a conversation's messages `from_message_id`..`to_message_id` (inclusive). */
export interface Summary {
  id: string;
  conversation_id: string;
  from_message_id: string;
  to_message_id: string;
  text: string;
  model: string | null;
  created_at: string;
}

/** The kinds of item an embedding can belong to. */
export const EMBEDDABLE_KINDS = ["message", "fact", "summary", "episode"] as const;
/** An embeddable item kind. */
export type EmbeddableKind = typeof EMBEDDABLE_KINDS[number];

/** A float32 vector for one item under one model. */
export interface Embedding {
  item_kind: EmbeddableKind;
  item_id: string;
  model: string;
  dimensions: number;
  vector: number[];
  created_at: string;
}

/** An item that has no embedding yet (queued by the outbox worker). */
export interface PendingEmbedding {
  item_kind: EmbeddableKind;
  item_id: string;
  conversation_id: string | null;
  queued_at: string;
}

/** One store file as the stats see it. */
export interface StoreStats {
  name: string;
  schema_version: number;
  bytes: number;
}

/** Counts across the stores. */
export interface MemoryStats {
  conversations: number;
  messages: number;
  entities: number;
  relations: number;
  facts: number;
  tool_results: number;
  episodes: number;
  summaries: number;
  embeddings: number;
  pending_embeddings: number;
  outbox_pending: number;
  counters: Record<string, number>;
  stores: StoreStats[];
}

/** What an import added and skipped. */
export interface ImportResult {
  imported: Record<string, number>;
  skipped: Record<string, number>;
}

/** The manifest written beside a backup's database files. */
export interface BackupManifest {
  format: "tabagent-memory-backup";
  format_version: 1;
  created_at: string;
  app_version: string;
  files: { store: string; file: string; bytes: number; sha256: string; schema_version: number }[];
}

// ---- input schemas ----

const jsonObject = z.record(z.string(), z.unknown()).refine(
  (value) => JSON.stringify(value).length <= MEMORY_MAX_JSON_BYTES,
  `must be at most ${MEMORY_MAX_JSON_BYTES} bytes as JSON`,
);
const name = z.string().min(1).max(MEMORY_MAX_NAME_LENGTH);
const text = z.string().min(1).max(MEMORY_MAX_TEXT_LENGTH);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** `{cursor?, limit?}`. */
export const PageOptionsSchema = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(MEMORY_MAX_PAGE_SIZE).optional(),
});

/** A content part. Strings are not size-limited here: the message byte limit (413) covers them. */
export const ContentPartSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), text: z.string() }),
  z.object({
    type: z.literal("image_url"),
    image_url: z.object({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).optional() }),
  }),
  z.object({ type: z.literal("input_audio"), input_audio: z.object({ data: z.string(), format: z.string() }) }),
  z.object({
    type: z.literal("file"),
    file: z.object({
      file_data: z.string().optional(),
      file_id: z.string().optional(),
      filename: z.string().optional(),
    }),
  }),
]);

/** A message to append. */
export const NewMessageSchema = z.object({
  role: z.enum(ROLES),
  content: z.union([z.string(), z.array(ContentPartSchema).max(256)]),
  model: name.optional(),
  tool_calls: z.array(z.unknown()).max(128).optional(),
  tool_call_id: name.optional(),
  prompt_tokens: count.optional(),
  completion_tokens: count.optional(),
  metadata: jsonObject.optional(),
});

/** `createConversation` input. */
export const NewConversationSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").optional(),
  title: name.optional(),
  metadata: jsonObject.optional(),
});

/** `updateConversation` input: `null` clears a field, absence keeps it. */
export const ConversationPatchSchema = z.object({
  title: name.nullable().optional(),
  metadata: jsonObject.nullable().optional(),
});

/** `searchMessages` input. */
export const SearchOptionsSchema = z.object({
  query: z.string().min(1).max(MEMORY_MAX_QUERY_LENGTH),
  limit: z.number().int().min(1).max(MEMORY_MAX_SEARCH_LIMIT).optional(),
  conversationId: z.string().min(1).max(200).optional(),
  /** `all` (default): every word must match; `any`: any word, ranked by BM25. */
  match: z.enum(["all", "any"]).optional(),
});

/** `upsertEntity` input. */
export const NewEntitySchema = z.object({ type: name, name, attributes: jsonObject.optional() });

/** `addRelation` input. */
export const NewRelationSchema = z.object({
  subject_id: name,
  predicate: name,
  object_id: name,
  weight: z.number().finite().optional(),
  fact_id: name.optional(),
});

/** `addFact` input. */
export const NewFactSchema = z.object({
  text,
  subject: name.optional(),
  predicate: name.optional(),
  object: name.optional(),
  entity_id: name.optional(),
  confidence: z.number().min(0).max(1).optional(),
  source_kind: z.enum(["message", "tool_result", "episode", "user", "import", "inference"]).optional(),
  source_id: name.optional(),
  conversation_id: name.optional(),
  metadata: jsonObject.optional(),
});

/** `recordToolResult` input. */
export const NewToolResultSchema = z.object({
  tool_name: name,
  arguments: z.unknown().optional(),
  result: z.unknown().optional(),
  status: z.enum(["ok", "error"]),
  error: text.optional(),
  duration_ms: z.number().min(0).finite(),
  call_id: name.optional(),
  conversation_id: name.optional(),
  message_id: name.optional(),
});

/** `recordEpisode` input. */
export const NewEpisodeSchema = z.object({
  task: text,
  outcome: z.enum(OUTCOMES),
  reward: z.number().finite().optional(),
  conversation_id: name.optional(),
  metadata: jsonObject.optional(),
});

/** `addFeedback` input. */
export const FeedbackSchema = z.object({
  rating: z.union([z.literal(-1), z.literal(0), z.literal(1)]),
  comment: text.optional(),
});

/** `putSummary` input. */
export const NewSummarySchema = z.object({
  conversation_id: name,
  from_message_id: name,
  to_message_id: name,
  text,
  model: name.optional(),
});

/** `putEmbedding` input. */
export const NewEmbeddingSchema = z.object({
  item_kind: z.enum(EMBEDDABLE_KINDS),
  item_id: name,
  model: name,
  vector: z.array(z.number().finite()).min(1).max(MEMORY_MAX_EMBEDDING_DIMENSIONS),
});

/** Inputs as the parsers return them. */
export type NewConversation = z.infer<typeof NewConversationSchema>;
/** A conversation patch. */
export type ConversationPatch = z.infer<typeof ConversationPatchSchema>;
/** Search options. */
export type SearchOptions = z.infer<typeof SearchOptionsSchema>;
/** A new entity. */
export type NewEntity = z.infer<typeof NewEntitySchema>;
/** A new relation. */
export type NewRelation = z.infer<typeof NewRelationSchema>;
/** A new fact. */
export type NewFact = z.infer<typeof NewFactSchema>;
/** A new tool result. */
export type NewToolResult = z.infer<typeof NewToolResultSchema>;
/** A new episode. */
export type NewEpisode = z.infer<typeof NewEpisodeSchema>;
/** New feedback. */
export type NewFeedback = z.infer<typeof FeedbackSchema>;
/** A new summary. */
export type NewSummary = z.infer<typeof NewSummarySchema>;
/** A new embedding. */
export type NewEmbedding = z.infer<typeof NewEmbeddingSchema>;
