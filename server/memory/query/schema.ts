/** The hybrid memory query: its input schema (the source of its types) and its answer. */
import { z } from "zod";
import { MEMORY_MAX_EMBEDDING_DIMENSIONS, MEMORY_MAX_QUERY_LENGTH, MEMORY_MAX_SEARCH_LIMIT } from "../../config/mod.ts";
import { ROLES } from "../types.ts";

/** Where a query looks: messages, facts, chunks of pages the user brought into a chat, tool results. */
export const QUERY_STORES = ["messages", "facts", "documents", "tool_results"] as const;
/** A place a query looks. */
export type QueryStore = typeof QUERY_STORES[number];

/** Candidates one ranked list may contribute (`depth`). */
export const MAX_QUERY_DEPTH = 1_000;
/** The embedding model memories are indexed with unless a query names another. */
export const DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2";

// zod 4 numbers are finite: NaN and ±Infinity are refused
const finite = z.number();
/** The largest float32: vectors are stored and compared as float32, where a larger number is Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;
const vectorValue = finite.min(-FLOAT32_MAX).max(FLOAT32_MAX);

/** `POST /v1/memory/query` and `MemoryClient.query` input. */
export const MemoryQuerySchema = z.object({
  /** What to look for, in words (embedded for the vector side unless `vector` is given). */
  query: z.string().trim().min(1, "must not be empty").max(MEMORY_MAX_QUERY_LENGTH),
  /** A query vector computed by the caller (same model as `model`). */
  vector: z.array(vectorValue).min(1).max(MEMORY_MAX_EMBEDDING_DIMENSIONS).optional(),
  model: z.string().min(1).max(200).default(DEFAULT_EMBEDDING_MODEL),
  k: z.number().int().min(1).max(MEMORY_MAX_SEARCH_LIMIT).default(10),
  /** `hybrid` fuses keyword and vector results; the others use one side only. */
  mode: z.enum(["hybrid", "keyword", "vector"]).default("hybrid"),
  stores: z.array(z.enum(QUERY_STORES)).min(1).default([...QUERY_STORES]),
  conversation_id: z.string().min(1).max(200).optional(),
  roles: z.array(z.enum(ROLES)).min(1).optional(),
  /** Time scope (ISO 8601). */
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  /** Items whose metadata `tags` (or their conversation's) include any of these. */
  tags: z.array(z.string().min(1).max(100)).min(1).max(20).optional(),
  /** Reciprocal rank fusion weights of the two lists. */
  weights: z.object({ keyword: finite.min(0).max(10), vector: finite.min(0).max(10) }).default({
    keyword: 1,
    vector: 1,
  }),
  /** How much recency and importance (metadata `importance` 0..1, a fact's confidence) count. */
  ranking: z.object({
    recency: finite.min(0).max(1).default(0),
    importance: finite.min(0).max(1).default(0),
    half_life_days: finite.positive().max(36_500).default(30),
  }).refine((r) => r.recency + r.importance <= 1, "recency + importance must not exceed 1").default({
    recency: 0,
    importance: 0,
    half_life_days: 30,
  }),
  /** Candidates each list contributes before fusion (default 5 × k). */
  depth: z.number().int().min(1).max(MAX_QUERY_DEPTH).optional(),
  /** Maximal marginal relevance: 1 is relevance only, lower trades relevance for diversity. */
  diversity: finite.min(0).max(1).optional(),
}).refine((q) => !q.since || !q.until || Date.parse(q.since) <= Date.parse(q.until), {
  message: "since must not be after until",
  path: ["until"],
});

/** A parsed query (defaults applied). */
export type MemoryQuery = z.infer<typeof MemoryQuerySchema>;

/**
 * Whether `value` is a `vector` that {@link MemoryQuerySchema} accepts (1 to
 * `MEMORY_MAX_EMBEDDING_DIMENSIONS` numbers in float32's range), checked in place: the schema copies the array
 * number by number, ~40 KB of garbage per 384-d query.
 */
export function isQueryVector(value: unknown): value is number[] {
  return Array.isArray(value) && value.length >= 1 && value.length <= MEMORY_MAX_EMBEDDING_DIMENSIONS &&
    value.every((v) => typeof v === "number" && Math.abs(v) <= FLOAT32_MAX);
}
/** A query as callers write it. */
export type MemoryQueryInput = z.input<typeof MemoryQuerySchema>;

/** One result of a hybrid query (the schema HTTP and gRPC answer with). */
export const MemoryQueryHitSchema = z.object({
  kind: z.enum(["message", "fact", "chunk", "tool_result"]),
  id: z.string(),
  conversation_id: z.string().nullable(),
  role: z.string().nullable(),
  text: z.string(),
  document: z.object({ id: z.string(), url: z.string(), title: z.string().nullable() }).optional(),
  created_at: z.string(),
  score: z.number(),
  keyword_rank: z.number().int().nullable(),
  vector_rank: z.number().int().nullable(),
  distance: z.number().nullable(),
});

/** What a query answers. */
export const MemoryQueryResultSchema = z.object({
  hits: z.array(MemoryQueryHitSchema),
  used: z.object({ keyword: z.boolean(), vector: z.boolean(), exact_rerank: z.boolean() }),
});

/** One result of a hybrid query. */
export interface MemoryQueryHit {
  kind: "message" | "fact" | "chunk" | "tool_result";
  /** `msg_…`, `fact_…`, `chunk_…` or `tool_…`. */
  id: string;
  conversation_id: string | null;
  role: string | null;
  /** The item's text (a chunk's, a fact's, a message's, a tool result's), at most {@link HIT_TEXT_CHARS} characters. */
  text: string;
  /** For a page chunk: the page. */
  document?: { id: string; url: string; title: string | null };
  created_at: string;
  /** Final score (higher is better). */
  score: number;
  /** 1-based rank in the keyword list, or null when it was not there. */
  keyword_rank: number | null;
  vector_rank: number | null;
  /** Vector distance (1 − cosine) when it was in the vector list. */
  distance: number | null;
}

/** Characters of text one hit carries. */
export const HIT_TEXT_CHARS = 2_000;

/** The answer to a query. */
export interface MemoryQueryResult {
  hits: MemoryQueryHit[];
  /** What ran: `vector` is false when no vector side could run (no embeddings yet for the model). */
  used: { keyword: boolean; vector: boolean; exact_rerank: boolean };
}
