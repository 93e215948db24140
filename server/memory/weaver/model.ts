/**
 * The model path: a chat model (a GGUF through the inference orchestrator, at background
 * priority) reads one message and answers in JSON constrained by {@link EXTRACTION_JSON_SCHEMA};
 * the answer is parsed with {@link ExtractionSchema} before anything is written. Memory does not
 * load models: the server gives the weaver a {@link GenerateJson} that does.
 */
import { TabAgentError } from "../../errors/mod.ts";
import { type Extraction, EXTRACTION_JSON_SCHEMA, ExtractionSchema } from "./schema.ts";

/** Generates a reply to `user` under `system`, constrained to the JSON Schema `schema`; returns its text. */
export type GenerateJson = (request: {
  system: string;
  user: string;
  schema: Record<string, unknown>;
  maxTokens: number;
  signal?: AbortSignal;
}) => Promise<string>;

/**
 * Most tokens one extraction may generate. The schema bounds the answer (3 entities, 2 relations,
 * 2 facts, 40 characters a string), but the grammar lets the model indent its JSON, which small
 * models do: SmolLM2's indented answer at these limits stays under this.
 */
export const EXTRACTION_MAX_TOKENS = 768;
/** Longest message text given to the model (characters); longer messages are cut. */
export const EXTRACTION_MAX_CHARS = 2_000;

/** The instructions the model extracts with. */
export const EXTRACTION_PROMPT =
  `You extract a knowledge graph from one chat message written by the user. Answer with JSON only.
- entities: people, organizations, places and things named in the message, each with a type.
- relations: links between two entities, as subject, predicate, object (predicate in snake_case, e.g. works_at, located_in, has_sibling).
- facts: an attribute of an entity whose value is not an entity, e.g. email, age, job_title.
Write "I" for the user. Use the names as written. Leave lists empty when the message states nothing.`;

/**
 * Extracts with a model. Throws `upstream_failed` when the output is not valid JSON or does not
 * match {@link ExtractionSchema} (the weaver then falls back to the rules for that message), and
 * passes on the model's own errors (not pulled, unavailable), which make the weaver retry later.
 *
 * @example
 * ```ts
 * const extraction = await extractWithModel(generate, "My name is Ada. I work at Initech.");
 * ```
 */
export async function extractWithModel(
  generate: GenerateJson,
  text: string,
  signal?: AbortSignal,
): Promise<Extraction> {
  const raw = await generate({
    system: EXTRACTION_PROMPT,
    user: text.slice(0, EXTRACTION_MAX_CHARS),
    schema: EXTRACTION_JSON_SCHEMA as unknown as Record<string, unknown>,
    maxTokens: EXTRACTION_MAX_TOKENS,
    signal,
  });
  return parseModelExtraction(raw);
}

/** The model's answer, parsed and validated; `upstream_failed` naming what was wrong otherwise. */
export function parseModelExtraction(raw: string): Extraction {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new TabAgentError("upstream_failed", "The extraction model's answer is not JSON", {
      output: raw.slice(0, 200),
    }, { cause: error });
  }
  const parsed = ExtractionSchema.safeParse(value);
  if (!parsed.success) {
    throw new TabAgentError("upstream_failed", "The extraction model's answer does not match the schema", {
      output: raw.slice(0, 200),
      errors: parsed.error.issues.slice(0, 5).map((issue) => ({ field: issue.path.join("."), message: issue.message })),
    });
  }
  return parsed.data;
}
