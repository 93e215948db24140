/**
 * `POST /v1/chat/completions`: OpenAI's chat API over local models, streamed (SSE) or not, with
 * tools, JSON-Schema output, `conversation_id` (both sides stored in memory) and `memory: true`
 * (relevant memories retrieved into the prompt). Routes never load models: the orchestrator does.
 */
import { z } from "@hono/zod-openapi";
import { CHAT_MAX_MESSAGES, CHAT_MAX_TOOLS } from "../config/mod.ts";
import type { ChatMessage, ChatRequest, GenerationResult } from "../inference/llama/mod.ts";
import type { ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import { completeTurnPipeline, type ConversationMemory, prepareTurnPipeline } from "../inference/pipeline/mod.ts";
import { answerWithTextModel } from "./_generation.ts";
import {
  type CompletionBase,
  completionBase,
  completionBaseFields,
  contentText,
  generationRoute,
  keepAliveOf,
  samplingFields,
  textChunkJson,
  toSampling,
  usageOf,
  UsageSchema,
} from "./_openai.ts";
import type { SseWriter } from "./_sse.ts";
import { mlChatCompletion } from "./_ml_chat.ts";
import type { MlService } from "../ml/mod.ts";
import { createRouter } from "./router.ts";

const ToolCallSchema = z.object({
  id: z.string(),
  type: z.literal("function"),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

/** Text parts only: the models served here read text (an image or audio part is refused with 400). */
const ContentSchema = z.union([
  z.string(),
  z.array(
    z.object({
      type: z.literal("text", { message: "only text parts are supported; send text" }),
      text: z.string(),
    }).passthrough(),
  ),
]).nullish();

const MessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: ContentSchema,
  name: z.string().max(64).optional(),
  tool_calls: z.array(ToolCallSchema).optional(),
  tool_call_id: z.string().optional(),
});

/** `POST /v1/chat/completions` body. */
export const ChatCompletionRequestSchema = z.object({
  model: z.string().min(1).max(200).describe("A model id from GET /v1/models, e.g. 'org/name'"),
  messages: z.array(MessageSchema).min(1).max(CHAT_MAX_MESSAGES),
  ...samplingFields,
  max_completion_tokens: z.number().int().min(1).nullish(),
  tools: z.array(z.object({
    type: z.literal("function"),
    function: z.object({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  })).max(CHAT_MAX_TOOLS).optional(),
  tool_choice: z.union([
    z.enum(["none", "auto", "required"]),
    z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
  ]).optional(),
  response_format: z.discriminatedUnion("type", [
    z.object({ type: z.literal("text") }),
    z.object({ type: z.literal("json_object") }),
    z.object({
      type: z.literal("json_schema"),
      json_schema: z.object({
        name: z.string().max(64),
        description: z.string().optional(),
        schema: z.record(z.string(), z.unknown()).optional(),
        strict: z.boolean().nullish(),
      }),
    }),
  ]).optional(),
  user: z.string().optional(),
  conversation_id: z.string().min(1).max(200).optional().describe(
    "TabAgent: store this turn (the new messages and the reply) in this memory conversation",
  ),
  memory: z.boolean().optional().describe("TabAgent: retrieve relevant memories into the prompt"),
}).openapi("ChatCompletionRequest");

const ChatCompletionSchema = z.object({
  ...completionBaseFields,
  object: z.literal("chat.completion"),
  choices: z.array(z.object({
    index: z.number(),
    message: z.object({
      role: z.literal("assistant"),
      content: z.string().nullable(),
      refusal: z.null(),
      tool_calls: z.array(ToolCallSchema).optional(),
    }),
    logprobs: z.null(),
    finish_reason: z.enum(["stop", "length", "tool_calls"]),
  })),
  usage: UsageSchema,
}).openapi("ChatCompletion");

const route = generationRoute({
  path: "/v1/chat/completions",
  summary: "Chat completion (OpenAI-compatible)",
  description: "With `stream: true` the answer is `text/event-stream` of `chat.completion.chunk` objects ending with " +
    "`data: [DONE]`; `stream_options.include_usage` adds a final chunk with `usage`. Unknown model → 404; a prompt " +
    "longer than the context → 400 `context_overflow`.",
  body: ChatCompletionRequestSchema,
  result: ChatCompletionSchema,
});

type Body = z.infer<typeof ChatCompletionRequestSchema>;

/** What the chat routes need. */
export interface ChatRoutesDeps {
  orchestrator: ModelOrchestrator;
  /** Optional: conversation_id and memory need it. */
  memory?: ConversationMemory;
  /** Aborts when the server stops: open streams end. */
  shutdownSignal?: AbortSignal;
  /** The Python ML service: Transformers (safetensors) models chat through it. */
  ml?: MlService;
}

function toMessages(body: Body): ChatMessage[] {
  return body.messages.map((m, i) => ({
    role: m.role,
    content: contentText(m.content, `messages.${i}.content`),
    ...(m.tool_calls ? { tool_calls: m.tool_calls } : {}),
    ...(m.tool_call_id ? { tool_call_id: m.tool_call_id } : {}),
    ...(m.name ? { name: m.name } : {}),
  }));
}

function toRequest(body: Body, messages: ChatMessage[]): ChatRequest {
  const format = body.response_format;
  return {
    ...toSampling(body, body.max_completion_tokens ?? body.max_tokens),
    messages,
    tools: body.tools?.map((t) => ({
      name: t.function.name,
      description: t.function.description,
      parameters: t.function.parameters,
    })),
    toolChoice: typeof body.tool_choice === "object" ? { name: body.tool_choice.function.name } : body.tool_choice,
    jsonSchema: format?.type === "json_schema" ? (format.json_schema.schema ?? { type: "object" }) : undefined,
    jsonObject: format?.type === "json_object",
  };
}

/** The chat completions resource. */
export function chatRoutes(deps: ChatRoutesDeps) {
  const { orchestrator, memory } = deps;
  const prepareTurn = prepareTurnPipeline(memory);
  return createRouter({ statuses: [404, 409, 429, 503] }).openapi(route, async (c) => {
    const body = c.req.valid("json");
    if (deps.ml && await deps.ml.servesGeneration(body.model)) {
      return await mlChatCompletion(c, body, {
        ml: deps.ml,
        shutdownSignal: deps.shutdownSignal,
        kind: "chat",
      }) as never;
    }
    const requestSignal = c.req.raw.signal;
    const messages = toMessages(body);
    // memory: true checks what it can before a model loads; the recall itself waits for the model,
    // whose own tokenizer measures the memories' token budget
    if (body.conversation_id || body.memory) {
      await prepareTurn.run({ model: body.model, messages, conversationId: body.conversation_id }, {
        signal: requestSignal,
      });
    }
    return await answerWithTextModel(c, {
      orchestrator,
      model: body.model,
      keepAliveMs: keepAliveOf(body),
      stream: body.stream === true,
      shutdownSignal: deps.shutdownSignal,
      // the role frame, then the first token's
      headFrames: 2,
      answer: async (llama, handle) => {
        const turn = await prepareTurn.run(
          {
            model: body.model,
            messages,
            conversationId: body.conversation_id,
            useMemory: body.memory,
            tokenCounter: llama,
          },
          { signal: requestSignal },
        );
        // TabAgent's extension of the reply: the memories the prompt used, so a client can cite them
        const tabagent = body.memory ? { tabagent: { citations: turn.citations } } : {};
        const prepared = await llama.prepareChat({ ...toRequest(body, messages), messages: turn.prompt });
        const base = completionBase("chatcmpl", body.model);
        const complete = (signal: AbortSignal, onText?: (text: string) => void) =>
          completeTurnPipeline(memory, (_turn, ctx) =>
            handle.run(
              { priority: "interactive", signal: ctx.signal },
              (lease) => llama.generateChat(prepared, { signal: lease.signal, onText }),
            )).run(turn, { signal });
        return {
          json: async () => ({ ...completionBody(base, (await complete(requestSignal)).result), ...tabagent }),
          stream: (writer, signal) => streamChat(writer, signal, { base, body, complete, last: tabagent }),
        };
      },
    });
  });
}

/** Writes a chat completion as `chat.completion.chunk` frames: role, the text (pieces joined per write), tool calls, finish. */
async function streamChat(
  writer: SseWriter,
  signal: AbortSignal,
  options: {
    base: CompletionBase;
    body: Body;
    complete: (signal: AbortSignal, onText: (text: string) => void) => Promise<{ result: GenerationResult }>;
    /** Extra fields of the final chunk (TabAgent's `tabagent.citations`). */
    last?: Record<string, unknown>;
  },
): Promise<void> {
  const { base } = options;
  const includeUsage = options.body.stream_options?.include_usage === true;
  const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
    ...base,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  writer.send(chunk({ role: "assistant", content: "", refusal: null }, null));
  const textFrame = textChunkJson((content) => chunk({ content }, null));
  const { result } = await options.complete(signal, (text) => writer.sendText(text, textFrame));
  if (result.aborted) return;
  if (result.toolCalls.length) {
    writer.send(chunk({ tool_calls: result.toolCalls.map((call, index) => ({ index, ...call })) }, null));
  }
  writer.send({ ...chunk({}, result.finishReason), ...options.last });
  if (includeUsage) writer.send({ ...base, object: "chat.completion.chunk", choices: [], usage: usageOf(result) });
  writer.done();
}

function completionBody(base: CompletionBase, result: GenerationResult) {
  return {
    ...base,
    object: "chat.completion" as const,
    choices: [{
      index: 0,
      message: {
        role: "assistant" as const,
        content: result.toolCalls.length && !result.text ? null : result.text,
        refusal: null,
        ...(result.toolCalls.length ? { tool_calls: result.toolCalls } : {}),
      },
      logprobs: null,
      finish_reason: result.finishReason,
    }],
    usage: usageOf(result),
  };
}
