/** `POST /v1/completions`: OpenAI's legacy text completion over a GGUF model (no chat template). */
import { mlChatCompletion } from "./_ml_chat.ts";
import type { MlService } from "../ml/mod.ts";
import { z } from "@hono/zod-openapi";
import type { ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import {
  completionBase,
  completionBaseFields,
  generationRoute,
  keepAliveOf,
  samplingFields,
  textChunkJson,
  toSampling,
  usageOf,
  UsageSchema,
} from "./_openai.ts";
import { answerWithTextModel } from "./_generation.ts";
import { createRouter } from "./router.ts";

/** OpenAI's default max_tokens for completions. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** `POST /v1/completions` body. */
export const CompletionRequestSchema = z.object({
  model: z.string().min(1).max(200),
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(1)]).describe("One prompt (arrays of one are accepted)"),
  ...samplingFields,
  echo: z.boolean().optional(),
  user: z.string().optional(),
}).openapi("CompletionRequest");

const CompletionSchema = z.object({
  ...completionBaseFields,
  object: z.literal("text_completion"),
  choices: z.array(z.object({
    text: z.string(),
    index: z.number(),
    logprobs: z.null(),
    finish_reason: z.enum(["stop", "length"]),
  })),
  usage: UsageSchema,
}).openapi("Completion");

const route = generationRoute({
  path: "/v1/completions",
  summary: "Text completion (OpenAI-compatible, legacy)",
  body: CompletionRequestSchema,
  result: CompletionSchema,
});

/** The completions resource. */
export function completionRoutes(
  deps: { orchestrator: ModelOrchestrator; shutdownSignal?: AbortSignal; ml?: MlService },
) {
  return createRouter({ statuses: [404, 409, 429, 503] }).openapi(route, async (c) => {
    const body = c.req.valid("json");
    const prompt = [body.prompt].flat()[0];
    if (deps.ml && await deps.ml.servesGeneration(body.model)) {
      return await mlChatCompletion(c, { ...body, messages: [] }, {
        ml: deps.ml,
        shutdownSignal: deps.shutdownSignal,
        kind: "text",
        prompt,
      }) as never;
    }
    return await answerWithTextModel(c, {
      orchestrator: deps.orchestrator,
      model: body.model,
      keepAliveMs: keepAliveOf(body),
      stream: body.stream === true,
      shutdownSignal: deps.shutdownSignal,
      // the echoed prompt's frame (if any), then the first generated text's
      headFrames: body.echo && prompt ? 2 : 1,
      answer: (llama, handle) => {
        const prepared = llama.prepareCompletion(
          prompt,
          toSampling(body, body.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS),
        );
        const base = completionBase("cmpl", body.model);
        const echo = body.echo ? prompt : "";
        const generate = (signal: AbortSignal, onText?: (text: string) => void) =>
          handle.run(
            { priority: "interactive", signal },
            (lease) => llama.generateCompletion(prepared, { signal: lease.signal, onText }),
          );
        return {
          json: async () => {
            const result = await generate(c.req.raw.signal);
            return {
              ...base,
              object: "text_completion" as const,
              choices: [{ text: echo + result.text, index: 0, logprobs: null, finish_reason: result.finishReason }],
              usage: usageOf(result),
            };
          },
          stream: async (writer, signal) => {
            const includeUsage = body.stream_options?.include_usage === true;
            const chunk = (text: string, finish: string | null) => ({
              ...base,
              object: "text_completion",
              choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
              ...(includeUsage ? { usage: null } : {}),
            });
            if (echo) writer.send(chunk(echo, null));
            const textFrame = textChunkJson((text) => chunk(text, null));
            const result = await generate(signal, (text) => writer.sendText(text, textFrame));
            if (result.aborted) return;
            writer.send(chunk("", result.finishReason));
            if (includeUsage) writer.send({ ...base, object: "text_completion", choices: [], usage: usageOf(result) });
            writer.done();
          },
        };
      },
    });
  });
}
