/**
 * Ollama's wire formats (its `docs/api.md` and `api/types.go`), field for field: the request bodies
 * we parse and the response objects we describe in the OpenAPI document.
 */
import { z } from "@hono/zod-openapi";
import { CHAT_MAX_MESSAGES, CHAT_MAX_TOOLS, EMBEDDINGS_MAX_INPUTS } from "../../config/mod.ts";
import { KEEP_ALIVE_MESSAGE, KEEP_ALIVE_PATTERN } from "../../inference/orchestrator/mod.ts";

/** `keep_alive`: a duration ("5m", "1h30m"), seconds as a number, 0 to unload, negative to keep. */
const KeepAliveSchema = z.union([z.string().max(32).regex(KEEP_ALIVE_PATTERN, KEEP_ALIVE_MESSAGE), z.number()])
  .nullish().describe(
    "How long the model stays loaded after the request (default 5m); 0 unloads, negative keeps it",
  );

/**
 * `options`: the Modelfile parameters. Those the engine honours are checked; the others (num_gpu,
 * mirostat, …) are accepted and ignored, as Ollama ignores options it does not know.
 */
export const OptionsSchema = z.object({
  temperature: z.number().min(0).max(100).nullish(),
  top_k: z.number().int().min(0).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repeat_penalty: z.number().min(0).max(100).nullish(),
  presence_penalty: z.number().min(-100).max(100).nullish(),
  frequency_penalty: z.number().min(-100).max(100).nullish(),
  seed: z.number().int().nullish(),
  num_predict: z.number().int().min(-2).nullish().describe(
    "Most tokens to generate; -1 (infinite) and -2 (fill the context) use the context",
  ),
  num_ctx: z.number().int().min(1).nullish().describe(
    "Context window; capped at the context the model is loaded with",
  ),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
}).passthrough().openapi("OllamaOptions");

/** `images`: none (or empty); the models this API serves read text. */
const NoImagesSchema = z.array(z.string()).max(0, "TabAgent's Ollama API serves text models only; send text")
  .nullish().describe("Only empty: the models served here read text");
/** `think`: off (or unset); none of the models served here think aloud. */
const NoThinkingSchema = z.literal(false, { message: "thinking is not supported by the models served here" })
  .nullish().describe("Only false: the models served here do not think aloud");

/** `format`: "json", a JSON Schema, or empty. */
const FormatSchema = z.union([z.literal(""), z.literal("json"), z.record(z.string(), z.unknown())]).nullish();

/** A tool call as Ollama writes it: arguments are an object, not a string. */
export const ToolCallSchema = z.object({
  id: z.string().optional(),
  function: z.object({
    index: z.number().int().optional(),
    name: z.string(),
    arguments: z.record(z.string(), z.unknown()),
  }),
}).openapi("OllamaToolCall");

/** One chat message. */
export const MessageSchema = z.object({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string().nullish(),
  images: NoImagesSchema,
  tool_calls: z.array(ToolCallSchema).nullish(),
  tool_name: z.string().optional(),
  thinking: z.string().optional(),
}).openapi("OllamaMessage");

const ToolSchema = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});

const ModelNameSchema = z.string({ error: (issue) => issue.input === undefined ? "required" : undefined }).min(1).max(
  300,
).describe(
  "An `org/name` id from GET /api/tags (optionally `:tag`), `hf.co/org/name:QUANT`, or a short `name:tag`",
);

/** `POST /api/chat`. */
export const ChatRequestSchema = z.object({
  model: ModelNameSchema,
  messages: z.array(MessageSchema).max(CHAT_MAX_MESSAGES).optional().default([]),
  tools: z.array(ToolSchema).max(CHAT_MAX_TOOLS).nullish(),
  tool_choice: z.union([
    z.enum(["none", "auto", "required"]),
    z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
  ]).nullish().describe("TabAgent extension (as in OpenAI's API): force or forbid tool calls"),
  format: FormatSchema,
  options: OptionsSchema.nullish(),
  stream: z.boolean().nullish().describe("Default true: newline-delimited JSON objects"),
  keep_alive: KeepAliveSchema,
  think: NoThinkingSchema,
  conversation_id: z.string().min(1).max(200).nullish().describe(
    "TabAgent extension: store this turn in this memory conversation",
  ),
  memory: z.boolean().nullish().describe("TabAgent extension: retrieve relevant memories into the prompt"),
}).openapi("OllamaChatRequest");

/** `POST /api/generate`. */
export const GenerateRequestSchema = z.object({
  model: ModelNameSchema,
  prompt: z.string().optional().default(""),
  suffix: z.string().nullish(),
  system: z.string().nullish(),
  template: z.string().max(
    0,
    "not supported: the model's own chat template is used; send a templated prompt with raw: true",
  ).nullish().describe("Only empty: the model's own chat template is used (or `raw`)"),
  context: z.array(z.number().int()).nullish().describe("Deprecated in Ollama; accepted and ignored"),
  raw: z.boolean().nullish(),
  images: NoImagesSchema,
  format: FormatSchema,
  options: OptionsSchema.nullish(),
  stream: z.boolean().nullish(),
  keep_alive: KeepAliveSchema,
  think: NoThinkingSchema,
}).openapi("OllamaGenerateRequest");

/** `POST /api/embed`. */
export const EmbedRequestSchema = z.object({
  model: ModelNameSchema,
  input: z.union([z.string(), z.array(z.string()).max(EMBEDDINGS_MAX_INPUTS)]),
  truncate: z.boolean().nullish().describe("Default true: cut inputs longer than the context"),
  dimensions: z.number().int().min(1).nullish(),
  options: OptionsSchema.nullish(),
  keep_alive: KeepAliveSchema,
}).openapi("OllamaEmbedRequest");

/** `POST /api/embeddings` (the older one). */
export const EmbeddingsRequestSchema = z.object({
  model: ModelNameSchema,
  prompt: z.string().optional().default(""),
  options: OptionsSchema.nullish(),
  keep_alive: KeepAliveSchema,
}).openapi("OllamaEmbeddingsRequest");

/**
 * A request naming one model: `model`, or the deprecated `name` the official clients still send;
 * one of them is required, which the document states as two alternatives so that a client
 * generating requests from it never leaves both out.
 */
function namedRequest<T extends z.ZodRawShape>(fields: T) {
  return z.union([
    z.object({ model: ModelNameSchema, name: ModelNameSchema.optional(), ...fields }).passthrough(),
    z.object({ model: ModelNameSchema.optional(), name: ModelNameSchema, ...fields }).passthrough(),
  ]);
}

/** `POST /api/show`. */
export const ShowRequestSchema = namedRequest({ verbose: z.boolean().optional() }).openapi("OllamaShowRequest");
/** `POST /api/pull`. */
export const PullRequestSchema = namedRequest({
  insecure: z.boolean().optional(),
  stream: z.boolean().optional(),
}).openapi("OllamaPullRequest");
/** `DELETE /api/delete`. */
export const DeleteRequestSchema = namedRequest({}).openapi("OllamaDeleteRequest");

/** The statistics on the last object of a generation, all durations in nanoseconds. */
const MetricsFields = {
  total_duration: z.number().int().optional(),
  load_duration: z.number().int().optional(),
  prompt_eval_count: z.number().int().optional(),
  prompt_eval_duration: z.number().int().optional(),
  eval_count: z.number().int().optional(),
  eval_duration: z.number().int().optional(),
};

/** One `/api/chat` object (each streamed line, or the whole reply). */
export const ChatResponseSchema = z.object({
  model: z.string(),
  created_at: z.string(),
  message: MessageSchema,
  done: z.boolean(),
  done_reason: z.string().optional(),
  ...MetricsFields,
}).openapi("OllamaChatResponse");

/** One `/api/generate` object. */
export const GenerateResponseSchema = z.object({
  model: z.string(),
  created_at: z.string(),
  response: z.string(),
  done: z.boolean(),
  done_reason: z.string().optional(),
  ...MetricsFields,
}).openapi("OllamaGenerateResponse");

/** `/api/embed`'s answer. */
export const EmbedResponseSchema = z.object({
  model: z.string(),
  embeddings: z.array(z.array(z.number())),
  total_duration: z.number().int(),
  load_duration: z.number().int(),
  prompt_eval_count: z.number().int(),
}).openapi("OllamaEmbedResponse");

/** `/api/embeddings`' answer. */
export const EmbeddingsResponseSchema = z.object({ embedding: z.array(z.number()) }).openapi(
  "OllamaEmbeddingsResponse",
);

/** `details` of a model. */
export const DetailsSchema = z.object({
  parent_model: z.string(),
  format: z.string(),
  family: z.string(),
  families: z.array(z.string()).nullable(),
  parameter_size: z.string(),
  quantization_level: z.string(),
}).openapi("OllamaModelDetails");

/** One model of `/api/tags`. */
export const ListModelSchema = z.object({
  name: z.string(),
  model: z.string(),
  modified_at: z.string(),
  size: z.number().int(),
  digest: z.string(),
  details: DetailsSchema,
}).openapi("OllamaListModel");

/** One model of `/api/ps`. */
export const ProcessModelSchema = z.object({
  name: z.string(),
  model: z.string(),
  size: z.number().int(),
  digest: z.string(),
  details: DetailsSchema,
  expires_at: z.string(),
  size_vram: z.number().int(),
  context_length: z.number().int().optional(),
}).openapi("OllamaProcessModel");

/** `/api/show`'s answer. */
export const ShowResponseSchema = z.object({
  license: z.string().optional(),
  modelfile: z.string(),
  parameters: z.string(),
  template: z.string(),
  details: DetailsSchema,
  model_info: z.record(z.string(), z.unknown()),
  capabilities: z.array(z.string()),
  modified_at: z.string(),
}).openapi("OllamaShowResponse");

/** One `/api/pull` progress object. */
export const ProgressSchema = z.object({
  status: z.string(),
  digest: z.string().optional(),
  total: z.number().int().optional(),
  completed: z.number().int().optional(),
}).openapi("OllamaProgress");

/** Ollama's error body. */
export const ErrorSchema = z.object({ error: z.string() }).openapi("OllamaError");

/** Parsed bodies. */
export type ChatRequestBody = z.infer<typeof ChatRequestSchema>;
export type GenerateRequestBody = z.infer<typeof GenerateRequestSchema>;
export type OllamaOptions = z.infer<typeof OptionsSchema>;
export type OllamaMessage = z.infer<typeof MessageSchema>;
export type OllamaDetails = z.infer<typeof DetailsSchema>;
