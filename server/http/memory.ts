/**
 * `/v1/memory/*`: conversations, messages, search, hybrid query, stats, JSONL export/import, backup and restore,
 * over the memory component's {@link MemoryClient}. Chat completions write through the same client.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { toJSONSchema } from "zod";
import { MEMORY_MAX_MESSAGES_PER_APPEND, MEMORY_MAX_PAGE_SIZE, MEMORY_MAX_SEARCH_LIMIT } from "../config/mod.ts";
import { TabAgentError, validationError } from "../errors/mod.ts";
import { ABSOLUTE_PATH_PATTERN } from "../fs/mod.ts";
import {
  BackupManifestSchema as ManifestSchema,
  ConversationPatchSchema,
  ConversationSchema,
  CURSOR_PATTERN,
  ImportLineSchema,
  ImportResultSchema,
  type MemoryClient,
  MemoryStatsSchema as StatsSchema,
  MessageSchema,
  NewConversationSchema,
  NewMessageSchema,
  pageSchema as pageOf,
  type SearchBodySource,
  SearchHitSchema,
} from "../memory/mod.ts";
import { MemoryQueryResultSchema, MemoryQuerySchema } from "../memory/query/mod.ts";
import { DocumentSchema, EntitySchema, FactSchema, NewDocumentSchema } from "../memory/types.ts";
import { NewToolResultSchema, ToolResultSchema } from "../memory/types.ts";
import { GraphPathSchema, MAX_GRAPH_DEPTH, MAX_PATH_LENGTH, NeighborhoodSchema } from "../memory/weaver/graph.ts";
import { ConsolidateOptionsSchema, ConsolidationSchema, WeaverStatusSchema } from "../memory/weaver/schema.ts";
import { defined } from "../memory/client.ts";
import { addFastRoute } from "./_fast_routes.ts";
import { problem } from "./problem.ts";
import { BEARER_SECURITY, createRouter, streamedResponse } from "./router.ts";

const TAG = "memory";
const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
const PROBLEM_DESCRIPTIONS = new Map([
  [400, "Invalid input; `errors` names each field"],
  [404, "Unknown id"],
  [409, "Already exists, or a restore is already running"],
  [413, "Content too large"],
  [422, "Backup damaged"],
]);
const problems = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, problem(PROBLEM_DESCRIPTIONS.get(status) ?? "Error")]));

/** One exported record: its `record` kind and that kind's fields (checked by the import itself). */
const ImportRecordSchema = z.object({
  record: z.string().min(1).max(64).describe('"conversation", "message", "fact", …'),
}).passthrough().openapi("ImportRecord");
/** Records one JSON-array import may hold (the body limit applies too). */
const MEMORY_IMPORT_MAX_JSON_RECORDS = 100_000;
const ImportRecordsSchema = z.array(ImportRecordSchema).max(MEMORY_IMPORT_MAX_JSON_RECORDS);
/** One line of an export as JSON Schema: the import's own schema, so a client building records from it sends valid ones. */
const IMPORT_LINE_JSON_SCHEMA = (() => {
  const { $schema: _draft, ...schema } = toJSONSchema(ImportLineSchema, { io: "input", unrepresentable: "any" });
  // A plain JSON Schema object: typed as an empty record, which the route's schema type accepts.
  return schema as Record<never, never>;
})();
const IMPORT_RECORDS_JSON_SCHEMA = {
  type: "array" as const,
  minItems: 1,
  maxItems: MEMORY_IMPORT_MAX_JSON_RECORDS,
  description: "The export's records as one JSON array",
  items: IMPORT_LINE_JSON_SCHEMA,
};
const PageQuery = z.object({
  cursor: z.string().regex(CURSOR_PATTERN, "not a cursor from this list").optional().describe(
    "A next_cursor from the previous page",
  ),
  limit: z.coerce.number().int().min(1).max(MEMORY_MAX_PAGE_SIZE).optional(),
});
const IdParam = z.object({ id: z.string().min(1).max(200) });
/** `GET /v1/memory/search`'s query, for its Hono route and its fast path alike. */
const SearchQuery = z.object({
  q: z.string().min(1).max(1_000).describe("Words to find"),
  match: z.enum(["all", "any"]).optional().describe("all (default): every word must match; any: any word"),
  limit: z.coerce.number().int().min(1).max(MEMORY_MAX_SEARCH_LIMIT).optional(),
  conversation_id: z.string().min(1).max(200).optional(),
});
/** An absolute path on the server's OS (as a pattern, so the document states it). */
const absolutePath = z.string().min(1).max(4096).regex(ABSOLUTE_PATH_PATTERN, "must be an absolute path");

const base = { tags: [TAG], security: BEARER_SECURITY };
const routes = {
  createConversation: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/conversations",
    summary: "Create a conversation",
    // Optional: no body creates an untitled conversation.
    request: { body: { required: false, content: { "application/json": { schema: NewConversationSchema } } } },
    responses: { 201: json(ConversationSchema, "Created"), ...problems(400, 409) },
  }),
  listConversations: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/conversations",
    summary: "List conversations, most recently active first",
    request: { query: PageQuery },
    responses: { 200: json(pageOf(ConversationSchema, "ConversationPage"), "A page"), ...problems(400) },
  }),
  getConversation: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/conversations/{id}",
    summary: "Get a conversation",
    request: { params: IdParam },
    responses: { 200: json(ConversationSchema, "The conversation"), ...problems(404) },
  }),
  updateConversation: createRoute({
    ...base,
    method: "patch",
    path: "/v1/memory/conversations/{id}",
    summary: "Rename a conversation or replace its metadata (null clears)",
    request: {
      params: IdParam,
      // Optional: no body changes nothing.
      body: { required: false, content: { "application/json": { schema: ConversationPatchSchema } } },
    },
    responses: { 200: json(ConversationSchema, "Updated"), ...problems(400, 404) },
  }),
  deleteConversation: createRoute({
    ...base,
    method: "delete",
    path: "/v1/memory/conversations/{id}",
    summary: "Delete a conversation, its messages, summaries and embeddings",
    request: { params: IdParam },
    responses: { 204: { description: "Deleted" }, ...problems(404) },
  }),
  appendMessages: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/conversations/{id}/messages",
    summary: "Append messages (all or none)",
    request: {
      params: IdParam,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.object({ messages: z.array(NewMessageSchema).min(1).max(MEMORY_MAX_MESSAGES_PER_APPEND) }),
          },
        },
      },
    },
    responses: {
      201: json(z.object({ items: z.array(MessageSchema) }), "Stored, with ids"),
      ...problems(400, 404, 413),
    },
  }),
  listMessages: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/conversations/{id}/messages",
    summary: "List a conversation's messages, oldest first",
    request: { params: IdParam, query: PageQuery },
    responses: { 200: json(pageOf(MessageSchema, "MessagePage"), "A page"), ...problems(400, 404) },
  }),
  getMessage: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/messages/{id}",
    summary: "Get a message",
    request: { params: IdParam },
    responses: { 200: json(MessageSchema, "The message"), ...problems(404) },
  }),
  search: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/search",
    summary: "Full-text search over messages (FTS5, BM25)",
    request: { query: SearchQuery },
    responses: { 200: json(z.object({ hits: z.array(SearchHitSchema) }), "Best first"), ...problems(400, 404) },
  }),
  graphEntities: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/graph/entities",
    summary: "Knowledge graph entities, page by page",
    request: { query: PageQuery.extend({ type: z.string().min(1).max(1_000).optional() }) },
    responses: { 200: json(pageOf(EntitySchema, "GraphEntityPage"), "Entities"), ...problems(400) },
  }),
  graphEntity: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/graph/entities/{id}",
    summary: "One entity",
    request: { params: IdParam },
    responses: { 200: json(EntitySchema, "The entity"), ...problems(404) },
  }),
  graphNeighbors: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/graph/entities/{id}/neighbors",
    summary: "Entities within `depth` hops, with the relations among them (recursive CTE)",
    request: {
      params: IdParam,
      query: z.object({ depth: z.coerce.number().int().min(1).max(MAX_GRAPH_DEPTH).optional() }),
    },
    responses: { 200: json(NeighborhoodSchema, "The neighbourhood"), ...problems(400, 404) },
  }),
  facts: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/facts",
    summary: "Facts with their provenance and validity, page by page",
    description: "Each fact cites the message that said it (`source_kind` message, `source_id`, `conversation_id`) " +
      "and is valid from that message's time until a newer fact contradicts it (`valid_to`, `superseded_by`). " +
      "`as_of` answers what was true at that time; `current=true` only what is true now.",
    request: {
      query: PageQuery.extend({
        entity_id: z.string().min(1).max(200).optional(),
        as_of: z.iso.datetime({ offset: true }).optional().describe("ISO 8601 time, e.g. 2026-01-31T12:00:00Z"),
        current: z.enum(["true", "false"]).optional().describe("true: only facts not retired"),
      }),
    },
    responses: { 200: json(pageOf(FactSchema, "GraphFactPage"), "Facts"), ...problems(400, 404) },
  }),
  graphPath: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/graph/path",
    summary: "The shortest path between two entities over current relations (recursive CTE)",
    request: {
      query: z.object({
        from: z.string().min(1).max(200).describe("Entity id"),
        to: z.string().min(1).max(200).describe("Entity id"),
        max_depth: z.coerce.number().int().min(1).max(MAX_PATH_LENGTH).optional().describe("Most hops (default 4)"),
      }),
    },
    responses: {
      200: json(GraphPathSchema, "The path; found is false when none is that short"),
      ...problems(400, 404),
    },
  }),
  weaverStatus: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/graph/status",
    summary: "The knowledge-graph weaver: mode (rules, model, off), queue and counts",
    responses: { 200: json(WeaverStatusSchema, "Status") },
  }),
  weave: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/graph/weave",
    summary: "Weave every queued message into the graph now (it also runs in the background)",
    responses: { 200: json(WeaverStatusSchema, "Status afterwards") },
  }),
  consolidate: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/graph/consolidate",
    summary: "Merge duplicate entities: same normalised name, then similar name embeddings",
    request: {
      body: { required: false, content: { "application/json": { schema: ConsolidateOptionsSchema } } },
    },
    responses: {
      200: json(ConsolidationSchema, "What was merged"),
      ...problems(400),
      404: problem("The embedding model that compares entities is not downloaded"),
    },
  }),
  addDocument: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/documents",
    summary: "Keep a page the user brought into a chat (text in chunks, embedded in the background)",
    description: "The same page (URL and text) brought into the same conversation again is kept once: the " +
      "existing document is answered.",
    request: { body: { content: { "application/json": { schema: NewDocumentSchema } }, required: true } },
    responses: { 201: json(DocumentSchema, "The document"), ...problems(400, 404, 413) },
  }),
  getDocument: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/documents/{id}",
    summary: "A kept page",
    request: { params: IdParam },
    responses: { 200: json(DocumentSchema, "The document"), ...problems(404) },
  }),
  deleteDocument: createRoute({
    ...base,
    method: "delete",
    path: "/v1/memory/documents/{id}",
    summary: "Forget a page and its chunks",
    request: { params: IdParam },
    responses: { 204: { description: "Deleted" }, ...problems(404) },
  }),
  recordToolResult: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/tool-results",
    summary: "Record a tool call's outcome (embedded in the background, found by POST /v1/memory/query)",
    request: { body: { content: { "application/json": { schema: NewToolResultSchema } }, required: true } },
    responses: { 201: json(ToolResultSchema, "The tool result"), ...problems(400, 413) },
  }),
  getToolResult: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/tool-results/{id}",
    summary: "A recorded tool result",
    request: { params: IdParam },
    responses: { 200: json(ToolResultSchema, "The tool result"), ...problems(404) },
  }),
  query: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/query",
    summary: "Hybrid search: keywords (BM25) and meaning (vectors), fused, filtered and ranked",
    description: "Reciprocal rank fusion of a full-text list and a vector kNN list (all-MiniLM-L6-v2 unless " +
      "`model` says otherwise), with filters (stores, conversation, roles, time range, tags), recency and " +
      "importance ranking and MMR diversity. `GET /v1/memory/search` stays keyword-only.",
    request: { body: { content: { "application/json": { schema: MemoryQuerySchema } }, required: true } },
    responses: { 200: json(MemoryQueryResultSchema, "Best first"), ...problems(400) },
  }),
  stats: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/stats",
    summary: "Counts, store sizes and schema versions",
    responses: { 200: json(StatsSchema, "Stats") },
  }),
  export: createRoute({
    ...base,
    method: "get",
    path: "/v1/memory/export",
    summary: "Export memory (or one conversation) as JSON lines",
    request: { query: z.object({ conversation_id: z.string().min(1).max(200).optional() }) },
    responses: {
      200: {
        description: 'One JSON object a line, each with a `record` kind ("conversation", "message", …)',
        content: { "application/x-ndjson": { schema: z.string() } },
      },
      ...problems(404),
    },
  }),
  import: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/import",
    summary: "Import JSON lines from an export; what already exists is skipped",
    request: {
      body: {
        required: true,
        content: {
          "application/x-ndjson": { schema: z.string().describe("JSON lines as GET /v1/memory/export writes them") },
          // JSON lines have no serializer in generic clients (schemathesis, OpenAPI generators): the
          // same records as one JSON array. A plain JSON Schema, not zod: a zod schema here would be
          // checked against NDJSON bodies too (the body is required); the handler parses JSON bodies
          // with ImportRecordsSchema itself.
          "application/json": { schema: IMPORT_RECORDS_JSON_SCHEMA },
        },
      },
    },
    responses: { 200: json(ImportResultSchema, "What was imported and skipped"), ...problems(400, 413) },
  }),
  backup: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/backup",
    summary: "Write a consistent backup of all seven stores with a checksummed manifest",
    request: {
      body: {
        required: false,
        content: {
          "application/json": {
            schema: z.object({
              dir: absolutePath.optional().describe("A new or empty folder; default <data-dir>/backups/<time>"),
            }),
          },
        },
      },
    },
    responses: {
      201: json(ManifestSchema.extend({ dir: z.string() }), "Written"),
      ...problems(400, 409),
    },
  }),
  restore: createRoute({
    ...base,
    method: "post",
    path: "/v1/memory/restore",
    summary: "Verify a backup and swap it in for the live stores",
    request: {
      body: { required: true, content: { "application/json": { schema: z.object({ dir: absolutePath }) } } },
    },
    responses: {
      200: json(ManifestSchema, "Restored"),
      ...problems(400, 409, 422),
      404: problem("No backup in that folder (no manifest.json)"),
    },
  }),
};

/**
 * The memory resource.
 *
 * @example
 * ```ts
 * routers.push(memoryRoutes({ memory: component.memory, backupDir: `${config.dataDir}/backups` }));
 * ```
 */
export function memoryRoutes(options: { memory: MemoryClient; backupDir: string }) {
  const router = createRouter({ statuses: [503] });
  conversationHandlers(router, options.memory);
  knowledgeHandlers(router, options.memory);
  transferHandlers(router, options.memory, options.backupDir);
  return router;
}

type MemoryRouter = ReturnType<typeof createRouter>;

/**
 * A 200 whose JSON body is already built (the route's declared schema, encoded elsewhere). Only
 * `content-type`, as `c.json` sends: see requestContext.
 */
function jsonBytesResponse(body: Uint8Array<ArrayBuffer>): Response {
  return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
}

/**
 * `GET /v1/memory/search`'s answer to a validated query: the body built in the search worker where
 * the memory can (LocalMemory: see SearchBodySource), else the hits encoded here. The memory is
 * asked each time: the component's client changes when memory starts or is restored.
 */
function searchResponse(memory: MemoryClient, query: z.infer<typeof SearchQuery>): Promise<Response> {
  const options = { query: query.q, limit: query.limit, conversationId: query.conversation_id, match: query.match };
  const body = (memory as Partial<SearchBodySource>).searchMessagesBody;
  // `then`, not `async`: one promise less per search on the event loop (see SearchPool.body).
  if (body) return body.call(memory, options).then(jsonBytesResponse);
  return memory.searchMessages(options).then((hits) =>
    jsonBytesResponse(new TextEncoder().encode(JSON.stringify({ hits })))
  );
}

/** Conversations and their messages, and search over them. */
function conversationHandlers(router: MemoryRouter, memory: MemoryClient): void {
  router.openapi(routes.createConversation, async (c) => {
    return c.json(await memory.createConversation(c.req.valid("json")), 201);
  });
  router.openapi(
    routes.listConversations,
    async (c) => c.json(await memory.listConversations(c.req.valid("query")), 200),
  );
  router.openapi(
    routes.getConversation,
    async (c) => c.json(await memory.getConversation(c.req.valid("param").id), 200),
  );
  router.openapi(routes.updateConversation, async (c) => {
    return c.json(await memory.updateConversation(c.req.valid("param").id, c.req.valid("json")), 200);
  });
  router.openapi(routes.deleteConversation, async (c) => {
    await memory.deleteConversation(c.req.valid("param").id);
    return c.body(null, 204);
  });
  router.openapi(routes.appendMessages, async (c) => {
    const items = await memory.appendMessages(c.req.valid("param").id, c.req.valid("json").messages);
    return c.json({ items }, 201);
  });
  router.openapi(routes.listMessages, async (c) => {
    return c.json(await memory.listMessages(c.req.valid("param").id, c.req.valid("query")), 200);
  });
  router.openapi(routes.getMessage, async (c) => c.json(await memory.getMessage(c.req.valid("param").id), 200));
  // Typed as the route's JSON answer: the body is the declared schema, encoded in the worker.
  router.openapi(routes.search, async (c) => await searchResponse(memory, c.req.valid("query")) as never);
  // Searches come in bursts, with health probes among them: the usual requests skip Hono.
  addFastRoute(router, {
    path: routes.search.path,
    query: SearchQuery,
    serve: (query) => searchResponse(memory, query),
  });
}

/** The knowledge graph, documents, hybrid queries and stats. */
function knowledgeHandlers(router: MemoryRouter, memory: MemoryClient): void {
  router.openapi(routes.graphEntities, async (c) => c.json(await memory.listEntities(c.req.valid("query")), 200));
  router.openapi(routes.graphEntity, async (c) => c.json(await memory.getEntity(c.req.valid("param").id), 200));
  router.openapi(routes.graphNeighbors, async (c) => {
    const neighborhood = await memory.entityNeighbors(c.req.valid("param").id, c.req.valid("query").depth ?? 1);
    return c.json(neighborhood, 200);
  });
  router.openapi(routes.facts, async (c) => {
    const { entity_id, as_of, current, ...page } = c.req.valid("query");
    const options = {
      ...page,
      entityId: entity_id,
      asOf: as_of,
      current: current === undefined ? undefined : current === "true",
    };
    return c.json(await memory.listFacts(defined(options)), 200);
  });
  router.openapi(routes.graphPath, async (c) => {
    const { from, to, max_depth } = c.req.valid("query");
    return c.json(await memory.graphPath(from, to, max_depth), 200);
  });
  router.openapi(routes.weaverStatus, async (c) => c.json(await memory.weaverStatus(), 200));
  router.openapi(routes.weave, async (c) => c.json(await memory.weavePending(), 200));
  router.openapi(routes.consolidate, async (c) => {
    let options = {};
    if ((c.req.header("content-length") ?? "0") !== "0" || c.req.header("transfer-encoding")) {
      options = c.req.valid("json") ?? {};
    }
    return c.json(await memory.consolidateEntities(options), 200);
  });
  router.openapi(routes.addDocument, async (c) => c.json(await memory.addDocument(c.req.valid("json")), 201));
  router.openapi(routes.getDocument, async (c) => c.json(await memory.getDocument(c.req.valid("param").id), 200));
  router.openapi(routes.deleteDocument, async (c) => {
    await memory.deleteDocument(c.req.valid("param").id);
    return c.body(null, 204);
  });
  router.openapi(routes.query, async (c) => c.json(await memory.query(c.req.valid("json")), 200));
  router.openapi(routes.recordToolResult, async (c) => c.json(await memory.recordToolResult(c.req.valid("json")), 201));
  router.openapi(routes.getToolResult, async (c) => c.json(await memory.getToolResult(c.req.valid("param").id), 200));
  router.openapi(routes.stats, async (c) => c.json(await memory.stats(), 200));
}

/** Export, import, backup and restore. */
function transferHandlers(router: MemoryRouter, memory: MemoryClient, backupDir: string): void {
  router.openapi(routes.export, async (c) => {
    const { conversation_id } = c.req.valid("query");
    const lines = memory.exportJsonl({ conversationId: conversation_id })[Symbol.asyncIterator]();
    // Read the first line before answering, so an unknown conversation is a 404, not a broken stream.
    const first = await lines.next();
    // A stream has no zod type to check against: the route's schema documents it as text.
    return streamedResponse(
      new Response(ndjsonBody(first, lines), {
        headers: {
          "content-type": "application/x-ndjson",
          "content-disposition": 'attachment; filename="tabagent-memory.jsonl"',
        },
      }),
    );
  });
  router.openapi(routes.import, async (c) => c.json(await memory.importJsonl(await importSource(c.req.raw)), 200));
  router.openapi(routes.backup, async (c) => {
    let dir: string | undefined;
    if ((c.req.header("content-length") ?? "0") !== "0" || c.req.header("transfer-encoding")) {
      dir = c.req.valid("json")?.dir;
    }
    dir ??= `${backupDir}/${new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z")}`;
    const manifest = await memory.backup(dir);
    return c.json({ ...manifest, dir }, 201);
  });
  router.openapi(routes.restore, async (c) => c.json(await memory.restore(c.req.valid("json").dir), 200));
}

/** The export's lines as a byte stream, starting with the `first` already read. */
function ndjsonBody(first: IteratorResult<string>, lines: AsyncIterator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (first.done) controller.close();
      else controller.enqueue(encoder.encode(first.value + "\n"));
    },
    async pull(controller) {
      const next = await lines.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value + "\n"));
    },
    async cancel() {
      await lines.return?.();
    },
  });
}

/**
 * What an import request carries: JSON lines stay a stream (read line by line as they arrive, so a
 * 64 MiB import is never held whole); a JSON array (for generic clients) is parsed and re-joined.
 */
async function importSource(request: Request): Promise<string | ReadableStream<Uint8Array>> {
  const empty = () =>
    new TabAgentError("validation_failed", "Invalid import: the body is empty", {
      errors: [{ field: "", message: "expected JSON lines" }],
    });
  if (/^application\/json\b/i.test(request.headers.get("content-type") ?? "")) {
    const records = ImportRecordsSchema.safeParse(await request.json().catch(() => undefined));
    if (!records.success) throw validationError("import", records.error.issues);
    const text = records.data.map((record) => JSON.stringify(record)).join("\n");
    if (text.trim() === "") throw empty();
    return text;
  }
  if (request.body === null || request.headers.get("content-length") === "0") throw empty();
  return request.body.pipeThrough(nonEmpty(empty));
}

/** Passes bytes through; fails with `error()` at the end when they were all white space. */
function nonEmpty(error: () => TabAgentError): TransformStream<Uint8Array, Uint8Array> {
  let seen = false;
  return new TransformStream({
    transform(chunk, controller) {
      seen ||= chunk.some((byte) => byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09);
      controller.enqueue(chunk);
    },
    flush(controller) {
      if (!seen) controller.error(error());
    },
  });
}
