/**
 * Vector indexes: one HNSW index per embedding model (cosine, L2 or inner product), persisted
 * beside the stores, updated incrementally from the embeddings store's change log, rebuilt from
 * the store when missing, stale or damaged, and searched in a worker so the event loop never waits.
 *
 * @example
 * ```ts
 * import { itemKey, VectorIndexService } from "./mod.ts";
 * const indexes = new VectorIndexService({ storeDir: "/data/tabagent_db" });
 * const { keys, distances } = await indexes.search("sentence-transformers/all-MiniLM-L6-v2", query, 10);
 * ```
 * @module
 */
export {
  ANN_BACKENDS,
  type AnnBackendName,
  type AnnIndex,
  type AnnMatches,
  createAnnIndex,
  DEFAULT_ANN_BACKEND,
  DEFAULT_HNSW,
  type HnswParams,
  loadAnnBackend,
  type Metric,
  METRICS,
} from "./ann.ts";
export { distance, exactSearch } from "./exact.ts";
export { type IndexedKind, itemKey, keyItem, KIND_CODES } from "./keys.ts";
export { type IndexSidecar, type OpenOutcome, VectorIndex, type VectorIndexOptions } from "./vector_index.ts";
export { type IndexStatus, MAX_INDEX_K, VectorIndexService, type VectorIndexServiceOptions } from "./index_service.ts";
