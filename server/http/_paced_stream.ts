/**
 * The streaming body that SSE (`_sse.ts`) and Ollama's NDJSON (`ollama/_ndjson.ts`) share: text
 * pieces wait here until the socket asks for more. When it keeps up, each piece goes out alone at
 * once; when tokens come faster than it writes, the waiting pieces leave in one write, so a fast
 * model does not pay a syscall (and the client a read) per token. Writes are also spaced at least
 * FLUSH_INTERVAL_MS apart: a model slower than that (every real one on a CPU) sees each token sent
 * the moment it exists; a faster one has its tokens batched.
 */

const encoder = new TextEncoder();

/** Least time between two writes of one stream (ms). */
export const FLUSH_INTERVAL_MS = 2;

/** What a paced stream's producer writes through. */
export interface PacedSink {
  /** Queues one piece of text; ignored once the stream has finished or the client left. */
  push(text: string): void;
  /** Ends the stream once what is queued has been written. */
  finish(): void;
  /** Aborts when the client disconnects or any of the given signals aborts. */
  readonly signal: AbortSignal;
  /** Aborts only when the client disconnects (so a producer can tell a server stop from it). */
  readonly clientGone: AbortSignal;
}

/** A byte stream fed through `start`'s sink, written in paced batches. */
export function pacedStream(signals: AbortSignal[], start: (sink: PacedSink) => void): ReadableStream<Uint8Array> {
  const cancelled = new AbortController();
  let pending: string[] = [];
  let lastFlush = -Infinity;
  let flushes = 0;
  let open = true;
  let finished = false;
  let wake: (() => void) | undefined;
  const ended = Promise.withResolvers<void>();
  const sink: PacedSink = {
    push(text) {
      if (!open || finished) return;
      pending.push(text);
      wake?.();
    },
    finish() {
      finished = true;
      ended.resolve();
      wake?.();
    },
    signal: AbortSignal.any([cancelled.signal, ...signals]),
    clientGone: cancelled.signal,
  };
  return new ReadableStream<Uint8Array>({
    start: () => start(sink),
    async pull(controller) {
      while (pending.length === 0 && !finished) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      // The first two writes (e.g. the role frame, then the first token) never wait: time to first
      // token stays what the model makes it.
      const early = lastFlush + FLUSH_INTERVAL_MS - performance.now();
      if (flushes >= 2 && early > 0 && !finished) {
        // The last pieces leave as soon as the stream ends, not at the next tick.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([new Promise((resolve) => timer = setTimeout(resolve, early)), ended.promise]);
        clearTimeout(timer);
      }
      lastFlush = performance.now();
      flushes++;
      if (pending.length > 0) {
        const text = pending.length === 1 ? pending[0] : pending.join("");
        pending = [];
        controller.enqueue(encoder.encode(text));
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
}
