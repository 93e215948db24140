/**
 * Hybrid memory search: FTS5 BM25 and HNSW vector lists fused by weighted reciprocal rank,
 * structural filters (stores, conversation, roles, time, tags) with an exact vector rerank when they
 * leave few candidates, recency and importance ranking, and MMR diversity; plus embedding on write.
 *
 * @example
 * ```ts
 * const { hits } = await memory.query({ query: "what did I read about trains?", k: 5, diversity: 0.7 });
 * ```
 * @module
 */
export {
  DEFAULT_EMBEDDING_MODEL,
  HIT_TEXT_CHARS,
  isQueryVector,
  MAX_QUERY_DEPTH,
  type MemoryQuery,
  type MemoryQueryHit,
  MemoryQueryHitSchema,
  type MemoryQueryInput,
  type MemoryQueryResult,
  MemoryQueryResultSchema,
  MemoryQuerySchema,
  QUERY_STORES,
  type QueryStore,
} from "./schema.ts";
export {
  EXACT_RERANK_LIMIT,
  type KeywordJob,
  keywordKeysOf,
  type KeywordSources,
  runQuery,
  runQueryConcurrently,
} from "./engine.ts";
export { KeywordThread } from "./keyword_thread.ts";
export {
  blendScore,
  cosineSimilarity,
  maximalMarginalRelevance,
  ndcgAtK,
  reciprocalRankFusion,
  RRF_K,
} from "./fusion.ts";
export { EMBED_BATCH, EmbeddingWriter, type EmbedTexts } from "./embedding_writer.ts";
