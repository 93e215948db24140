/** Server-sent events for OpenAI-style streams: `data: {json}\n\n` frames, ending with `data: [DONE]`. */

import { pacedStream } from "./_paced_stream.ts";

/** Headers of every event stream. */
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "connection": "keep-alive",
  "x-accel-buffering": "no",
};

/** Writes frames to a stream; closed streams ignore writes (the client went away). */
export interface SseWriter {
  send(data: unknown): void;
  /** Sends an already-serialised JSON object (hot path: one frame per token). */
  sendJson(json: string): void;
  done(): void;
}

/**
 * A streaming response whose body `produce` writes. `produce` gets a signal that aborts when the
 * client disconnects or any of `signals` aborts; generation must stop on it.
 */
export function sseResponse(
  signals: AbortSignal[],
  produce: (writer: SseWriter, signal: AbortSignal) => Promise<void>,
): Response {
  const body = pacedStream(signals, ({ push, finish, signal, clientGone }) => {
    const writer: SseWriter = {
      send: (data) => push(`data: ${JSON.stringify(data)}\n\n`),
      sendJson: (json) => push(`data: ${json}\n\n`),
      done() {
        push("data: [DONE]\n\n");
        finish();
      },
    };
    produce(writer, signal).catch((error) => {
      // Aborted while the client still listens: the server side (shutdown) cut the reply short,
      // and the client deserves that reason rather than the stage the cancellation hit.
      const message = signal.aborted && !clientGone.aborted
        ? "The server is stopping; this reply was cut short"
        : error instanceof Error
        ? error.message
        : String(error);
      writer.send({ error: { message } });
    }).finally(finish);
  });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}
