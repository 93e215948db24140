/**
 * Chat completions for Transformers (safetensors) models, which the Python ML service runs: the
 * same OpenAI wire format as the llama.cpp path, streamed token by token through gRPC. Tools,
 * JSON-Schema output and memory are llama.cpp features and are refused here with a clear 400.
 */
import type { Context } from "hono";
import { TabAgentError } from "../errors/mod.ts";
import { DEFAULT_TEMPERATURE } from "../inference/llama/mod.ts";
import type { GenerateEvent, MlService } from "../ml/mod.ts";
import { type CompletionBase, completionBase, contentText } from "./_openai.ts";
import { sseResponse } from "./_sse.ts";
import type { HttpEnv } from "./router.ts";

/** The parts of a chat body this path reads. */
export interface MlChatBody {
  model: string;
  messages: { role: string; content?: unknown }[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  tools?: unknown[];
  response_format?: { type: string };
  conversation_id?: string;
  memory?: boolean;
}

/** What `mlChatCompletion` needs besides the body. */
interface MlChatDeps {
  ml: MlService;
  shutdownSignal?: AbortSignal;
  kind: "chat" | "text";
  prompt?: string;
}

/** Answers a chat completion through the ML service. */
export async function mlChatCompletion(c: Context<HttpEnv>, body: MlChatBody, deps: MlChatDeps): Promise<Response> {
  refuseLlamaOnlyFeatures(body);
  const request = generateRequest(body, deps);
  const chat = deps.kind === "chat";
  const base = completionBase(chat ? "chatcmpl" : "cmpl", body.model);
  const requestSignal = c.req.raw.signal;
  if (!body.stream) {
    return c.json(await completeJson(deps.ml.generate(request, { signal: requestSignal }), chat, base), 200);
  }
  const signals = [requestSignal, ...(deps.shutdownSignal ? [deps.shutdownSignal] : [])];
  // Fail before the 200 when no worker can take it: the client gets a real 503.
  const stop = new AbortController();
  const events = deps.ml.generate(request, { signal: AbortSignal.any([...signals, stop.signal]) });
  const first = await events.next();
  return sseResponse(signals, async (writer, signal) => {
    signal.addEventListener("abort", () => stop.abort(signal.reason), { once: true });
    const chunks = chunkWriter(chat, base, body.stream_options?.include_usage === true);
    if (chat) writer.send(chunks.chunk({ role: "assistant", content: "", refusal: null }, null));
    for (let result = first; !result.done; result = await events.next()) {
      for (const message of chunks.forEvent(result.value)) writer.send(message);
    }
    writer.done();
  });
}

/** Tools, structured output and memory are llama.cpp features: refused with a clear 400. */
function refuseLlamaOnlyFeatures(body: MlChatBody): void {
  if (body.tools?.length || (body.response_format && body.response_format.type !== "text")) {
    throw new TabAgentError(
      "bad_request",
      `Tools and structured output need a GGUF model; '${body.model}' is a Transformers model`,
    );
  }
  if (body.conversation_id || body.memory) {
    throw new TabAgentError(
      "bad_request",
      `conversation_id and memory need a GGUF model; '${body.model}' is a Transformers model`,
    );
  }
}

/** The ML service's generate request for an OpenAI body. */
function generateRequest(body: MlChatBody, deps: MlChatDeps) {
  return {
    model: body.model,
    prompt: deps.prompt ?? "",
    messages: deps.kind === "chat"
      ? body.messages.map((m, i) => ({ role: m.role, content: contentText(m.content, `messages.${i}.content`) ?? "" }))
      : [],
    max_tokens: body.max_completion_tokens ?? body.max_tokens ?? 256,
    temperature: body.temperature ?? DEFAULT_TEMPERATURE, // the same default as the llama.cpp path
    top_p: body.top_p ?? 1,
    ...(body.seed !== null && body.seed !== undefined ? { seed: body.seed } : {}),
    stop: body.stop === null || body.stop === undefined ? [] : [body.stop].flat(),
  };
}

function usageOf(event: { promptTokens: number; completionTokens: number }) {
  return {
    prompt_tokens: event.promptTokens,
    completion_tokens: event.completionTokens,
    total_tokens: event.promptTokens + event.completionTokens,
  };
}

/** Collects the whole generation into one `chat.completion` or `text_completion` object. */
async function completeJson(events: AsyncIterable<GenerateEvent>, chat: boolean, base: CompletionBase) {
  let text = "";
  let usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  let finish = "stop";
  for await (const event of events) {
    if (event.type === "text") text += event.text;
    else {
      finish = event.finishReason;
      usage = usageOf(event);
    }
  }
  return chat
    ? {
      ...base,
      object: "chat.completion",
      choices: [{
        index: 0,
        message: { role: "assistant", content: text, refusal: null },
        logprobs: null,
        finish_reason: finish,
      }],
      usage,
    }
    : {
      ...base,
      object: "text_completion",
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
      usage,
    };
}

/** The streamed chunks: one per text event, then the finish chunk and (when asked) the usage chunk. */
function chunkWriter(chat: boolean, base: CompletionBase, includeUsage: boolean) {
  const chunk = (delta: Record<string, unknown> | string, finish: string | null) =>
    chat
      ? {
        ...base,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {}),
      }
      : {
        ...base,
        object: "text_completion",
        choices: [{ index: 0, text: delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {}),
      };
  const forEvent = (event: GenerateEvent): Record<string, unknown>[] => {
    if (event.type === "text") return [chunk(chat ? { content: event.text } : event.text, null)];
    const finish = chunk(chat ? {} : "", event.finishReason);
    if (!includeUsage) return [finish];
    return [finish, {
      ...base,
      object: chat ? "chat.completion.chunk" : "text_completion",
      choices: [],
      usage: usageOf(event),
    }];
  };
  return { chunk, forEvent };
}
