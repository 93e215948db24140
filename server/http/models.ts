/**
 * The models resource: the OpenAI-shaped list with our fields, one model, pulls as background jobs
 * with SSE progress, cancel, delete, and file serving with Range (for the Python service and
 * remote workers). Model ids contain a slash: `/v1/models/Qwen/Qwen2.5-0.5B-Instruct-GGUF` and
 * `/v1/models/Qwen%2FQwen2.5-0.5B-Instruct-GGUF` both work.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { TabAgentError, validationError } from "../errors/mod.ts";
import {
  findModel,
  listModels,
  MANIFEST_FILE,
  MODEL_ID_SEGMENT_PATTERN,
  MODEL_TASKS,
  modelIdSchema,
  type ModelsComponent,
  parseModelId,
  PULL_STATES,
  type PullJob,
  type PullProgress,
  repoPathSchema,
  trustedSha256,
  verifyModel,
} from "../models/mod.ts";
import { problem } from "./problem.ts";
import { sseEventSchema } from "./_sse.ts";
import { BEARER_SECURITY, createRouter, type HttpEnv } from "./router.ts";

/** What the models routes need from the composition root. */
export interface ModelRoutesDeps {
  models: ModelsComponent;
  /** Whether inference has a model loaded; inference provides it. */
  isLoaded?: (id: string) => boolean;
  /** Unloads a model before its files are deleted (refusing while it is in use); inference provides it. */
  unload?: (id: string) => Promise<void>;
  /** Aborted when the HTTP server stops: open SSE streams end on it. */
  shutdownSignal?: AbortSignal;
}

/** A model as `GET /v1/models` lists it. */
export const ModelSchema = z.object({
  id: z.string().openapi({ example: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" }),
  object: z.literal("model"),
  created: z.number().int().describe("Unix seconds of the last download; 0 when not downloaded"),
  owned_by: z.string().describe("The Hub organisation"),
  downloaded: z.boolean().describe(
    "Every file of the model is in the cache and verified, or weights were placed in the cache by hand",
  ),
  loaded: z.boolean().describe("An inference backend holds the model in memory"),
  size: z.number().int().describe("Bytes on disk when downloaded, else the catalog's approximate size"),
  task: z.string().nullable().describe(`${MODEL_TASKS.join(", ")}, or the Hub's pipeline tag`),
  format: z.string().nullable(),
  name: z.string().optional(),
  revision: z.string().nullable().describe("Commit of the downloaded files"),
  in_catalog: z.boolean(),
  license: z.string().optional(),
  min_ram_bytes: z.number().int().optional(),
  pulling: z.boolean().describe("A pull of this model is running"),
  files: z.array(z.object({ path: z.string(), size: z.number().int() })).optional(),
}).openapi("Model");

const ModelListSchema = z.object({ object: z.literal("list"), data: z.array(ModelSchema) }).openapi("ModelList");

const FileProgressSchema = z.object({
  path: z.string(),
  size: z.number().int(),
  bytes: z.number().int(),
  state: z.enum(["queued", "waiting", "downloading", "done"]),
});

/** A pull's progress, as each SSE `progress` event and the JSON view carry it. */
export const PullProgressSchema = z.object({
  job: z.string(),
  id: z.string(),
  state: z.enum(PULL_STATES),
  revision: z.string().optional(),
  bytes: z.number().int(),
  total: z.number().int(),
  rate: z.number().describe("Bytes per second, recent"),
  eta_s: z.number().nullable(),
  files: z.array(FileProgressSchema),
  error: z.record(z.string(), z.unknown()).optional().describe("The problem document when failed or cancelled"),
}).openapi("PullProgress");

const PullRequestSchema = z.object({
  model: modelIdSchema.meta({ example: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" }),
  revision: z.string().min(1).max(255).regex(/^[A-Za-z0-9._\/-]+$/).optional().describe("Branch, tag or commit"),
  files: z.array(z.string().min(1).max(256)).max(100).optional().describe("Exact paths or glob patterns"),
  quant: z.string().regex(/^[A-Za-z0-9_]{1,32}$/).optional().describe("GGUF quantisation (default Q4_K_M)"),
  connections: z.number().int().min(1).max(32).optional().describe("Parallel Range requests per file (default 8)"),
}).openapi("PullRequest");

const PullAcceptedSchema = z.object({
  job: z.string(),
  model: z.string(),
  state: z.enum(PULL_STATES),
  progress_url: z.string(),
}).openapi("PullAccepted");

const VerificationSchema = z.object({
  id: z.string(),
  ok: z.boolean().describe("Every file is present with its manifest's size and sha256"),
  hashed_bytes: z.number().int(),
  files: z.array(z.object({
    path: z.string(),
    size: z.number().int(),
    state: z.enum(["ok", "damaged", "missing"]),
    sha256: z.string(),
    actual_sha256: z.string().optional(),
    actual_size: z.number().int().optional(),
  })),
}).openapi("ModelVerification");

const listRoute = createRoute({
  method: "get",
  path: "/v1/models",
  tags: ["models"],
  summary: "List models (OpenAI shape)",
  description: "The catalog and every model in the cache, with our fields: downloaded, loaded, size, task.",
  security: BEARER_SECURITY,
  request: {
    query: z.object({
      task: z.string().max(64).optional(),
      downloaded: z.enum(["true", "false"]).optional(),
    }),
  },
  responses: { 200: { description: "Models", content: { "application/json": { schema: ModelListSchema } } } },
});

const pullRoute = createRoute({
  method: "post",
  path: "/v1/models/pull",
  tags: ["models"],
  summary: "Start pulling a model from the Hugging Face Hub",
  description:
    "Returns a job at once (202). A pull of a model already being pulled returns that job. Interrupted pulls resume.",
  security: BEARER_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: PullRequestSchema } } } },
  responses: {
    202: { description: "Pull started", content: { "application/json": { schema: PullAcceptedSchema } } },
    400: problem("Not an org/name id, or bad options"),
    409: problem("The model (or one whose id differs only in case) is being pulled, deleted or verified"),
  },
});

const jobParams = z.object({ job: z.string().uuid() });

const progressRoute = createRoute({
  method: "get",
  path: "/v1/models/pull/{job}",
  tags: ["models"],
  summary: "Progress of a pull (SSE)",
  description: "Server-sent events: `progress` every 250 ms while running (bytes, total, rate, eta_s), then one of " +
    "`done`, `error`, `cancelled`, and the stream ends. With `Accept: application/json`, one snapshot instead.",
  security: BEARER_SECURITY,
  request: { params: jobParams },
  responses: {
    200: {
      description: "Progress",
      content: {
        "text/event-stream": {
          schema: sseEventSchema({
            events: ["progress", "done", "error", "cancelled"],
            data: { $ref: "#/components/schemas/PullProgress" },
          }),
        },
        "application/json": { schema: PullProgressSchema },
      },
    },
    404: problem("No such job"),
  },
});

const cancelRoute = createRoute({
  method: "delete",
  path: "/v1/models/pull/{job}",
  tags: ["models"],
  summary: "Cancel a pull",
  description: "Stops the pull; what was downloaded stays and a later pull resumes from it.",
  security: BEARER_SECURITY,
  request: { params: jobParams },
  responses: {
    200: {
      description: "Cancelled (or already finished)",
      content: { "application/json": { schema: PullProgressSchema } },
    },
    404: problem("No such job"),
  },
});

/** Paths under `/v1/models/` that are routes of their own, never a model id (ids are `org/name`). */
const OWN_PATHS = new Set(["pull"]);

/** Splits `/v1/models/<rest>` into a model id and, for file requests, a path. */
function parseModelPath(rest: string): { id: string; file?: string } {
  const parts = rest.split("/");
  const id = parseModelId(parts.slice(0, 2).join("/"), "id");
  if (parts.length === 2) return { id };
  if (parts[2] !== "files" || parts.length < 4) {
    throw new TabAgentError("not_found", `No route for /v1/models/${rest}`);
  }
  const file = parts.slice(3).join("/");
  const parsed = repoPathSchema.safeParse(file);
  if (!parsed.success) throw validationError("path", parsed.error.issues.map((i) => ({ ...i, path: ["path"] })));
  return { id, file };
}

function parseRange(header: string, size: number): { start: number; end: number } | null {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return null;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0) return null;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || start > end) return null;
  return { start, end };
}

async function serveFile(c: Context<HttpEnv>, deps: ModelRoutesDeps, id: string, path: string): Promise<Response> {
  const { cache } = deps.models;
  const name = path.split("/").pop()!;
  if (name === MANIFEST_FILE || /\.(partial|partial\.json|lock|tmp)$/.test(name)) {
    throw new TabAgentError("not_found", `No file ${path} in ${id}`);
  }
  const full = cache.filePath(id, path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(full);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new TabAgentError("not_found", `No file ${path} in ${id}`);
    throw error;
  }
  if (!info.isFile) throw new TabAgentError("not_found", `No file ${path} in ${id}`);
  const manifest = await cache.readManifest(id);
  // Only while the file is unchanged since it was hashed: a damaged file must not keep its ETag.
  const sha = trustedSha256(manifest?.files.find((f) => f.path === path), info);
  const etag = `"${sha ?? `${info.size.toString(16)}-${(info.mtime?.getTime() ?? 0).toString(16)}`}"`;
  const headers = new Headers({
    "accept-ranges": "bytes",
    "content-type": "application/octet-stream",
    etag,
  });
  if (sha) headers.set("x-linked-etag", etag);
  const size = info.size;
  let start = 0;
  let end = size - 1;
  let status = 200;
  const rangeHeader = c.req.header("range");
  const ifRange = c.req.header("if-range");
  if (rangeHeader && (ifRange === undefined || ifRange === etag)) {
    const range = parseRange(rangeHeader, size);
    if (!range) {
      headers.set("content-range", `bytes */${size}`);
      throw new TabAgentError("range_not_satisfiable", `Range ${rangeHeader} is outside ${size} bytes`, { size });
    }
    ({ start, end } = range);
    status = 206;
    headers.set("content-range", `bytes ${start}-${end}/${size}`);
  }
  const length = size === 0 ? 0 : end - start + 1;
  headers.set("content-length", String(length));
  if (c.req.method === "HEAD" || length === 0) return new Response(null, { status, headers });
  const file = await Deno.open(full);
  await file.seek(start, Deno.SeekMode.Start);
  let left = length;
  const body = new ReadableStream<Uint8Array>({
    type: "bytes",
    async pull(controller) {
      const chunk = new Uint8Array(Math.min(left, 1024 * 1024));
      const n = await file.read(chunk);
      if (n === null || n === 0) {
        file.close();
        controller.error(new Error(`${full} shrank while being served`));
        return;
      }
      left -= n;
      controller.enqueue(chunk.subarray(0, n));
      if (left === 0) {
        file.close();
        controller.close();
      }
    },
    cancel() {
      file.close();
    },
  });
  return new Response(body, { status, headers });
}

const encoder = new TextEncoder();

function terminalEvent(progress: PullProgress): string | null {
  const events: Partial<Record<PullProgress["state"], string>> = {
    done: "done",
    failed: "error",
    cancelled: "cancelled",
  };
  return events[progress.state] ?? null;
}

/**
 * A pull's progress as server-sent events. The stream is pulled: a snapshot is written only when
 * the client has taken the previous one, and then it is the latest, so a client that stops reading
 * holds one snapshot, not a queue of every update since.
 */
function progressEvents(job: PullJob, shutdown: AbortSignal | undefined): Response {
  let latest: PullProgress | null = job.progress();
  let wake: (() => void) | undefined;
  let stopped = false;
  const unsubscribe = job.subscribe((progress) => {
    latest = progress;
    wake?.();
  });
  const stop = () => {
    stopped = true;
    unsubscribe();
    wake?.();
  };
  shutdown?.addEventListener("abort", stop, { once: true });
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (latest === null && !stopped) await new Promise<void>((resolve) => wake = resolve);
      const progress = latest;
      latest = null;
      if (progress === null) {
        controller.close();
        return;
      }
      const terminal = terminalEvent(progress);
      controller.enqueue(encoder.encode(`event: ${terminal ?? "progress"}\ndata: ${JSON.stringify(progress)}\n\n`));
      if (terminal) {
        stop();
        controller.close();
      }
    },
    cancel: stop,
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" },
  });
}

/** Describes for OpenAPI the routes `modelRoutes` matches by hand (ids contain a slash). */
function documentIdRoutes(router: OpenAPIHono<HttpEnv>): void {
  const idParams = z.object({
    org: z.string().regex(MODEL_ID_SEGMENT_PATTERN).openapi({ example: "Qwen" }),
    name: z.string().regex(MODEL_ID_SEGMENT_PATTERN).openapi({ example: "Qwen2.5-0.5B-Instruct-GGUF" }),
  });
  router.openAPIRegistry.registerPath({
    method: "get",
    path: "/v1/models/{org}/{name}",
    tags: ["models"],
    summary: "One model",
    description: "Also reachable as `/v1/models/{org}%2F{name}`. 400 when the id is not `org/name`.",
    security: BEARER_SECURITY,
    request: { params: idParams },
    responses: {
      200: { description: "The model", content: { "application/json": { schema: ModelSchema } } },
      400: problem("Not an org/name id"),
      404: problem("Neither in the catalog nor in the cache"),
    },
  });
  router.openAPIRegistry.registerPath({
    method: "delete",
    path: "/v1/models/{org}/{name}",
    tags: ["models"],
    summary: "Delete a downloaded model",
    description: "Removes its folder from the cache. 409 while it is being pulled.",
    security: BEARER_SECURITY,
    request: { params: idParams },
    responses: {
      200: {
        description: "Deleted",
        content: { "application/json": { schema: z.object({ id: z.string(), deleted: z.literal(true) }) } },
      },
      404: problem("Not in the cache"),
      409: problem("Being pulled"),
    },
  });
  router.openAPIRegistry.registerPath({
    method: "get",
    path: "/v1/models/{org}/{name}/files/{path}",
    tags: ["models"],
    summary: "Download a model file (Range supported)",
    description: "`path` may contain slashes (e.g. `onnx/model.onnx`). Single byte ranges, `If-Range`, HEAD. " +
      "ETag is the file's sha256 when the manifest knows it.",
    security: BEARER_SECURITY,
    request: { params: idParams.extend({ path: repoPathSchema.meta({ example: "onnx/model.onnx" }) }) },
    responses: {
      200: { description: "The file", content: { "application/octet-stream": { schema: z.string() } } },
      206: { description: "A byte range", content: { "application/octet-stream": { schema: z.string() } } },
      400: problem("Unsafe path"),
      404: problem("No such file"),
      416: problem("Range not satisfiable"),
    },
  });
  router.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/models/{org}/{name}/verify",
    tags: ["models"],
    summary: "Re-hash every file of a downloaded model against its manifest",
    description: "Reads every byte. Damaged or missing files are listed, and the model is marked incomplete so the " +
      "next pull fetches them again. 409 while the model is being pulled or deleted.",
    security: BEARER_SECURITY,
    request: { params: idParams },
    responses: {
      200: { description: "What was found", content: { "application/json": { schema: VerificationSchema } } },
      404: problem("No manifest to verify against"),
      409: problem("Being pulled or deleted"),
    },
  });
}

/**
 * The models resource.
 *
 * @example
 * ```ts
 * const router = modelRoutes({ models, isLoaded: (id) => inference.isLoaded(id) });
 * ```
 */
export function modelRoutes(deps: ModelRoutesDeps) {
  const { models } = deps;
  const live = { isLoaded: deps.isLoaded, isPulling: (id: string) => models.jobs.isPulling(id) };
  const router = createRouter();

  router.openapi(listRoute, async (c) => {
    const query = c.req.valid("query");
    let data = await listModels(models.cache, models.catalog, live);
    if (query.task) data = data.filter((m) => m.task === query.task);
    if (query.downloaded) data = data.filter((m) => m.downloaded === (query.downloaded === "true"));
    return c.json({ object: "list" as const, data }, 200);
  });

  router.openapi(pullRoute, (c) => {
    const body = c.req.valid("json");
    const job = models.jobs.start({
      id: body.model,
      revision: body.revision,
      files: body.files,
      quant: body.quant,
      connections: body.connections,
    });
    return c.json({
      job: job.id,
      model: body.model,
      state: job.progress().state,
      progress_url: `/v1/models/pull/${job.id}`,
    }, 202);
  });

  router.openapi(progressRoute, (c) => {
    const job = models.jobs.get(c.req.valid("param").job);
    if (!job) throw new TabAgentError("not_found", "No such pull job (finished jobs are kept for a while only)");
    const accept = c.req.header("accept") ?? "";
    if (accept.includes("application/json") && !accept.includes("text/event-stream")) {
      return c.json(job.progress() as z.infer<typeof PullProgressSchema>, 200);
    }
    return progressEvents(job, deps.shutdownSignal);
  });

  router.openapi(cancelRoute, async (c) => {
    const job = models.jobs.get(c.req.valid("param").job);
    if (!job) throw new TabAgentError("not_found", "No such pull job");
    job.cancel();
    await job.done;
    return c.json(job.progress() as z.infer<typeof PullProgressSchema>, 200);
  });

  modelIdHandlers(router, deps, live);
  return router;
}

/** The routes under `/v1/models/{id}`: ids contain a slash, so they are matched by hand (and described by documentIdRoutes). */
function modelIdHandlers(
  router: ReturnType<typeof createRouter>,
  deps: ModelRoutesDeps,
  live: Parameters<typeof findModel>[3],
): void {
  const { models } = deps;
  documentIdRoutes(router);
  router.post("/v1/models/:rest{.+}/verify", async (c) => {
    const { id, file } = parseModelPath(c.req.param("rest"));
    if (file !== undefined) {
      throw new TabAgentError("not_found", `No route for /v1/models/${c.req.param("rest")}/verify`);
    }
    const release = models.jobs.reserve(id, "verified");
    try {
      return c.json(VerificationSchema.parse(await verifyModel(models.cache, id)));
    } finally {
      release();
    }
  });

  router.on(["GET", "HEAD"], "/v1/models/:rest{.+}", async (c) => {
    // `/v1/models/pull` is a route of its own (POST), not a model id: a GET there is a 405.
    if (OWN_PATHS.has(c.req.param("rest"))) return c.notFound();
    const { id, file } = parseModelPath(c.req.param("rest"));
    if (file !== undefined) return await serveFile(c, deps, id, file);
    const model = await findModel(models.cache, models.catalog, id, live);
    if (!model) throw new TabAgentError("not_found", `No model ${id} in the catalog or the cache`);
    return c.json(model);
  });

  router.delete("/v1/models/:rest{.+}", async (c) => {
    if (OWN_PATHS.has(c.req.param("rest"))) return c.notFound();
    const { id, file } = parseModelPath(c.req.param("rest"));
    if (file !== undefined) {
      throw new TabAgentError("method_not_allowed", "Files are deleted with their model", {
        allow: ["GET", "HEAD"],
      });
    }
    // Held from the check to the removal: a pull cannot start while the unload is awaited.
    const release = models.jobs.reserve(id, "deleted");
    try {
      await deps.unload?.(id);
      if (!(await models.cache.delete(id))) throw new TabAgentError("not_found", `${id} is not in the cache`);
    } finally {
      release();
    }
    return c.json({ id, deleted: true as const });
  });
}
