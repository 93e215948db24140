/**
 * The streaming body that SSE (`_sse.ts`) and Ollama's NDJSON (`ollama/_ndjson.ts`) share: text
 * pieces wait here until the socket asks for more. The first two writes (e.g. the role frame, then
 * the first token) leave at once, so time to first token is what the model makes it; after that,
 * writes are spaced at least FLUSH_INTERVAL_MS apart and the pieces that arrived in between leave
 * in one write. A model slower than that interval (every real one on a CPU: SmolLM2-135M decodes
 * at 13–20 ms a token on 2 cores) sees each token sent the moment it exists; a faster one has its
 * tokens batched, so it does not pay a write (and the client a read and a wake-up) per token: on a
 * 2-core machine those compete with the model's own threads for the cores.
 */

const encoder = new TextEncoder();

/**
 * Least time between two writes of one stream (ms): under one frame at 60 Hz, so batching is never
 * visible, and above the 2 ms it was, which still wrote every 3–4 tokens of a tiny test model.
 */
export const FLUSH_INTERVAL_MS = 8;

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
  // Resolves the wait in `pull`: a piece arrived (when waiting for one), or the stream finished.
  let wake: (() => void) | undefined;
  let waitingForPiece = false;
  const sink: PacedSink = {
    push(text) {
      if (!open || finished) return;
      pending.push(text);
      if (waitingForPiece) wake?.();
    },
    finish() {
      finished = true;
      wake?.();
    },
    signal: AbortSignal.any([cancelled.signal, ...signals]),
    clientGone: cancelled.signal,
  };
  const wait = (ms?: number) =>
    new Promise<void>((resolve) => {
      // One timer per paced write, cleared when the stream ends first: the last pieces leave at once.
      const timer = ms === undefined ? undefined : setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  return new ReadableStream<Uint8Array>({
    start: () => start(sink),
    async pull(controller) {
      while (pending.length === 0 && !finished) {
        waitingForPiece = true;
        await wait();
        waitingForPiece = false;
      }
      if (flushes >= 2 && !finished) {
        const early = lastFlush + FLUSH_INTERVAL_MS - performance.now();
        if (early > 0) await wait(early);
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
