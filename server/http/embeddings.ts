/** `POST /v1/embeddings`: OpenAI's embeddings API over ONNX encoders and GGUF models. */
import { encodeBase64 } from "./_base64.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { EMBEDDINGS_MAX_INPUTS } from "../config/mod.ts";
import { KEEP_ALIVE_MESSAGE, KEEP_ALIVE_PATTERN, type ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import { keepAliveOf } from "./_openai.ts";
import { BEARER_SECURITY, createRouter } from "./router.ts";
import type { MlService } from "../ml/mod.ts";

/** `POST /v1/embeddings` body. */
export const EmbeddingRequestSchema = z.object({
  model: z.string().min(1).max(200),
  input: z.union([z.string(), z.array(z.string()).min(1).max(EMBEDDINGS_MAX_INPUTS)]),
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.number().int().min(1).optional().describe("Truncate (Matryoshka-style) and re-normalise"),
  user: z.string().optional(),
  keep_alive: z.union([z.string().regex(KEEP_ALIVE_PATTERN, KEEP_ALIVE_MESSAGE), z.number()]).optional(),
}).openapi("EmbeddingRequest");

const EmbeddingListSchema = z.object({
  object: z.literal("list"),
  data: z.array(z.object({
    object: z.literal("embedding"),
    index: z.number(),
    embedding: z.union([z.array(z.number()), z.string()]),
  })),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number(), total_tokens: z.number() }),
}).openapi("EmbeddingList");

const route = createRoute({
  method: "post",
  path: "/v1/embeddings",
  tags: ["inference"],
  summary: "Embeddings (OpenAI-compatible)",
  security: BEARER_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: EmbeddingRequestSchema } } } },
  responses: {
    200: { description: "One vector per input", content: { "application/json": { schema: EmbeddingListSchema } } },
  },
});

function truncate(vector: Float32Array, dimensions: number | undefined): Float32Array {
  if (!dimensions || dimensions >= vector.length) return vector;
  const cut = vector.slice(0, dimensions);
  const norm = Math.hypot(...cut) || 1;
  return cut.map((v) => v / norm);
}

function embeddingList(body: z.infer<typeof EmbeddingRequestSchema>, vectors: Float32Array[], promptTokens: number) {
  return {
    object: "list" as const,
    data: vectors.map((vector, index) => {
      const v = truncate(vector, body.dimensions);
      return {
        object: "embedding" as const,
        index,
        embedding: body.encoding_format === "base64"
          ? encodeBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
          : Array.from(v),
      };
    }),
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

/** The embeddings resource. */
export function embeddingRoutes(deps: { orchestrator: ModelOrchestrator; ml?: MlService }) {
  return createRouter({ statuses: [404, 409, 429, 503] }).openapi(route, async (c) => {
    const body = c.req.valid("json");
    const inputs = [body.input].flat();
    if (deps.ml && await deps.ml.servesEmbedding(body.model)) {
      // A sentence-transformers model the Python ML service runs (e.g. the packaged MiniLM).
      const result = await deps.ml.embed({ model: body.model, inputs }, { signal: c.req.raw.signal });
      return c.json(embeddingList(body, result.vectors, result.promptTokens), 200);
    }
    const handle = await deps.orchestrator.acquire(body.model, { keepAliveMs: keepAliveOf(body) });
    try {
      const result = await handle.run(
        { priority: "interactive", signal: c.req.raw.signal },
        (lease) => handle.onnx ? handle.onnx.embed(inputs, lease.signal) : handle.llama!.embed(inputs, lease.signal),
      );
      return c.json(embeddingList(body, result.vectors, result.promptTokens), 200);
    } finally {
      handle.release();
    }
  });
}
