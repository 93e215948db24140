/**
 * `POST /v1/tokenize`: token counts with a model's own tokenizer, and its context size, so a
 * client (the side panel's "ask about this page") can tell whether text fits before sending it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { TabAgentError } from "../errors/mod.ts";
import type { ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import { BEARER_SECURITY, createRouter } from "./router.ts";

/** Most texts one call may count. */
export const TOKENIZE_MAX_INPUTS = 1024;

/** `POST /v1/tokenize` body. */
export const TokenizeRequestSchema = z.object({
  model: z.string().min(1).max(200),
  input: z.union([z.string(), z.array(z.string()).min(1).max(TOKENIZE_MAX_INPUTS)]),
}).openapi("TokenizeRequest");

const TokenizeResponseSchema = z.object({
  model: z.string(),
  counts: z.array(z.number().int()).describe("Tokens per input, in order"),
  context_size: z.number().int().describe("The context the model is loaded with (prompt and reply together)"),
}).openapi("TokenizeResponse");

const route = createRoute({
  method: "post",
  path: "/v1/tokenize",
  tags: ["inference"],
  summary: "Count tokens with a chat model's own tokenizer",
  security: BEARER_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: TokenizeRequestSchema } } } },
  responses: {
    200: { description: "Counts", content: { "application/json": { schema: TokenizeResponseSchema } } },
    400: { description: "Not a text model", content: { "application/problem+json": { schema: z.object({}) } } },
  },
});

/** The tokenize resource. */
export function tokenizeRoutes(deps: { orchestrator: ModelOrchestrator }) {
  // Like the other inference routes: an unknown model is 404, a busy or unready one 409/429/503.
  return createRouter({ statuses: [404, 409, 429, 503] }).openapi(route, async (c) => {
    const body = c.req.valid("json");
    const handle = await deps.orchestrator.acquire(body.model);
    try {
      const llama = handle.llama;
      if (!llama) throw new TabAgentError("bad_request", `'${body.model}' is not a text generation model`);
      const counts = [body.input].flat().map((text) => llama.countTokens(text));
      return c.json({ model: body.model, counts, context_size: llama.contextSize }, 200);
    } finally {
      handle.release();
    }
  });
}
