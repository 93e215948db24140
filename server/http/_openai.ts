/** Pieces shared by the OpenAI-compatible routes: sampling fields, ids, usage, content reduction. */
import { createRoute, z } from "@hono/zod-openapi";
import { CHAT_MAX_STOP_SEQUENCES } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import type { GenerationResult, SamplingOptions } from "../inference/llama/mod.ts";
import { KEEP_ALIVE_MESSAGE, KEEP_ALIVE_PATTERN, parseKeepAlive } from "../inference/orchestrator/mod.ts";
import { BEARER_SECURITY } from "./router.ts";
import { sseEventSchema } from "./_sse.ts";

/** Sampling fields accepted by chat and completions (OpenAI's, plus llama.cpp's top_k/min_p/repeat_penalty). */
export const samplingFields = {
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish().describe("llama.cpp extension"),
  min_p: z.number().min(0).max(1).nullish().describe("llama.cpp extension"),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repeat_penalty: z.number().min(0).max(10).nullish().describe("llama.cpp extension"),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string().min(1)).max(CHAT_MAX_STOP_SEQUENCES)]).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(1).nullish().describe("Only 1 is supported"),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  keep_alive: z.union([z.string().regex(KEEP_ALIVE_PATTERN, KEEP_ALIVE_MESSAGE), z.number()]).optional().describe(
    "Ollama's keep_alive: how long the model stays loaded after this request (e.g. '10m', 0, -1)",
  ),
};

type SamplingInput = {
  [K in keyof typeof samplingFields]?: z.infer<typeof samplingFields[K]>;
};

/** The sampling fields OpenAI's bodies and Ollama's `options` name alike; null means unset. */
export interface SharedSamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repeat_penalty?: number | null;
  seed?: number | null;
}

/** Each shared wire field, by the engine's name for it. */
const SHARED_SAMPLING = {
  temperature: "temperature",
  topP: "top_p",
  topK: "top_k",
  minP: "min_p",
  presencePenalty: "presence_penalty",
  frequencyPenalty: "frequency_penalty",
  repeatPenalty: "repeat_penalty",
  seed: "seed",
} as const satisfies Record<string, keyof SharedSamplingFields>;

/** The engine's sampling options for the fields both wire formats share (`stop` and the budget differ). */
export function sharedSampling(fields: SharedSamplingFields): SamplingOptions {
  const options: Record<string, number | undefined> = {};
  for (const [option, field] of Object.entries(SHARED_SAMPLING)) options[option] = fields[field] ?? undefined;
  return options as Pick<SamplingOptions, keyof typeof SHARED_SAMPLING>;
}

/** Maps OpenAI's fields to the engine's sampling options. */
export function toSampling(body: SamplingInput, maxTokens?: number | null): SamplingOptions {
  const stop = body.stop === null || body.stop === undefined ? undefined : [body.stop].flat();
  return { ...sharedSampling(body), stop, maxTokens: maxTokens ?? undefined };
}

/** The keep_alive of a request, in ms. */
export function keepAliveOf(body: { keep_alive?: string | number }): number | undefined {
  return body.keep_alive === undefined ? undefined : parseKeepAlive(body.keep_alive);
}

/** An OpenAI-style id: `chatcmpl-…`, `cmpl-…`. */
export function completionId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** Unix seconds. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** OpenAI's `usage` object of a completion. */
export const UsageSchema = z.object({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  /** How many prompt tokens came from the prompt cache (not processed again), as OpenAI reports it. */
  prompt_tokens_details: z.object({ cached_tokens: z.number() }).optional(),
}).openapi("Usage");

/** The usage object of `result`; `prompt_tokens_details.cached_tokens` when the model says what it reused. */
export function usageOf(result: Pick<GenerationResult, "promptTokens" | "completionTokens" | "cachedTokens">) {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
    ...(result.cachedTokens === undefined ? {} : { prompt_tokens_details: { cached_tokens: result.cachedTokens } }),
  };
}

/** The fingerprint every response carries (OpenAI clients log it). */
export const SYSTEM_FINGERPRINT = "fp_tabagent";

/** The fields every object of one completion shares (the answer, each chunk, the usage chunk). */
export interface CompletionBase {
  id: string;
  created: number;
  model: string;
  system_fingerprint: string;
}

/** A new completion's shared fields: `prefix` is `chatcmpl` for chat, `cmpl` for text completions. */
export function completionBase(prefix: "chatcmpl" | "cmpl", model: string): CompletionBase {
  return { id: completionId(prefix), created: nowSeconds(), model, system_fingerprint: SYSTEM_FINGERPRINT };
}

/** {@link CompletionBase} as response-schema fields. */
export const completionBaseFields = {
  id: z.string(),
  created: z.number(),
  model: z.string(),
  system_fingerprint: z.string(),
};

/** Stands in for a chunk's text while the rest of it is serialised once (a control character no text escapes to). */
const TEXT_MARK = "\u0000";

/**
 * The JSON of a streamed chunk for any text, from `chunk` (built once, with a stand-in for the
 * text): the chunk's constant parts are serialised once and only the text each time.
 */
export function textChunkJson(chunk: (text: string) => unknown): (text: string) => string {
  const [head, tail] = JSON.stringify(chunk(TEXT_MARK)).split(JSON.stringify(TEXT_MARK));
  return (text) => head + JSON.stringify(text) + tail;
}

/** Text of a message content (string or parts); images and audio are refused for text models. */
export function contentText(content: unknown, field: string): string | null {
  if (content === null || content === undefined) return null;
  if (typeof content === "string") return content;
  const parts = content as { type: string; text?: string }[];
  return parts.map((part, i) => {
    if (part.type === "text" && typeof part.text === "string") return part.text;
    throw new TabAgentError("validation_failed", `Content of type '${part.type}' is not supported by this model`, {
      errors: [{ field: `${field}.${i}.type`, message: `'${part.type}' is not supported; send text` }],
    });
  }).join("");
}

/**
 * The OpenAPI route of a generation endpoint (`/v1/chat/completions`, `/v1/completions`): a JSON
 * body in; the completion as JSON, or its event stream, out.
 */
export function generationRoute<B extends z.ZodType, R extends z.ZodType>(
  spec: { path: string; summary: string; description?: string; body: B; result: R },
) {
  return createRoute({
    method: "post",
    path: spec.path,
    tags: ["inference"],
    summary: spec.summary,
    description: spec.description,
    security: BEARER_SECURITY,
    request: { body: { required: true, content: { "application/json": { schema: spec.body } } } },
    responses: {
      200: {
        description: "The completion, or its event stream",
        content: {
          "application/json": { schema: spec.result },
          "text/event-stream": { schema: sseEventSchema({ ends: ["[DONE]"] }) },
        },
      },
    },
  });
}
