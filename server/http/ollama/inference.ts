/**
 * `POST /api/chat` and `/api/generate`: Ollama's generation API as a thin adapter over the same
 * orchestrator, scheduler, llama engine and memory pipeline as `/v1`.
 */
import type { Context } from "hono";
import { TabAgentError } from "../../errors/mod.ts";
import type {
  ChatMessage,
  ChatRequest,
  GenerationResult,
  LlamaTextModel,
  ToolCall,
} from "../../inference/llama/mod.ts";
import type { ModelHandle, ModelOrchestrator } from "../../inference/orchestrator/mod.ts";
import {
  completeTurnPipeline,
  type ConversationMemory,
  type PreparedTurn,
  prepareTurnPipeline,
} from "../../inference/pipeline/mod.ts";
import type { MlService } from "../../ml/mod.ts";
import type { HttpEnv } from "../router.ts";
import { answerHolding } from "../_generation.ts";
import { ndjsonResponse, type NdjsonWriter } from "./_ndjson.ts";
import { budgetFor, keepAliveMs, type ModelNames, readBody, samplingOf, Timings } from "./_request.ts";
import {
  type ChatRequestBody,
  ChatRequestSchema,
  type GenerateRequestBody,
  GenerateRequestSchema,
  type OllamaMessage,
} from "./_schemas.ts";

/** What the inference routes need. */
export interface OllamaInferenceDeps {
  orchestrator: ModelOrchestrator;
  names: ModelNames;
  /** The Python ML service: the sentence-transformers embeddings `/v1/embeddings` sends there. */
  ml?: MlService;
  memory?: ConversationMemory;
  shutdownSignal?: AbortSignal;
}

type Ctx = Context<HttpEnv>;

/** Ollama's messages → the engine's. Tool results find their call by `tool_name`, as Ollama pairs them. */
export function toChatMessages(messages: readonly OllamaMessage[]): ChatMessage[] {
  const unanswered: ToolCall[] = [];
  let next = 0;
  return messages.map((m): ChatMessage => {
    const content = m.content ?? "";
    if (m.role === "assistant" && m.tool_calls?.length) {
      const calls: ToolCall[] = m.tool_calls.map((call) => ({
        id: call.id ?? `call_${next++}`,
        type: "function",
        function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments ?? {}) },
      }));
      unanswered.push(...calls);
      return { role: "assistant", content, tool_calls: calls };
    }
    if (m.role === "tool") {
      const at = unanswered.findIndex((call) => !m.tool_name || call.function.name === m.tool_name);
      const call = at === -1 ? undefined : unanswered.splice(at, 1)[0];
      return {
        role: "tool",
        content,
        ...(call ? { tool_call_id: call.id } : {}),
        ...(m.tool_name ? { name: m.tool_name } : {}),
      };
    }
    return { role: m.role, content };
  });
}

/** The engine's tool calls in Ollama's shape: arguments as an object. */
export function toOllamaToolCalls(calls: readonly ToolCall[]) {
  return calls.map((call, index) => ({
    id: call.id,
    function: { index, name: call.function.name, arguments: JSON.parse(call.function.arguments || "{}") },
  }));
}

function formatOf(format: ChatRequestBody["format"]): Pick<ChatRequest, "jsonSchema" | "jsonObject"> {
  if (format === "json") return { jsonObject: true };
  if (format && typeof format === "object") return { jsonSchema: format };
  return {};
}

function doneReason(result: GenerationResult): string {
  return result.finishReason === "length" ? "length" : "stop";
}

/** Unloads `id` once nothing uses it (now, when idle). */
async function unloadWhenIdle(orchestrator: ModelOrchestrator, id: string): Promise<void> {
  const loaded = orchestrator.status().models.find((m) => m.id === id);
  if (!loaded) return;
  if (loaded.active_requests === 0) {
    try {
      return await orchestrator.unloadForDelete(id);
    } catch (error) {
      if (!(error instanceof TabAgentError && error.code === "conflict")) throw error;
    }
  }
  // In use: keep_alive 0 unloads it when the last request lets go.
  const handle = await orchestrator.acquire(id, { keepAliveMs: 0 });
  handle.release();
}

/** An empty prompt (or no messages) loads the model, or unloads it with keep_alive 0: Ollama's idiom. */
async function loadOrUnload(deps: OllamaInferenceDeps, name: string, keepAlive: number | undefined) {
  if (keepAlive === 0) {
    const { resolved } = await deps.names.locate(name);
    await unloadWhenIdle(deps.orchestrator, resolved.id);
    return "unload";
  }
  const { handle } = await deps.names.acquire(name, keepAlive);
  handle.release();
  return "load";
}

function requireChat(model: string, llama: LlamaTextModel | undefined): LlamaTextModel {
  if (!llama) throw new TabAgentError("bad_request", `"${model}" does not support chat: it is an embedding model`);
  return llama;
}

/**
 * Streams token lines: the fixed parts are serialised once, the time and text per token. Tokens
 * come faster than once a millisecond on small models, so the timestamp is formatted once per ms.
 */
function tokenLine(model: string, field: "message" | "response"): (text: string) => string {
  const head = `{"model":${JSON.stringify(model)},"created_at":"`;
  const middle = field === "message" ? `","message":{"role":"assistant","content":` : `","response":`;
  const tail = field === "message" ? `},"done":false}` : `,"done":false}`;
  let ms = 0;
  let stamp = "";
  return (text) => {
    const now = Date.now();
    if (now !== ms) {
      ms = now;
      stamp = new Date(now).toISOString();
    }
    return head + stamp + middle + JSON.stringify(text) + tail;
  };
}

/** The answer of a generation route: one JSON body, or NDJSON lines written as they come. */
interface OllamaAnswer {
  json(): Promise<object>;
  stream(writer: NdjsonWriter, signal: AbortSignal): Promise<void>;
}

/** Answers as JSON or NDJSON with `handle` held until the answer (its last streamed line too) is complete. */
function answerHeld(
  c: Ctx,
  deps: OllamaInferenceDeps,
  handle: ModelHandle,
  options: { stream: boolean; answer: () => Promise<OllamaAnswer> | OllamaAnswer },
): Promise<Response> {
  const signals = [c.req.raw.signal, ...(deps.shutdownSignal ? [deps.shutdownSignal] : [])];
  return answerHolding(handle, {
    ...options,
    json: (body) => c.json(body),
    // the head goes with the first token's line
    streamed: (produce) => ndjsonResponse(signals, produce, { headLines: 1 }),
  });
}

/** The engine's chat request for an Ollama chat body. */
function chatRequestOf(body: ChatRequestBody, messages: ChatMessage[]): ChatRequest {
  return {
    ...samplingOf(body.options),
    messages,
    tools: body.tools?.map((t) => ({
      name: t.function.name,
      description: t.function.description,
      parameters: t.function.parameters,
    })),
    toolChoice: body.tool_choice && typeof body.tool_choice === "object"
      ? { name: body.tool_choice.function.name }
      : body.tool_choice ?? undefined,
    ...formatOf(body.format),
  };
}

/** `POST /api/chat`. */
export async function chatHandler(c: Ctx, deps: OllamaInferenceDeps, prepareTurn = prepareTurnPipeline(deps.memory)) {
  const timings = new Timings();
  const body = await readBody(c, ChatRequestSchema);
  const resolved = await deps.names.resolve(body.model);
  const keepAlive = keepAliveMs(body.keep_alive);
  if (!body.messages.length) {
    const reason = await loadOrUnload(deps, body.model, keepAlive);
    return c.json({
      model: body.model,
      created_at: new Date().toISOString(),
      message: { role: "assistant", content: "" },
      done_reason: reason,
      done: true,
    });
  }
  const messages = toChatMessages(body.messages);
  const request = chatRequestOf(body, messages);
  const turn = await prepareTurn.run(
    {
      model: resolved.id,
      messages,
      conversationId: body.conversation_id ?? undefined,
      useMemory: body.memory ?? undefined,
    },
    { signal: c.req.raw.signal },
  );
  const { handle } = await deps.names.acquire(body.model, keepAlive, resolved);
  timings.loaded = performance.now();
  return await answerHeld(c, deps, handle, {
    stream: body.stream !== false,
    answer: async () => {
      const llama = requireChat(body.model, handle.llama);
      const prepared = await llama.prepareChat({ ...request, messages: turn.prompt });
      prepared.maxTokens = budgetFor(prepared, body.options?.num_ctx);
      const generateWith = (onText?: (text: string) => void) => (_turn: PreparedTurn, ctx: { signal?: AbortSignal }) =>
        handle.run({ priority: "interactive", signal: ctx.signal }, (lease) => {
          timings.started = performance.now();
          return llama.generateChat(prepared, {
            signal: lease.signal,
            onText: (text) => {
              timings.first ||= performance.now();
              if (text) onText?.(text);
            },
          });
        });
      return chatAnswer(
        body.model,
        timings,
        (onText, signal = c.req.raw.signal) =>
          completeTurnPipeline(deps.memory, generateWith(onText)).run(turn, { signal }).then(({ result }) => result),
      );
    },
  });
}

/** Chat's JSON body and NDJSON lines around `generate` (which runs the turn, memory included). */
function chatAnswer(
  model: string,
  timings: Timings,
  generate: (
    onText: ((text: string) => void) | undefined,
    signal: AbortSignal | undefined,
  ) => Promise<GenerationResult>,
): OllamaAnswer {
  const finalMessage = (result: GenerationResult, content: string) => ({
    role: "assistant" as const,
    content,
    ...(result.toolCalls.length ? { tool_calls: toOllamaToolCalls(result.toolCalls) } : {}),
  });
  const done = (result: GenerationResult, message: object) => ({
    model,
    created_at: new Date().toISOString(),
    message,
    done_reason: doneReason(result),
    done: true,
    ...timings.metrics(result),
  });
  return {
    json: async () => {
      const result = await generate(undefined, undefined);
      return done(result, finalMessage(result, result.text));
    },
    stream: async (writer, signal) => {
      const line = tokenLine(model, "message");
      const result = await generate((text) => writer.sendText(text, line), signal);
      if (result.aborted) return;
      if (result.toolCalls.length) {
        writer.send({ model, created_at: new Date().toISOString(), message: finalMessage(result, ""), done: false });
      }
      writer.send(done(result, { role: "assistant", content: "" }));
    },
  };
}

function generateMessages(body: GenerateRequestBody): ChatMessage[] {
  return [
    ...(body.system ? [{ role: "system" as const, content: body.system }] : []),
    { role: "user" as const, content: body.prompt },
  ];
}

/** `POST /api/generate`. */
export async function generateHandler(c: Ctx, deps: OllamaInferenceDeps) {
  const timings = new Timings();
  const body = await readBody(c, GenerateRequestSchema);
  const resolved = await deps.names.resolve(body.model);
  const keepAlive = keepAliveMs(body.keep_alive);
  if (!body.prompt && !body.suffix) {
    const reason = await loadOrUnload(deps, body.model, keepAlive);
    return c.json({
      model: body.model,
      created_at: new Date().toISOString(),
      response: "",
      done: true,
      done_reason: reason,
    });
  }
  const { handle } = await deps.names.acquire(body.model, keepAlive, resolved);
  timings.loaded = performance.now();
  return await answerHeld(c, deps, handle, {
    stream: body.stream !== false,
    answer: async () => {
      const run = await generationOf(body, requireChat(body.model, handle.llama));
      const generate = (signal: AbortSignal, onText?: (text: string) => void) =>
        handle.run({ priority: "interactive", signal }, (lease) => {
          timings.started = performance.now();
          return run(lease.signal, (text) => {
            timings.first ||= performance.now();
            if (text) onText?.(text);
          });
        });
      const done = (result: GenerationResult, response: string) => ({
        model: body.model,
        created_at: new Date().toISOString(),
        response,
        done: true,
        done_reason: doneReason(result),
        ...timings.metrics(result),
      });
      return {
        json: async () => {
          const result = await generate(c.req.raw.signal);
          return done(result, result.text);
        },
        stream: async (writer, signal) => {
          const line = tokenLine(body.model, "response");
          const result = await generate(signal, (text) => writer.sendText(text, line));
          if (!result.aborted) writer.send(done(result, ""));
        },
      };
    },
  });
}

/** The generation `/api/generate` asks for: fill in the middle (`suffix`), a raw prompt, or a chat turn. */
async function generationOf(
  body: GenerateRequestBody,
  llama: LlamaTextModel,
): Promise<(signal: AbortSignal, onText: (text: string) => void) => Promise<GenerationResult>> {
  const sampling = samplingOf(body.options);
  const numCtx = body.options?.num_ctx;
  if (body.suffix) {
    if (!llama.infillSupported) throw new TabAgentError("bad_request", `"${body.model}" does not support insert`);
    const prepared = llama.prepareInfill(body.prompt, body.suffix, sampling);
    prepared.maxTokens = budgetFor(prepared, numCtx);
    return (signal, onText) => llama.generateInfill(prepared, { signal, onText });
  }
  if (body.raw) {
    const prepared = llama.prepareCompletion(body.prompt, sampling);
    prepared.maxTokens = budgetFor(prepared, numCtx);
    return (signal, onText) => llama.generateCompletion(prepared, { signal, onText });
  }
  const prepared = await llama.prepareChat({ ...sampling, messages: generateMessages(body), ...formatOf(body.format) });
  prepared.maxTokens = budgetFor(prepared, numCtx);
  return (signal, onText) => llama.generateChat(prepared, { signal, onText });
}
