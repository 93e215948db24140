/** `POST /v1/completions`: OpenAI's legacy text completion over a GGUF model (no chat template). */
import { createRoute, z } from "@hono/zod-openapi";
import { TabAgentError } from "../errors/mod.ts";
import type { ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import {
  completionId,
  keepAliveOf,
  nowSeconds,
  samplingFields,
  SYSTEM_FINGERPRINT,
  toSampling,
  usageOf,
  UsageSchema,
} from "./_openai.ts";
import { sseResponse } from "./_sse.ts";
import { BEARER_SECURITY, createRouter } from "./router.ts";

/** OpenAI's default max_tokens for completions. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** `POST /v1/completions` body. */
export const CompletionRequestSchema = z.object({
  model: z.string().min(1).max(200),
  prompt: z.union([z.string(), z.array(z.string()).length(1)]).describe("One prompt (arrays of one are accepted)"),
  ...samplingFields,
  echo: z.boolean().optional(),
  user: z.string().optional(),
}).openapi("CompletionRequest");

const CompletionSchema = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.number(),
  model: z.string(),
  system_fingerprint: z.string(),
  choices: z.array(z.object({
    text: z.string(),
    index: z.number(),
    logprobs: z.null(),
    finish_reason: z.enum(["stop", "length"]),
  })),
  usage: UsageSchema,
}).openapi("Completion");

const route = createRoute({
  method: "post",
  path: "/v1/completions",
  tags: ["inference"],
  summary: "Text completion (OpenAI-compatible, legacy)",
  security: BEARER_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: CompletionRequestSchema } } } },
  responses: {
    200: {
      description: "The completion, or its event stream",
      content: { "application/json": { schema: CompletionSchema }, "text/event-stream": { schema: z.string() } },
    },
  },
});

/** The completions resource. */
export function completionRoutes(deps: { orchestrator: ModelOrchestrator; shutdownSignal?: AbortSignal }) {
  return createRouter({ statuses: [404, 409, 429, 503] }).openapi(route, async (c) => {
    const body = c.req.valid("json");
    const prompt = [body.prompt].flat()[0];
    const handle = await deps.orchestrator.acquire(body.model, { keepAliveMs: keepAliveOf(body) });
    let releaseLater = false;
    try {
      const llama = handle.llama;
      if (!llama) throw new TabAgentError("bad_request", `The model '${body.model}' is an embedding model`);
      const prepared = llama.prepareCompletion(
        prompt,
        toSampling(body, body.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS),
      );
      const base = {
        id: completionId("cmpl"),
        created: nowSeconds(),
        model: body.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
      };
      const echo = body.echo ? prompt : "";
      if (!body.stream) {
        const result = await handle.run(
          { priority: "interactive", signal: c.req.raw.signal },
          (lease) => llama.generateCompletion(prepared, { signal: lease.signal }),
        );
        return c.json({
          ...base,
          object: "text_completion" as const,
          choices: [{
            text: echo + result.text,
            index: 0,
            logprobs: null,
            finish_reason: result.finishReason as "stop",
          }],
          usage: usageOf(result),
        }, 200);
      }
      const includeUsage = body.stream_options?.include_usage === true;
      releaseLater = true;
      const signals = [c.req.raw.signal, ...(deps.shutdownSignal ? [deps.shutdownSignal] : [])];
      return sseResponse(signals, async (writer, signal) => {
        try {
          const chunk = (text: string, finish: string | null) => ({
            ...base,
            object: "text_completion",
            choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
            ...(includeUsage ? { usage: null } : {}),
          });
          if (echo) writer.send(chunk(echo, null));
          const result = await handle.run(
            { priority: "interactive", signal },
            (lease) =>
              llama.generateCompletion(prepared, {
                signal: lease.signal,
                onText: (text) => writer.send(chunk(text, null)),
              }),
          );
          if (result.aborted) return;
          writer.send(chunk("", result.finishReason));
          if (includeUsage) writer.send({ ...base, object: "text_completion", choices: [], usage: usageOf(result) });
          writer.done();
        } finally {
          handle.release();
        }
      }) as never;
    } finally {
      if (!releaseLater) handle.release();
    }
  });
}
