/**
 * The weaver's shapes: what an extractor returns (the same for the rule-based and the model path;
 * the model's output is constrained by {@link EXTRACTION_JSON_SCHEMA} and then parsed with
 * {@link ExtractionSchema}), the weaver's status, and what a consolidation merged.
 */
import { z } from "zod";

/** How the weaver extracts: regular expressions, a GGUF model with JSON-schema output, or not at all. */
export const WEAVER_MODES = ["rules", "model", "off"] as const;
/** A weaver mode. */
export type WeaverMode = typeof WEAVER_MODES[number];

/** Entity types an extraction may use. */
export const ENTITY_TYPES = ["person", "organization", "place", "date", "email", "url", "thing"] as const;
/** An entity type. */
export type EntityType = typeof ENTITY_TYPES[number];

/** Most entities, relations and facts one message yields (bounds the model's output too). */
export const MAX_EXTRACTED_ITEMS = 8;
/** Longest name or value an extraction may hold. */
export const MAX_EXTRACTED_LENGTH = 200;

const value = z.string().trim().min(1).max(MAX_EXTRACTED_LENGTH);
const triple = z.object({ subject: value, predicate: value, object: value });

/** One message's extraction. Subjects and objects name entities; "I" is the speaker. */
export const ExtractionSchema = z.object({
  entities: z.array(z.object({
    name: value,
    type: z.enum(ENTITY_TYPES),
    description: z.string().trim().max(MAX_EXTRACTED_LENGTH).optional(),
  })).max(MAX_EXTRACTED_ITEMS),
  relations: z.array(triple).max(MAX_EXTRACTED_ITEMS).describe("Between two entities: each becomes a fact and an edge"),
  facts: z.array(triple).max(MAX_EXTRACTED_ITEMS).describe("An entity's attribute: the object is a value"),
});
/** One message's extraction. */
export type Extraction = z.infer<typeof ExtractionSchema>;

const jsonString = { type: "string", minLength: 1, maxLength: 40 } as const;
const jsonTriple = {
  type: "object",
  properties: { subject: jsonString, predicate: jsonString, object: jsonString },
  required: ["subject", "predicate", "object"],
  additionalProperties: false,
} as const;

/**
 * The JSON Schema the model's output is constrained to (node-llama-cpp turns it into a grammar).
 * Tighter than {@link ExtractionSchema} (fewer items, shorter strings) so a small model's output
 * stays short; anything it produces also passes {@link ExtractionSchema}.
 */
export const EXTRACTION_JSON_SCHEMA = {
  type: "object",
  properties: {
    entities: {
      type: "array",
      maxItems: 3,
      items: {
        type: "object",
        properties: { name: jsonString, type: { enum: [...ENTITY_TYPES] } },
        required: ["name", "type"],
        additionalProperties: false,
      },
    },
    relations: { type: "array", maxItems: 2, items: jsonTriple },
    facts: { type: "array", maxItems: 2, items: jsonTriple },
  },
  required: ["entities", "relations", "facts"],
  additionalProperties: false,
} as const;

/** The weaver's state, for `GET /v1/memory/graph/status` and health. */
export const WeaverStatusSchema = z.object({
  mode: z.enum(WEAVER_MODES),
  model: z.string().nullable().describe("The GGUF the model path extracts with"),
  running: z.boolean().describe("The background loop is on (memory opened with the outbox and a mode other than off)"),
  backlog: z.number().int().describe("Messages queued for weaving"),
  woven: z.number().int().describe("Messages woven so far"),
  extractors: z.record(z.string(), z.number().int()).describe(
    'Woven messages by extractor ("rules", "model:<id>")',
  ),
  entities: z.number().int(),
  relations: z.number().int(),
  facts: z.number().int(),
  current_facts: z.number().int().describe("Facts not retired by a newer one"),
  merge_threshold: z.number().describe("Cosine similarity of name embeddings at which two entities merge"),
  last_error: z.string().nullable(),
}).meta({ id: "WeaverStatus" });
/** The weaver's state. */
export type WeaverStatus = z.infer<typeof WeaverStatusSchema>;

/** `consolidateEntities` input. */
export const ConsolidateOptionsSchema = z.object({
  threshold: z.number().min(0.5).max(1).optional().describe("Cosine similarity to merge at (default: the server's)"),
});
/** `consolidateEntities` input. */
export type ConsolidateOptions = z.infer<typeof ConsolidateOptionsSchema>;

/** One merge: `from` (now gone) merged into `into`. */
export const MergeSchema = z.object({
  into: z.string(),
  from: z.string(),
  name: z.string().describe("The merged entity's name, kept as an alias"),
  reason: z.enum(["name", "embedding"]),
  similarity: z.number().nullable(),
});
/** What a consolidation did. */
export const ConsolidationSchema = z.object({ merges: z.array(MergeSchema) }).meta({ id: "Consolidation" });
/** What a consolidation did. */
export type Consolidation = z.infer<typeof ConsolidationSchema>;
/** One merge. */
export type Merge = z.infer<typeof MergeSchema>;
