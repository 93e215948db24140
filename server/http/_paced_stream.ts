/**
 * The streaming body that SSE (`_sse.ts`) and Ollama's NDJSON (`ollama/_ndjson.ts`) share: text
 * pieces wait here until the socket asks for more. The first two writes (e.g. the role frame, then
 * the first token) leave at once, so time to first token is what the model makes it; after that,
 * writes are spaced at least FLUSH_INTERVAL_MS apart and the pieces that arrived in between leave
 * in one write. A model slower than that interval (every real one on a CPU: SmolLM2-135M decodes
 * at 13–20 ms a token on 2 cores) sees each token sent the moment it exists; a faster one has its
 * tokens batched, so it does not pay a write (and the client a read and a wake-up) per token: on a
 * 2-core machine those compete with the model's own threads for the cores.
 *
 * A write also waits until the model has gone back to work. A producer hands over a token
 * (`push`) in the middle of the model's per-token work, and node-llama-cpp dispatches the next
 * decode step in a `setImmediate` queued in that same turn of the event loop; a write done before
 * it (at the push, or from a timer that fired between the token and the dispatch, as about half of
 * them did) held the next step back by the write's cost, on every write. The write now runs in an
 * immediate queued by an immediate, i.e. in the next turn, after the dispatch, on the event loop
 * while llama.cpp computes on its own thread. The producer's own cost per token is one string
 * concatenation.
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

/** A byte stream fed through `start`'s sink, written in paced batches (`intervalMs` apart, FLUSH_INTERVAL_MS by default). */
export function pacedStream(
  signals: AbortSignal[],
  start: (sink: PacedSink) => void,
  options: { intervalMs?: number } = {},
): ReadableStream<Uint8Array> {
  const intervalMs = options.intervalMs ?? FLUSH_INTERVAL_MS;
  const cancelled = new AbortController();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let pending = "";
  let lastFlush = -Infinity;
  let flushes = 0;
  let open = true;
  let finished = false;
  /** The socket asked for more (a read is waiting): a write can go now. */
  let readerWaiting = false;
  /** A write is due but the socket has not asked for more yet: the next pull writes. */
  let due = false;
  /** A write is on its way (timer or event-loop turns): pushes only append. */
  let scheduled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const write = () => {
    scheduled = false;
    clearTimeout(timer);
    timer = undefined;
    if (!open) return;
    if (!readerWaiting) {
      due = true;
      return;
    }
    due = false;
    if (pending) {
      readerWaiting = false;
      lastFlush = performance.now();
      flushes++;
      const text = pending;
      pending = "";
      controller.enqueue(encoder.encode(text));
    }
    if (finished) {
      open = false;
      controller.close();
    }
  };
  // The outer immediate runs in this turn, before or after the model's dispatch; the inner one
  // waits for the next turn, after it (see the module note).
  const afterDispatch = () => setImmediate(() => setImmediate(write));
  const schedule = () => {
    // Due already: the client's next read writes it, with whatever comes meanwhile.
    if (scheduled || due || !open) return;
    scheduled = true;
    const early = lastFlush + intervalMs - performance.now();
    if (early > 0) timer = setTimeout(afterDispatch, early);
    else afterDispatch();
  };
  const sink: PacedSink = {
    push(text) {
      if (!open || finished) return;
      pending += text;
      if (flushes < 2 && !scheduled) write();
      else schedule();
    },
    finish() {
      if (finished) return;
      finished = true;
      write();
    },
    signal: AbortSignal.any([cancelled.signal, ...signals]),
    clientGone: cancelled.signal,
  };
  return new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
      start(sink);
    },
    pull() {
      readerWaiting = true;
      if (due) write();
    },
    cancel(reason) {
      open = false;
      pending = "";
      clearTimeout(timer);
      cancelled.abort(reason ?? new DOMException("client disconnected", "AbortError"));
    },
  }, { highWaterMark: 0 });
}
