/** Server-sent events for OpenAI-style streams: `data: {json}\n\n` frames, ending with `data: [DONE]`. */

const encoder = new TextEncoder();

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
  const cancelled = new AbortController();
  const signal = AbortSignal.any([cancelled.signal, ...signals]);
  let open = true;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const writer: SseWriter = {
        send(data) {
          if (open) controller.enqueue(encoder.encode(`data: ${JSON.stringify(data)}\n\n`));
        },
        sendJson(json) {
          if (open) controller.enqueue(encoder.encode(`data: ${json}\n\n`));
        },
        done() {
          if (!open) return;
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          open = false;
          controller.close();
        },
      };
      produce(writer, signal).catch((error) => {
        if (open) writer.send({ error: { message: error instanceof Error ? error.message : String(error) } });
      }).finally(() => {
        if (open) {
          open = false;
          controller.close();
        }
      });
    },
    cancel(reason) {
      open = false;
      cancelled.abort(reason ?? new DOMException("client disconnected", "AbortError"));
    },
  });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}
