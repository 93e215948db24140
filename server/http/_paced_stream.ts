/**
 * The streaming body that SSE (`_sse.ts`) and Ollama's NDJSON (`ollama/_ndjson.ts`) share: text
 * pieces wait here until the socket asks for more. The first two writes (e.g. the role frame, then
 * the first token) leave at once, so time to first token is what the model makes it; after that,
 * writes are spaced at least FLUSH_INTERVAL_MS apart and the pieces that arrived in between leave
 * in one write. A model slower than that interval sees each token sent the moment it exists
 * (SmolLM2-135M, at 13–20 ms a token on 2 cores, at worst 3 ms later); a faster one has its tokens
 * batched, so it does not pay a write (and the client a read and a wake-up) per token: on a 2-core
 * machine those compete with the model's own threads for the cores.
 *
 * A write also waits until the model has gone back to work. A producer hands over a token
 * (`push`) in the middle of the model's per-token work, and node-llama-cpp dispatches the next
 * decode step in a `setImmediate` queued in that same turn of the event loop; a write done before
 * it (at the push, or from a timer that fired between the token and the dispatch, as about half of
 * them did) held the next step back by the write's cost, on every write. The write now runs in an
 * immediate queued by an immediate, i.e. in the next turn, after the dispatch, on the event loop
 * while llama.cpp computes on its own thread. The producer's own cost per token is one string
 * concatenation.
 *
 * A reply's text pieces are joined before they are framed (`pushPiece`): the tokens that wait for
 * one write leave as one frame (one SSE event, one NDJSON line) holding their text, not a frame
 * each, as OpenAI's and Ollama's own streams join tokens when they come faster than they are sent.
 * Per frame, the server serialised a JSON object and the client parsed one, ~256 a reply of the
 * chat bench's model; joined, a handful. Frames of anything else (a role, a finish, an error) end
 * the piece before them, so the order of frames is the order they were sent in.
 */

const encoder = new TextEncoder();

/**
 * Least time between two writes of one stream (ms): one frame of a 60 Hz display, which cannot show
 * text sooner than that, so batching is never visible. Each write costs this process its encoding,
 * the stream's and the socket's work (~0.2 ms of the event loop in the chat bench on 2 cores), and
 * the client a wake-up and a parse: at 8 ms, about 3% of a 4,000 tok/s model's decode rate.
 */
export const FLUSH_INTERVAL_MS = 16;

/**
 * Longest wait for the frames a response holds its head for (ms): a prompt that takes longer to
 * evaluate (thousands of tokens on a CPU) gets its head and first frames then, so that a client's
 * header timeout does not fire first.
 */
export const HEAD_HOLD_MAX_MS = 1000;

/**
 * Holds a streaming response's head until its producer has written `frames` frames, or has ended,
 * or for {@link HEAD_HOLD_MAX_MS}, as llama-server sends its head with the first token: a reply's
 * head (and a role frame) no longer wakes the client while the prompt is evaluated, which on a
 * 2-core machine took cores from the prompt's step and the first tokens'.
 */
class HeadHold {
  #left: number;
  #release!: () => void;
  readonly #ready = new Promise<void>((resolve) => this.#release = resolve);

  constructor(frames: number) {
    this.#left = frames;
    if (frames <= 0) this.#release();
  }

  /** The producer wrote a frame. */
  frame(): void {
    if (--this.#left <= 0) this.#release();
  }

  /** The producer ended (or failed): the head goes now. */
  end(): void {
    this.#release();
  }

  /** Resolves when the head may go. */
  async wait(): Promise<void> {
    const timer = setTimeout(this.#release, HEAD_HOLD_MAX_MS);
    try {
      await this.#ready;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** What a paced stream's producer writes through. */
export interface PacedSink {
  /** Queues one piece of text; ignored once the stream has finished or the client left. */
  push(text: string): void;
  /**
   * Queues a piece of a reply's text, which `json` turns into a JSON object and the stream's
   * `pieceFrame` into what is written. Consecutive pieces with the same `json` (the same function)
   * are joined and framed once, when written.
   */
  pushPiece(text: string, json: (text: string) => string): void;
  /** Ends the stream once what is queued has been written. */
  finish(): void;
  /** Aborts when the client disconnects or any of the given signals aborts. */
  readonly signal: AbortSignal;
  /** Aborts only when the client disconnects (so a producer can tell a server stop from it). */
  readonly clientGone: AbortSignal;
}

/** How a stream frames one JSON object (an SSE event, an NDJSON line). */
export type JsonFrame = (json: string) => string;

/**
 * A byte stream fed through `start`'s sink, written in paced batches (`intervalMs` apart,
 * FLUSH_INTERVAL_MS by default); joined text pieces are framed by `pieceFrame` (as they are, by default).
 */
export function pacedStream(
  signals: AbortSignal[],
  start: (sink: PacedSink) => void,
  options: { intervalMs?: number; pieceFrame?: JsonFrame } = {},
): ReadableStream<Uint8Array> {
  const cancelled = new AbortController();
  let writer!: PacedWriter;
  const sink: PacedSink = {
    push: (text) => writer.push(text),
    pushPiece: (text, json) => writer.pushPiece(text, json),
    finish: () => writer.finish(),
    signal: AbortSignal.any([cancelled.signal, ...signals]),
    clientGone: cancelled.signal,
  };
  return new ReadableStream<Uint8Array>({
    start: (controller) => {
      writer = new PacedWriter(controller, options.intervalMs ?? FLUSH_INTERVAL_MS, options.pieceFrame);
      start(sink);
    },
    pull: () => writer.pull(),
    cancel(reason) {
      writer.cancel();
      cancelled.abort(reason ?? new DOMException("client disconnected", "AbortError"));
    },
  }, { highWaterMark: 0 });
}

/**
 * A 200 streaming response whose body `start`'s sink feeds ({@link pacedStream}). With
 * `headFrames`, the response (its head, then those frames in one write) goes out once that many
 * frames were pushed, or the sink finished, or after HEAD_HOLD_MAX_MS ({@link HeadHold}).
 */
export async function pacedResponse(
  signals: AbortSignal[],
  start: (sink: PacedSink) => void,
  options: { headFrames?: number; pieceFrame: JsonFrame; headers: Record<string, string> },
): Promise<Response> {
  const head = new HeadHold(options.headFrames ?? 0);
  const body = pacedStream(signals, (sink) =>
    start({
      ...sink,
      push(text) {
        sink.push(text);
        head.frame();
      },
      pushPiece(text, json) {
        sink.pushPiece(text, json);
        head.frame();
      },
      finish() {
        sink.finish();
        head.end();
      },
    }), { pieceFrame: options.pieceFrame });
  await head.wait();
  return new Response(body, { status: 200, headers: options.headers });
}

/** The pacing behind {@link pacedStream}: what waits, when it is written, and to which controller. */
class PacedWriter {
  readonly #controller: ReadableStreamDefaultController<Uint8Array>;
  readonly #intervalMs: number;
  #pending = "";
  /** The pieces joined since the last frame, and the JSON they go into (see {@link PacedSink.pushPiece}). */
  #piece = "";
  #pieceJson: ((text: string) => string) | undefined;
  readonly #pieceFrame: JsonFrame;
  #lastFlush = -Infinity;
  #flushes = 0;
  #open = true;
  #finished = false;
  /** The socket asked for more (a read is waiting): a write can go now. */
  #readerWaiting = false;
  /** A write is due but the socket has not asked for more yet: the next pull writes. */
  #due = false;
  /** A write is on its way (timer or event-loop turns): pushes only append. */
  #scheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #write = () => this.#writeNow();
  // The outer immediate runs in this turn, before or after the model's dispatch; the inner one
  // waits for the next turn, after it (see the module note).
  readonly #afterDispatch = () => setImmediate(() => setImmediate(this.#write));

  constructor(
    controller: ReadableStreamDefaultController<Uint8Array>,
    intervalMs: number,
    pieceFrame: JsonFrame = (json) => json,
  ) {
    this.#controller = controller;
    this.#intervalMs = intervalMs;
    this.#pieceFrame = pieceFrame;
  }

  push(text: string): void {
    if (!this.#open || this.#finished) return;
    this.#framePiece();
    this.#pending += text;
    this.#queued();
  }

  pushPiece(text: string, json: (text: string) => string): void {
    if (!this.#open || this.#finished) return;
    if (json !== this.#pieceJson) {
      this.#framePiece();
      this.#pieceJson = json;
    }
    this.#piece += text;
    this.#queued();
  }

  /** Something waits: written now while the first writes go out at once, else when it is due. */
  #queued(): void {
    if (this.#flushes < 2 && !this.#scheduled) this.#writeNow();
    else this.#schedule();
  }

  /** Moves the joined pieces, as one frame, into what the next write sends. */
  #framePiece(): void {
    if (this.#pieceJson === undefined) return;
    this.#pending += this.#pieceFrame(this.#pieceJson(this.#piece));
    this.#piece = "";
    this.#pieceJson = undefined;
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#writeNow();
  }

  pull(): void {
    this.#readerWaiting = true;
    if (this.#due) this.#writeNow();
  }

  cancel(): void {
    this.#open = false;
    this.#pending = "";
    this.#piece = "";
    this.#pieceJson = undefined;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    // Due already: the client's next read writes it, with whatever comes meanwhile.
    if (this.#scheduled || this.#due || !this.#open) return;
    this.#scheduled = true;
    const early = this.#lastFlush + this.#intervalMs - performance.now();
    if (early > 0) this.#timer = setTimeout(this.#afterDispatch, early);
    else this.#afterDispatch();
  }

  #writeNow(): void {
    this.#scheduled = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#open) return;
    if (!this.#readerWaiting) {
      this.#due = true;
      return;
    }
    this.#due = false;
    this.#framePiece();
    if (this.#pending) {
      this.#readerWaiting = false;
      this.#lastFlush = performance.now();
      this.#flushes++;
      const text = this.#pending;
      this.#pending = "";
      this.#controller.enqueue(encoder.encode(text));
    }
    if (this.#finished) {
      this.#open = false;
      this.#controller.close();
    }
  }
}
