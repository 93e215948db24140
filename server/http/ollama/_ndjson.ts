/**
 * Newline-delimited JSON streams, as Ollama streams every answer: one object a line, the last with
 * `done: true` (or `status: "success"`), an `{"error": "..."}` line when something fails mid-way.
 */
import { FLUSH_INTERVAL_MS } from "../_sse.ts";

const encoder = new TextEncoder();

const SHUTDOWN_MESSAGE = "the server is stopping; this reply was cut short";

/** Ollama's streaming media type. */
export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

/** Writes lines; a closed stream ignores writes (the client went away). */
export interface NdjsonWriter {
  send(data: unknown): void;
  /** Sends an already-serialised JSON object (hot path: one line per token). */
  sendJson(json: string): void;
}

/**
 * A streaming response whose lines `produce` writes. `produce` gets a signal that aborts when the
 * client disconnects or any of `signals` aborts; generation must stop on it. An error thrown by
 * `produce` becomes a last `{"error": ...}` line, which Ollama's clients raise as an error.
 *
 * Writes are batched the way the SSE streams are (see `_sse.ts`): lines wait while the socket is
 * busy and leave together, and writes after the first two are spaced at least FLUSH_INTERVAL_MS.
 */
export function ndjsonResponse(
  signals: AbortSignal[],
  produce: (writer: NdjsonWriter, signal: AbortSignal) => Promise<void>,
): Response {
  const cancelled = new AbortController();
  const signal = AbortSignal.any([cancelled.signal, ...signals]);
  let pending: string[] = [];
  let lastFlush = -Infinity;
  let flushes = 0;
  let open = true;
  let finished = false;
  let wake: (() => void) | undefined;
  const ended = Promise.withResolvers<void>();
  const push = (line: string) => {
    if (!open || finished) return;
    pending.push(line);
    wake?.();
  };
  const writer: NdjsonWriter = {
    send: (data) => push(`${JSON.stringify(data)}\n`),
    sendJson: (json) => push(`${json}\n`),
  };
  const body = new ReadableStream<Uint8Array>({
    start() {
      // Stopped by the server (not the client): the client still listens and must hear why the
      // stream ends without `done`, whether produce returned or threw on the abort.
      const stopped = () => signal.aborted && !cancelled.signal.aborted;
      produce(writer, signal).then(() => {
        if (stopped()) writer.send({ error: SHUTDOWN_MESSAGE });
      }, (error) => {
        writer.send({ error: stopped() ? SHUTDOWN_MESSAGE : error instanceof Error ? error.message : String(error) });
      }).finally(() => {
        finished = true;
        ended.resolve();
        wake?.();
      });
    },
    async pull(controller) {
      while (pending.length === 0 && !finished) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      const early = lastFlush + FLUSH_INTERVAL_MS - performance.now();
      if (flushes >= 2 && early > 0 && !finished) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([new Promise((resolve) => timer = setTimeout(resolve, early)), ended.promise]);
        clearTimeout(timer);
      }
      lastFlush = performance.now();
      flushes++;
      if (pending.length > 0) {
        const lines = pending.length === 1 ? pending[0] : pending.join("");
        pending = [];
        controller.enqueue(encoder.encode(lines));
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
  return new Response(body, {
    status: 200,
    headers: { "content-type": NDJSON_CONTENT_TYPE, "cache-control": "no-cache", "x-accel-buffering": "no" },
  });
}
