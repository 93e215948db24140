/**
 * Message searches handed to a search worker through shared memory instead of `postMessage`.
 *
 * Why: a `postMessage` round trip is the most the event loop spends on a search outside Deno's own
 * HTTP handling, and what a worker message allocates on the way in and out (its serialisation, the
 * `MessageEvent`, the reply) survives V8's young-generation collections. In a bare `Deno.serve`
 * that answered through a worker, 160 bytes per request survived them with `postMessage` and none
 * with a shared-memory hand-off, which also answered 21.5k requests/s against 13k. In our server,
 * under the memory bench's eight searching clients, six paired runs gave: event loop per search
 * lower in all six (148-186 µs against 155-198), more searches per second in five, health p99 under
 * that load lower in four (median 2.40 ms against 2.56).
 *
 * A lane is one request slot in the shared buffer: the event loop writes the query into a free lane
 * and marks it asked, rings the doorbell (a counter the worker waits on) and waits on the lane's
 * state with `Atomics.waitAsync`; the worker writes the body (or an error) into the same lane, marks
 * it and notifies. A lane is free again only once the worker is done with it; when the worker is
 * replaced or closed, its lanes are abandoned (their waits ended) and dropped with the whole buffer.
 *
 * Layout: `Int32Array` header (the doorbell, then per lane its state, request and answer lengths),
 * then each lane's bytes (the request, then overwritten by the answer).
 * @module
 */

/** Lanes per worker: more searches than this at once go by `postMessage`. */
export const SEARCH_LANES = 8;
/** Bytes per lane: a longer query or a larger answer goes by `postMessage`. */
export const SEARCH_LANE_BYTES = 128 * 1024;

const FREE = 0;
const ASKED = 1;
const ANSWERED = 2;
const FAILED = 3;
const TOO_LARGE = 4;

/** Int32 fields per lane in the header: state, request length, answer length. */
const FIELDS = 3;

/** A message search as a lane carries it. */
export interface LaneSearch {
  query: string;
  limit: number;
  conversationId?: string;
}

/** A lane's outcome: the HTTP body, the worker's error, or an answer too large for a lane. */
export type LaneAnswer = { body: Uint8Array<ArrayBuffer> } | { error: string } | { tooLarge: true };

function headerInts(lanes: number): number {
  return 1 + lanes * FIELDS;
}

function laneOffset(lanes: number, laneBytes: number, lane: number): number {
  return headerInts(lanes) * 4 + lane * laneBytes;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The event loop's side: one per worker, its buffer sent to the worker once. */
export class SearchLanes {
  readonly buffer: SharedArrayBuffer;
  #header: Int32Array;
  #bytes: Uint8Array;
  /** Each lane's bytes, for writing a request in place. */
  #lanes: Uint8Array[];
  #free: number[];
  #abandoned = false;

  constructor(readonly lanes = SEARCH_LANES, readonly laneBytes = SEARCH_LANE_BYTES) {
    this.buffer = new SharedArrayBuffer(laneOffset(lanes, laneBytes, lanes));
    this.#header = new Int32Array(this.buffer, 0, headerInts(lanes));
    this.#bytes = new Uint8Array(this.buffer);
    this.#lanes = Array.from(
      { length: lanes },
      (_, lane) => new Uint8Array(this.buffer, laneOffset(lanes, laneBytes, lane), laneBytes),
    );
    this.#free = Array.from({ length: lanes }, (_, i) => lanes - 1 - i);
  }

  /**
   * Asks the worker for `search`'s body through a free lane. Null when no lane is free, the query
   * does not fit one (the caller posts a message instead) or the lanes were abandoned. The promise
   * never rejects; it stays pending while the worker does not answer (its owner times the search
   * out, replaces the worker and {@link abandon}s these lanes).
   *
   * The wait has no timeout of its own: V8 queues a delayed task per timed wait that stays queued
   * until its time even when the wait ends long before. At 2,500 searches a second with a 10 s
   * timeout, ~25,000 of them were queued at a time, and once they started coming due the event
   * loop's CPU per search rose by 14% (measured on the memory bench's load, 10 s windows).
   */
  ask(search: LaneSearch): Promise<LaneAnswer> | null {
    if (this.#free.length === 0 || this.#abandoned) return null;
    const request = JSON.stringify([search.query, search.limit, search.conversationId ?? null]);
    const lane = this.#free.pop()!;
    // Encoded straight into the lane (no copy to make on the event loop); a request that does not fit goes by message.
    const { read: encoded, written } = encoder.encodeInto(request, this.#lanes[lane]);
    if (encoded < request.length) {
      this.#free.push(lane);
      return null;
    }
    const state = 1 + lane * FIELDS;
    const at = laneOffset(this.lanes, this.laneBytes, lane);
    const header = this.#header;
    Atomics.store(header, state + 1, written);
    Atomics.store(header, state, ASKED);
    Atomics.add(header, 0, 1);
    Atomics.notify(header, 0);
    const waited = Atomics.waitAsync(header, state, ASKED);
    const read = (): LaneAnswer | Promise<never> => {
      const outcome = Atomics.load(header, state);
      // Still asked: the lanes were abandoned; the search was failed by the owner, the lane stays taken.
      if (outcome === ASKED) return new Promise<never>(() => {});
      const length = Atomics.load(header, state + 2);
      const answer: LaneAnswer = outcome === ANSWERED
        ? { body: this.#bytes.slice(at, at + length) as Uint8Array<ArrayBuffer> }
        : outcome === FAILED
        ? { error: decoder.decode(this.#bytes.slice(at, at + length)) }
        : { tooLarge: true };
      Atomics.store(header, state, FREE);
      this.#free.push(lane);
      return answer;
    };
    return waited.async ? waited.value.then(read) : Promise.resolve().then(read);
  }

  /**
   * The worker is gone (stuck and replaced, or closed): ends every wait on these lanes, so that
   * none is held for a notify that will never come, and refuses new searches. A search still
   * waiting then never settles; its owner has failed it already. Returns how many waits it ended.
   */
  abandon(): number {
    this.#abandoned = true;
    let woken = 0;
    for (let lane = 0; lane < this.lanes; lane++) woken += Atomics.notify(this.#header, 1 + lane * FIELDS);
    return woken;
  }
}

/**
 * The worker's side: answers every asked lane of `buffer` (made by a {@link SearchLanes} of the same
 * shape) with `answer`'s body, then waits for the doorbell again; `afterEach` runs after each answer.
 * Runs on the worker's event loop (`Atomics.waitAsync`), so its messages are still handled.
 */
export function serveSearchLanes(
  buffer: SharedArrayBuffer,
  answer: (search: LaneSearch) => Uint8Array,
  afterEach: () => void = () => {},
  lanes = SEARCH_LANES,
  laneBytes = SEARCH_LANE_BYTES,
): void {
  const header = new Int32Array(buffer, 0, headerInts(lanes));
  const bytes = new Uint8Array(buffer);
  // When the doorbell rang during a pass, the next pass is a task of its own rather than a loop:
  // the worker's messages (fact searches, close) must not wait until the searching stops.
  const again = new MessageChannel();
  again.port2.onmessage = () => serve();
  const serve = (): void => {
    const rung = Atomics.load(header, 0);
    for (let lane = 0; lane < lanes; lane++) {
      const state = 1 + lane * FIELDS;
      if (Atomics.load(header, state) !== ASKED) continue;
      const at = laneOffset(lanes, laneBytes, lane);
      let outcome = ANSWERED;
      let out: Uint8Array;
      try {
        const [query, limit, conversationId] = JSON.parse(
          decoder.decode(bytes.slice(at, at + Atomics.load(header, state + 1))),
        ) as [string, number, string | null];
        out = answer({ query, limit, ...(conversationId === null ? {} : { conversationId }) });
        if (out.length > laneBytes) {
          outcome = TOO_LARGE;
          out = new Uint8Array();
        }
      } catch (error) {
        outcome = FAILED;
        out = encoder.encode(error instanceof Error ? error.message : String(error)).subarray(0, laneBytes);
      }
      bytes.set(out, at);
      Atomics.store(header, state + 2, out.length);
      Atomics.store(header, state, outcome);
      Atomics.notify(header, state);
      afterEach();
    }
    // A ring after `rung` was read is not missed: the wait returns at once when the doorbell moved.
    const rang = Atomics.waitAsync(header, 0, rung);
    if (rang.async) rang.value.then(serve);
    else again.port1.postMessage(null);
  };
  serve();
}
