/** `POST /api/embed` and `/api/embeddings`: Ollama's embeddings over the models `/v1/embeddings` uses. */
import type { Context } from "hono";
import type { LlamaTextModel } from "../../inference/llama/mod.ts";
import type { HttpEnv } from "../router.ts";
import { keepAliveMs, nanos, readBody, Timings } from "./_request.ts";
import { EmbeddingsRequestSchema, EmbedRequestSchema } from "./_schemas.ts";
import type { OllamaInferenceDeps } from "./inference.ts";

type Ctx = Context<HttpEnv>;

/** Tokens kept of an input when `truncate` is on: the embedding context, less a margin for re-tokenising. */
function truncateForEmbedding(llama: LlamaTextModel, text: string): string {
  const limit = Math.min(llama.contextSize, 2048) - 16;
  const tokens = llama.model.tokenize(text);
  return tokens.length <= limit ? text : llama.model.detokenize(tokens.slice(0, limit));
}

function shorten(vector: Float32Array, dimensions: number | undefined): number[] {
  if (!dimensions || dimensions >= vector.length) return Array.from(vector);
  const cut = vector.slice(0, dimensions);
  const norm = Math.hypot(...cut) || 1;
  return Array.from(cut, (v) => v / norm);
}

async function embedTexts(
  c: Ctx,
  deps: OllamaInferenceDeps,
  request: { model: string; texts: string[]; truncate: boolean; keepAlive: number | undefined },
) {
  const timings = new Timings();
  const resolved = await deps.names.resolve(request.model);
  if (deps.ml && await deps.ml.servesEmbedding(resolved.id)) {
    // A sentence-transformers model the Python ML service runs (e.g. the packaged MiniLM), as on /v1.
    timings.loaded = performance.now();
    if (request.texts.length === 0) return { vectors: [] as Float32Array[], promptTokens: 0, timings };
    const result = await deps.ml.embed({ model: resolved.id, inputs: request.texts }, { signal: c.req.raw.signal });
    return { ...result, timings };
  }
  const { handle } = await deps.names.acquire(request.model, request.keepAlive, resolved);
  timings.loaded = performance.now();
  try {
    if (request.texts.length === 0) return { vectors: [] as Float32Array[], promptTokens: 0, timings };
    const llama = handle.llama;
    const texts = request.truncate && llama ? request.texts.map((t) => truncateForEmbedding(llama, t)) : request.texts;
    const result = await handle.run(
      { priority: "interactive", signal: c.req.raw.signal },
      (lease) => handle.onnx ? handle.onnx.embed(texts, lease.signal) : llama!.embed(texts, lease.signal),
    );
    return { ...result, timings };
  } finally {
    handle.release();
  }
}

/** `POST /api/embed`. */
export async function embedHandler(c: Ctx, deps: OllamaInferenceDeps) {
  const body = await readBody(c, EmbedRequestSchema);
  const inputs = [body.input].flat();
  // An empty input loads the model and embeds nothing, as in Ollama.
  const texts = inputs.length === 1 && inputs[0] === "" ? [] : inputs;
  const { vectors, promptTokens, timings } = await embedTexts(c, deps, {
    model: body.model,
    texts,
    truncate: body.truncate !== false,
    keepAlive: keepAliveMs(body.keep_alive),
  });
  return c.json({
    model: body.model,
    embeddings: vectors.map((v) => shorten(v, body.dimensions ?? undefined)),
    total_duration: nanos(timings.began),
    load_duration: nanos(timings.began, timings.loaded),
    prompt_eval_count: promptTokens,
  });
}

/** `POST /api/embeddings` (Ollama's older endpoint: one prompt, one `embedding`). */
export async function embeddingsHandler(c: Ctx, deps: OllamaInferenceDeps) {
  const body = await readBody(c, EmbeddingsRequestSchema);
  const { vectors } = await embedTexts(c, deps, {
    model: body.model,
    texts: body.prompt ? [body.prompt] : [],
    truncate: true,
    keepAlive: keepAliveMs(body.keep_alive),
  });
  return c.json({ embedding: vectors[0] ? Array.from(vectors[0]) : [] });
}
