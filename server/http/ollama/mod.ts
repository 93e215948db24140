/**
 * Ollama's API beside the OpenAI one, so the clients people already use (Page Assist, Open WebUI,
 * Continue, the official libraries) work unchanged: `/api/chat`, `/api/generate`, `/api/embed`,
 * `/api/embeddings`, `/api/tags`, `/api/show`, `/api/ps`, `/api/version`, `/api/pull` and
 * `/api/delete`, in Ollama's wire format (NDJSON streams, nanosecond durations, `{"error"}`). Each
 * route is a thin adapter over the orchestrator, scheduler, memory pipeline and models component
 * that `/v1` uses.
 *
 * @example
 * ```ts
 * app.use("/api/*", ollamaErrorShape());
 * app.route("/", ollamaRoutes({ orchestrator, models, version: VERSION }));
 * ```
 * @module
 */
import type { RouteConfig } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { ModelOrchestrator } from "../../inference/orchestrator/mod.ts";
import { type ConversationMemory, prepareTurnPipeline } from "../../inference/pipeline/mod.ts";
import type { MlService } from "../../ml/mod.ts";
import type { ModelsComponent } from "../../models/mod.ts";
import { BEARER_SECURITY, createRouter } from "../router.ts";
import { ModelFactsCache } from "./_model_facts.ts";
import { NDJSON_CONTENT_TYPE } from "./_ndjson.ts";
import { ModelNames } from "./_request.ts";
import * as schemas from "./_schemas.ts";
import { embeddingsHandler, embedHandler } from "./embed.ts";
import { chatHandler, generateHandler, type OllamaInferenceDeps } from "./inference.ts";
import {
  deleteHandler,
  type OllamaModelDeps,
  psHandler,
  pullHandler,
  showHandler,
  tagsHandler,
  versionHandler,
} from "./models.ts";

export { ollamaErrorShape } from "./_errors.ts";
export { modelNotFound, quantOfFile, type ResolvedName, resolveModelName } from "./_names.ts";
export { NDJSON_CONTENT_TYPE } from "./_ndjson.ts";

/**
 * The routes `--allow-anonymous-local` opens without the token: inference and read-only listings.
 * Never pull, delete, memory or the model files.
 */
export const OLLAMA_ANONYMOUS_ROUTES: readonly string[] = [
  "POST /api/chat",
  "POST /api/generate",
  "POST /api/embed",
  "POST /api/embeddings",
  "GET /api/tags",
  "HEAD /api/tags",
  "POST /api/show",
  "GET /api/ps",
  "GET /api/version",
  "HEAD /api/version",
];

/** What the Ollama routes need from the composition root. */
export interface OllamaRoutesDeps {
  orchestrator: ModelOrchestrator;
  models: ModelsComponent;
  version: string;
  memory?: ConversationMemory;
  /** The Python ML service, when it runs: sentence-transformers embeddings go there, as on `/v1`. */
  ml?: MlService;
  /** Aborts when the server stops: open streams end. */
  shutdownSignal?: AbortSignal;
  /**
   * Answer `GET /` with a plain "is running" line, as Ollama does (Page Assist checks it). Only where
   * no static files are served at `/` (mode `http`).
   */
  serveRoot?: boolean;
}

const TAG = "ollama";
const errorContent = { "application/json": { schema: schemas.ErrorSchema } };
const ERRORS = {
  400: { description: 'Bad request (`{"error"}`)', content: errorContent },
  401: { description: "Missing or wrong bearer token", content: errorContent },
  403: { description: "Host or Origin not allowed", content: errorContent },
  404: { description: "Model not found", content: errorContent },
};

function jsonBody(schema: z.ZodTypeAny) {
  return { body: { required: true, content: { "application/json": { schema } } } };
}

function streamed(schema: z.ZodTypeAny, what: string) {
  return {
    200: {
      description: `${what}: newline-delimited JSON objects (default), the last with \`done: true\` and the ` +
        "counts and durations (ns); with `stream: false`, one object",
      content: {
        [NDJSON_CONTENT_TYPE]: { schema: z.string() },
        "application/json": { schema },
      },
    },
  };
}

const DOCS: RouteConfig[] = [
  {
    method: "post",
    path: "/api/chat",
    summary: "Chat (Ollama-compatible)",
    description: 'Messages, tools (→ `tool_calls`), `format` ("json" or a JSON Schema), `options`, `keep_alive`. ' +
      "No messages: loads the model (or unloads it with `keep_alive: 0`). Images are refused: no vision model is " +
      "served. TabAgent extensions: `tool_choice`, `conversation_id`, `memory`.",
    request: jsonBody(schemas.ChatRequestSchema),
    responses: { ...streamed(schemas.ChatResponseSchema, "The reply"), ...ERRORS },
  },
  {
    method: "post",
    path: "/api/generate",
    summary: "Generate (Ollama-compatible)",
    description: "A prompt through the model's chat template (with `system`), or as it is with `raw: true`; " +
      "`suffix` fills in the middle on models with FIM tokens. An empty prompt loads the model, or unloads it " +
      "with `keep_alive: 0`.",
    request: jsonBody(schemas.GenerateRequestSchema),
    responses: { ...streamed(schemas.GenerateResponseSchema, "The completion"), ...ERRORS },
  },
  {
    method: "post",
    path: "/api/embed",
    summary: "Embeddings (Ollama-compatible)",
    request: jsonBody(schemas.EmbedRequestSchema),
    responses: {
      200: {
        description: "One vector per input",
        content: { "application/json": { schema: schemas.EmbedResponseSchema } },
      },
      ...ERRORS,
    },
  },
  {
    method: "post",
    path: "/api/embeddings",
    summary: "One embedding (Ollama's older endpoint)",
    request: jsonBody(schemas.EmbeddingsRequestSchema),
    responses: {
      200: { description: "The vector", content: { "application/json": { schema: schemas.EmbeddingsResponseSchema } } },
      ...ERRORS,
    },
  },
  {
    method: "get",
    path: "/api/tags",
    summary: "Models in the cache (Ollama-compatible)",
    description: "Each is named `org/name:QUANT` (or `:latest`); send that name back as `model`.",
    responses: {
      200: {
        description: "Models",
        content: { "application/json": { schema: z.object({ models: z.array(schemas.ListModelSchema) }) } },
      },
      401: ERRORS[401],
      403: ERRORS[403],
    },
  },
  {
    method: "post",
    path: "/api/show",
    summary: "One model's details, model_info, template and parameters",
    request: jsonBody(schemas.ShowRequestSchema),
    responses: {
      200: { description: "The model", content: { "application/json": { schema: schemas.ShowResponseSchema } } },
      ...ERRORS,
    },
  },
  {
    method: "get",
    path: "/api/ps",
    summary: "Loaded models (Ollama-compatible)",
    responses: {
      200: {
        description: "Loaded models",
        content: { "application/json": { schema: z.object({ models: z.array(schemas.ProcessModelSchema) }) } },
      },
      401: ERRORS[401],
      403: ERRORS[403],
    },
  },
  {
    method: "get",
    path: "/api/version",
    summary: "Server version (TabAgent's)",
    responses: {
      200: { description: "Version", content: { "application/json": { schema: z.object({ version: z.string() }) } } },
      401: ERRORS[401],
      403: ERRORS[403],
    },
  },
  {
    method: "post",
    path: "/api/pull",
    summary: "Pull a model from the Hugging Face Hub (Ollama-compatible progress)",
    description: "`model` is a Hub id (`org/name`, `org/name:Q8_0`, `hf.co/org/name:Q4_K_M`) or a short name the " +
      'catalog knows. Streams `{status, digest, total, completed}` objects ending with `{"status": "success"}`.',
    request: jsonBody(schemas.PullRequestSchema),
    responses: {
      200: {
        description: 'Progress objects (NDJSON), or `{"status": "success"}` with `stream: false`',
        content: {
          [NDJSON_CONTENT_TYPE]: { schema: z.string() },
          "application/json": { schema: schemas.ProgressSchema },
        },
      },
      ...ERRORS,
      502: { description: "The Hub could not be reached or failed (with `stream: false`)", content: errorContent },
    },
  },
  {
    method: "delete",
    path: "/api/delete",
    summary: "Delete a model from the cache (unloads it first)",
    request: jsonBody(schemas.DeleteRequestSchema),
    responses: {
      200: { description: "Deleted" },
      ...ERRORS,
      409: { description: "Being pulled or answering", content: errorContent },
    },
  },
];

/**
 * The Ollama API resource. Bodies are parsed by the handlers (Ollama accepts JSON whatever the
 * Content-Type); the OpenAPI document describes them under the `ollama` tag.
 */
export function ollamaRoutes(deps: OllamaRoutesDeps) {
  const router = createRouter();
  for (const doc of DOCS) router.openAPIRegistry.registerPath({ ...doc, tags: [TAG], security: BEARER_SECURITY });
  const names = new ModelNames(deps.orchestrator, deps.models.cache, () => deps.models.catalog.map((m) => m.id));
  const inference: OllamaInferenceDeps = {
    orchestrator: deps.orchestrator,
    names,
    ml: deps.ml,
    memory: deps.memory,
    shutdownSignal: deps.shutdownSignal,
  };
  const model: OllamaModelDeps = {
    orchestrator: deps.orchestrator,
    models: deps.models,
    names,
    facts: new ModelFactsCache(),
    version: deps.version,
    shutdownSignal: deps.shutdownSignal,
  };
  const prepareTurn = prepareTurnPipeline(deps.memory);
  router.post("/api/chat", (c) => chatHandler(c, inference, prepareTurn));
  router.post("/api/generate", (c) => generateHandler(c, inference));
  router.post("/api/embed", (c) => embedHandler(c, inference));
  router.post("/api/embeddings", (c) => embeddingsHandler(c, inference));
  router.get("/api/tags", (c) => tagsHandler(c, model));
  router.post("/api/show", (c) => showHandler(c, model));
  router.get("/api/ps", (c) => psHandler(c, model));
  router.get("/api/version", (c) => versionHandler(c, model));
  router.post("/api/pull", (c) => pullHandler(c, model));
  router.delete("/api/delete", (c) => deleteHandler(c, model));
  if (deps.serveRoot) router.get("/", (c) => c.text("TabAgent is running (Ollama-compatible API at /api)"));
  return router;
}
