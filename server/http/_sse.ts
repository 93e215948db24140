/** Server-sent events for OpenAI-style streams: `data: {json}\n\n` frames, ending with `data: [DONE]`. */

const encoder = new TextEncoder();

/** Least time between two writes of one stream (ms); see sseResponse. */
export const FLUSH_INTERVAL_MS = 2;

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
  // Frames wait here until the socket asks for more. When it keeps up, each frame goes out alone
  // at once; when tokens come faster than it writes, the waiting frames leave in one write, so a
  // fast model does not pay a syscall (and the client a read) per token. Frames stay separate.
  // Writes are also spaced at least FLUSH_INTERVAL_MS apart: a model slower than that (every real
  // one on a CPU) sees each token sent the moment it exists; a faster one has its tokens batched.
  let pending: string[] = [];
  let lastFlush = -Infinity;
  let flushes = 0;
  let open = true;
  let finished = false;
  let wake: (() => void) | undefined;
  const push = (frame: string) => {
    if (!open || finished) return;
    pending.push(frame);
    wake?.();
  };
  const ended = Promise.withResolvers<void>();
  const finish = () => {
    finished = true;
    ended.resolve();
    wake?.();
  };
  const writer: SseWriter = {
    send: (data) => push(`data: ${JSON.stringify(data)}\n\n`),
    sendJson: (json) => push(`data: ${json}\n\n`),
    done() {
      push("data: [DONE]\n\n");
      finish();
    },
  };
  const body = new ReadableStream<Uint8Array>({
    start() {
      produce(writer, signal).catch((error) => {
        // Aborted while the client still listens: the server side (shutdown) cut the reply short,
        // and the client deserves that reason rather than the stage the cancellation hit.
        const message = signal.aborted && !cancelled.signal.aborted
          ? "The server is stopping; this reply was cut short"
          : error instanceof Error
          ? error.message
          : String(error);
        writer.send({ error: { message } });
      }).finally(finish);
    },
    async pull(controller) {
      while (pending.length === 0 && !finished) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      // The first two writes (the role frame, then the first token) never wait: time to first
      // token stays what the model makes it.
      const early = lastFlush + FLUSH_INTERVAL_MS - performance.now();
      if (flushes >= 2 && early > 0 && !finished) {
        // The last frames leave as soon as the stream ends, not at the next tick.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([new Promise((resolve) => timer = setTimeout(resolve, early)), ended.promise]);
        clearTimeout(timer);
      }
      lastFlush = performance.now();
      flushes++;
      if (pending.length > 0) {
        const frames = pending.length === 1 ? pending[0] : pending.join("");
        pending = [];
        controller.enqueue(encoder.encode(frames));
      }
      if (finished && pending.length === 0) {
        open = false;
        controller.close();
      }
    },
    cancel(reason) {
      open = false;
      pending = [];
      cancelled.abort(reason ?? new DOMException("client disconnected", "AbortError"));
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}
