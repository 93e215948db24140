/**
 * The knowledge graph: the weaver that writes it from the user's messages (rule-based or model
 * extraction, entity resolution and merging, fact versions with provenance) and the reads over it
 * (k-hop neighbourhoods and shortest paths by recursive CTE).
 *
 * @example
 * ```ts
 * const memory = await openLocalMemory({ dir, weaver: { mode: "rules" } });
 * await memory.appendMessages(id, [{ role: "user", content: "My name is Ada. I work at Initech." }]);
 * await memory.weavePending();
 * const facts = await memory.listFacts({ current: true });
 * ```
 * @module
 */
export {
  entityNeighbors,
  type GraphPath,
  graphPath,
  GraphPathSchema,
  type Neighborhood,
  NeighborhoodSchema,
} from "./graph.ts";
export { extractWithModel, type GenerateJson, parseModelExtraction } from "./model.ts";
export { factText, isSingleValued, nameKey, predicateKey, SINGLE_VALUED_PREDICATES } from "./names.ts";
export { extractWithRules } from "./rules.ts";
export * from "./schema.ts";
export { DEFAULT_MERGE_THRESHOLD, Weaver, type WeaverSettings } from "./weaver.ts";
