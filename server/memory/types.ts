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

// ---- what the stores hold, as clients see it (the schemas are the source; HTTP documents them) ----

const storedMetadata = z.record(z.string(), z.unknown()).nullable();

/** The schema of a page of `item`, named `id` in the OpenAPI document. */
export function pageSchema<T extends z.ZodType>(item: T, id: string) {
  return z.object({
    items: z.array(item),
    next_cursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page"),
  }).meta({ id });
}

/** A stored conversation. */
export const ConversationSchema = z.object({
  id: z.string(),
  title: z.string().nullable(),
  metadata: storedMetadata,
  message_count: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
}).meta({ id: "Conversation" });
/** A stored conversation. */
export type Conversation = z.infer<typeof ConversationSchema>;

/** The roles a chat message can have (OpenAI's). */
export const ROLES = ["system", "user", "assistant", "tool"] as const;
/** A message role. */
export type Role = typeof ROLES[number];

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
/** One part of a multi-part message (OpenAI content parts). */
export type ContentPart = z.infer<typeof ContentPartSchema>;

/** A stored message. Ids are `msg_<n>`, increasing in write order. */
export const MessageSchema = z.object({
  id: z.string().meta({ example: "msg_42" }),
  conversation_id: z.string(),
  role: z.enum(ROLES),
  content: z.union([z.string(), z.array(ContentPartSchema)]),
  model: z.string().nullable(),
  tool_calls: z.array(z.unknown()).nullable(),
  tool_call_id: z.string().nullable(),
  prompt_tokens: z.number().int().nullable(),
  completion_tokens: z.number().int().nullable(),
  metadata: storedMetadata,
  created_at: z.string(),
}).meta({ id: "Message" });
/** A stored message. */
export type Message = z.infer<typeof MessageSchema>;

/** A full-text search hit: higher `score` is better (BM25, negated); `snippet` marks matches with `**`. */
export const SearchHitSchema = z.object({
  message: MessageSchema,
  conversation_id: z.string(),
  score: z.number().describe("BM25, higher is better"),
  snippet: z.string().describe("The matching passage, matches wrapped in `**`"),
}).meta({ id: "SearchHit" });
/** A full-text search hit. */
export type SearchHit = z.infer<typeof SearchHitSchema>;

/** A knowledge entity (a person, page, project …), unique by `type` and `name`. */
export const EntitySchema = z.object({
  id: z.string(),
  type: z.string(),
  name: z.string(),
  attributes: storedMetadata,
  created_at: z.string(),
  updated_at: z.string(),
}).meta({ id: "Entity" });
/** A knowledge entity. */
export type Entity = z.infer<typeof EntitySchema>;

/** A typed edge between two entities. */
export const RelationSchema = z.object({
  id: z.string(),
  subject_id: z.string(),
  predicate: z.string(),
  object_id: z.string(),
  weight: z.number().nullable(),
  fact_id: z.string().nullable(),
  created_at: z.string(),
  valid_from: z.string().nullable().describe("When the fact behind it became true (its message's time)"),
  valid_to: z.string().nullable().describe("When a newer contradicting fact retired it; null while current"),
}).meta({ id: "Relation" });
/** A typed edge between two entities. */
export type Relation = z.infer<typeof RelationSchema>;

/** A fact with its provenance: where it was learned (`source_kind`, `source_id`, `conversation_id`). */
export const FactSchema = z.object({
  id: z.string(),
  text: z.string(),
  subject: z.string().nullable(),
  predicate: z.string().nullable(),
  object: z.string().nullable(),
  entity_id: z.string().nullable(),
  confidence: z.number().nullable(),
  source_kind: z.string(),
  source_id: z.string().nullable(),
  conversation_id: z.string().nullable(),
  metadata: storedMetadata,
  created_at: z.string(),
  valid_from: z.string().nullable().describe("When it became true: the time of the message that said it"),
  valid_to: z.string().nullable().describe("When a newer contradicting fact retired it; null while current"),
  superseded_by: z.string().nullable().describe("The fact that retired it"),
}).meta({ id: "Fact" });
/** A fact with its provenance. */
export type Fact = z.infer<typeof FactSchema>;

/** A fact search hit. */
export const FactHitSchema = z.object({ fact: FactSchema, score: z.number(), snippet: z.string() }).meta({
  id: "FactHit",
});
/** A fact search hit. */
export type FactHit = z.infer<typeof FactHitSchema>;

/** One recorded tool call and what it returned. */
export const ToolResultSchema = z.object({
  id: z.string(),
  conversation_id: z.string().nullable(),
  message_id: z.string().nullable(),
  call_id: z.string().nullable(),
  tool_name: z.string(),
  arguments: z.unknown(),
  result: z.unknown(),
  status: z.enum(["ok", "error"]),
  error: z.string().nullable(),
  duration_ms: z.number(),
  created_at: z.string(),
}).meta({ id: "ToolResult" });
/** One recorded tool call and what it returned. */
export type ToolResult = z.infer<typeof ToolResultSchema>;

/** How an episode ended. */
export const OUTCOMES = ["success", "failure", "partial", "unknown"] as const;

const rating = z.union([z.literal(-1), z.literal(0), z.literal(1)]);

/** User feedback on an episode: -1 (bad), 0 (neutral), 1 (good). */
export const FeedbackRecordSchema = z.object({
  rating,
  comment: z.string().nullable(),
  created_at: z.string(),
});
/** User feedback on an episode. */
export type Feedback = z.infer<typeof FeedbackRecordSchema>;

/** An episode of experience: a task the agent attempted, its outcome and the user's feedback. */
export const EpisodeSchema = z.object({
  id: z.string(),
  conversation_id: z.string().nullable(),
  task: z.string(),
  outcome: z.enum(OUTCOMES),
  reward: z.number().nullable(),
  metadata: storedMetadata,
  feedback: z.array(FeedbackRecordSchema),
  created_at: z.string(),
  updated_at: z.string(),
}).meta({ id: "Episode" });
/** An episode of experience. */
export type Episode = z.infer<typeof EpisodeSchema>;

/** A summary of a conversation's messages `from_message_id`..`to_message_id` (inclusive). */
export const SummarySchema = z.object({
  id: z.string(),
  conversation_id: z.string(),
  from_message_id: z.string(),
  to_message_id: z.string(),
  text: z.string(),
  model: z.string().nullable(),
  created_at: z.string(),
}).meta({ id: "Summary" });
/** A summary of part of a conversation. */
export type Summary = z.infer<typeof SummarySchema>;

/** The kinds of item an embedding can belong to. */
export const EMBEDDABLE_KINDS = ["message", "fact", "summary", "episode", "chunk", "tool_result"] as const;
/** An embeddable item kind. */
export type EmbeddableKind = typeof EMBEDDABLE_KINDS[number];

/** A float32 vector for one item under one model. */
export const EmbeddingSchema = z.object({
  item_kind: z.enum(EMBEDDABLE_KINDS),
  item_id: z.string(),
  model: z.string(),
  dimensions: z.number().int(),
  vector: z.array(z.number()),
  created_at: z.string(),
}).meta({ id: "Embedding" });
/** A float32 vector for one item under one model. */
export type Embedding = z.infer<typeof EmbeddingSchema>;

/** An item that has no embedding yet (queued by the outbox worker). */
export const PendingEmbeddingSchema = z.object({
  item_kind: z.enum(EMBEDDABLE_KINDS),
  item_id: z.string(),
  conversation_id: z.string().nullable(),
  queued_at: z.string(),
}).meta({ id: "PendingEmbedding" });
/** An item that has no embedding yet. */
export type PendingEmbedding = z.infer<typeof PendingEmbeddingSchema>;

/** One store file as the stats see it. */
export const StoreStatsSchema = z.object({ name: z.string(), schema_version: z.number(), bytes: z.number() });
/** One store file as the stats see it. */
export type StoreStats = z.infer<typeof StoreStatsSchema>;

/** One embedding model's vector index as the stats see it. */
export const IndexStateSchema = z.object({
  model: z.string(),
  /** Embeddings stored for the model (the truth the index is derived from). */
  vectors: z.number(),
  dimensions: z.number().nullable(),
  /** `open` in the running server's index worker; `saved` on disk only; `missing`: built on first use. */
  state: z.enum(["open", "saved", "missing"]),
  backend: z.string().nullable(),
  /** Vectors in the open index, or in the saved file. */
  indexed: z.number().nullable(),
  /** Changes to the model's embeddings logged since the index last caught up or was saved. */
  behind: z.number(),
  /** Changes the open index has not saved yet. */
  unsaved: z.number().nullable(),
}).meta({ id: "IndexState" });
/** One embedding model's vector index as the stats see it. */
export type IndexState = z.infer<typeof IndexStateSchema>;

/** Counts across the stores. */
export const MemoryStatsSchema = z.object({
  conversations: z.number(),
  messages: z.number(),
  entities: z.number(),
  relations: z.number(),
  facts: z.number(),
  tool_results: z.number(),
  episodes: z.number(),
  summaries: z.number(),
  embeddings: z.number(),
  pending_embeddings: z.number(),
  outbox_pending: z.number(),
  counters: z.record(z.string(), z.number()),
  stores: z.array(StoreStatsSchema),
  /** Pages kept in memory, and their chunks. */
  documents: z.number(),
  document_chunks: z.number(),
  /** The embedding backlog by item kind (`pending_embeddings` in all). */
  pending_by_kind: z.record(z.string(), z.number()),
  /** Each embedding model's vector index. */
  indexes: z.array(IndexStateSchema),
}).meta({ id: "MemoryStats" });
/** Counts across the stores. */
export type MemoryStats = z.infer<typeof MemoryStatsSchema>;

/** What an import added and skipped. */
export const ImportResultSchema = z.object({
  imported: z.record(z.string(), z.number()),
  skipped: z.record(z.string(), z.number()),
}).meta({ id: "ImportResult" });
/** What an import added and skipped. */
export type ImportResult = z.infer<typeof ImportResultSchema>;

/** The manifest written beside a backup's database files. */
export const BackupManifestSchema = z.object({
  format: z.literal("tabagent-memory-backup"),
  format_version: z.literal(1),
  created_at: z.string(),
  app_version: z.string(),
  files: z.array(z.object({
    store: z.string(),
    file: z.string(),
    bytes: z.number(),
    sha256: z.string(),
    schema_version: z.number(),
  })),
}).meta({ id: "BackupManifest" });
/** The manifest written beside a backup's database files. */
export type BackupManifest = z.infer<typeof BackupManifestSchema>;

// ---- input schemas ----

const jsonObject = z.record(z.string(), z.unknown()).refine(
  (value) => JSON.stringify(value).length <= MEMORY_MAX_JSON_BYTES,
  `must be at most ${MEMORY_MAX_JSON_BYTES} bytes as JSON`,
);
const name = z.string().min(1).max(MEMORY_MAX_NAME_LENGTH);
const text = z.string().min(1).max(MEMORY_MAX_TEXT_LENGTH);
/** A reference to a stored item's id: as long as an id the API takes in a path (`/conversations/{id}`). */
const ref = z.string().min(1).max(200);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * The cursors a list takes: its keyset position in plain text, a number (a time or a row id) and,
 * for lists ordered by a second key, `.` and that key (an id). Every string of this shape is a
 * position in its list, so a client that builds one (or a fuzzer generating from the OpenAPI
 * document) gets the page after it; `next_cursor` is still the way to page.
 */
export const CURSOR_PATTERN = /^[0-9]{1,15}(?:\.[\s\S]{0,200})?$/;

/** `{cursor?, limit?}`. */
export const PageOptionsSchema = z.object({
  cursor: z.string().regex(CURSOR_PATTERN, "not a cursor from this list").optional(),
  limit: z.number().int().min(1).max(MEMORY_MAX_PAGE_SIZE).optional(),
});

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
  valid_from: z.iso.datetime({ offset: true }).optional().describe("When it became true (default: now)"),
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
  conversation_id: ref.optional(),
  message_id: ref.optional(),
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
  rating,
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

/** A message to store. */
export type NewMessage = z.infer<typeof NewMessageSchema>;
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

/** Longest page text kept as a document (characters); it is stored in chunks. */
export const MEMORY_MAX_DOCUMENT_CHARS = 2 * 1024 * 1024;

/** `addDocument` input: a page the user brought into a chat (never browsing at large). */
export const NewDocumentSchema = z.object({
  conversation_id: z.string().min(1).max(200).optional(),
  url: z.url({ protocol: /^https?$/ }).max(4096),
  title: z.string().max(MEMORY_MAX_NAME_LENGTH).optional(),
  text: z.string().trim().min(1).max(MEMORY_MAX_DOCUMENT_CHARS),
});
/** `addDocument` input. */
export type NewDocument = z.infer<typeof NewDocumentSchema>;

/** A page kept in memory, in `chunks` full-text indexed and embedded pieces. */
export const DocumentSchema = z.object({
  id: z.string(),
  conversation_id: z.string().nullable(),
  url: z.string(),
  title: z.string().nullable(),
  chunks: z.number().int(),
  created_at: z.string(),
}).meta({ id: "Document" });
/** A page kept in memory. */
export type Document = z.infer<typeof DocumentSchema>;
