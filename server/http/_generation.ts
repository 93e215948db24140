/**
 * What chat and text completions share: hold the model for the request (released when the answer
 * is complete, after the last streamed frame too), refuse a model that cannot generate text, and
 * answer with one JSON body or with server-sent events.
 */
import type { Context } from "hono";
import { TabAgentError } from "../errors/mod.ts";
import type { LlamaTextModel } from "../inference/llama/mod.ts";
import type { ModelHandle, ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import { sseResponse, type SseWriter } from "./_sse.ts";
import type { HttpEnv } from "./router.ts";

/** The two ways a generation route answers, once it holds its model. */
export interface GenerationAnswer<J> {
  /** The whole answer, for a request without `stream`. */
  json(): Promise<J>;
  /** Writes the answer as frames; `signal` aborts when the client goes or the server stops. */
  stream(writer: SseWriter, signal: AbortSignal): Promise<void>;
}

/** Options for {@link answerWithTextModel}. */
export interface TextModelRequest<J> {
  orchestrator: ModelOrchestrator;
  model: string;
  keepAliveMs?: number;
  stream: boolean;
  /** Aborts when the server stops: open streams end. */
  shutdownSignal?: AbortSignal;
  /**
   * Frames a stream's response holds its head for (`sseResponse`'s `headFrames`): those before the
   * first generated text and that text's, so that the head goes out with the first token.
   */
  headFrames?: number;
  /** Builds the answer with the loaded model (`handle.run` schedules each model call). */
  answer: (llama: LlamaTextModel, handle: ModelHandle) => Promise<GenerationAnswer<J>> | GenerationAnswer<J>;
}

/**
 * Acquires `model`, answers as JSON or as a stream, and releases the model when the answer is done.
 *
 * @example
 * ```ts
 * return await answerWithTextModel(c, { orchestrator, model, stream: body.stream === true, answer: (llama, handle) => ({
 *   json: () => generateAll(llama, handle),
 *   stream: (writer, signal) => generateFrames(llama, handle, writer, signal),
 * }) });
 * ```
 */
export async function answerWithTextModel<J extends object>(
  c: Context<HttpEnv>,
  request: TextModelRequest<J>,
): Promise<Response> {
  const handle = await request.orchestrator.acquire(request.model, { keepAliveMs: request.keepAliveMs });
  const signals = [c.req.raw.signal, ...(request.shutdownSignal ? [request.shutdownSignal] : [])];
  return await answerHolding(handle, {
    stream: request.stream,
    answer: () => {
      const llama = handle.llama;
      if (!llama) {
        throw new TabAgentError(
          "bad_request",
          `The model '${request.model}' is an embedding model; it cannot generate text`,
        );
      }
      return request.answer(llama, handle);
    },
    json: (body) => c.json(body, 200),
    streamed: (produce) => sseResponse(signals, produce, { headFrames: request.headFrames }),
  });
}

/** How {@link answerHolding} builds and sends an answer; `W` is the stream's writer (SSE or NDJSON). */
export interface HeldAnswer<J, W> {
  stream: boolean;
  /** Builds the answer once the model is held; what it throws releases the model. */
  answer: () => Promise<{ json(): Promise<J>; stream(writer: W, signal: AbortSignal): Promise<void> }> | {
    json(): Promise<J>;
    stream(writer: W, signal: AbortSignal): Promise<void>;
  };
  json: (body: J) => Response;
  streamed: (produce: (writer: W, signal: AbortSignal) => Promise<void>) => Response | Promise<Response>;
}

/**
 * Answers with `handle` held: released once the JSON body is built, or after the last streamed
 * frame; the one place OpenAI's and Ollama's routes hold a model across a stream.
 */
export async function answerHolding<J, W>(handle: { release(): void }, how: HeldAnswer<J, W>): Promise<Response> {
  let releasedByStream = false;
  try {
    const answer = await how.answer();
    if (!how.stream) return how.json(await answer.json());
    releasedByStream = true;
    return await how.streamed(async (writer, signal) => {
      try {
        await answer.stream(writer, signal);
      } finally {
        handle.release();
      }
    });
  } finally {
    if (!releasedByStream) handle.release();
  }
}
