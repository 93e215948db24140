/**
 * {@link KeywordThread}: a worker that reads a hybrid query's keyword list (FTS5) while the index
 * worker that owns it searches the vector index, so a hybrid query costs about the slower of its
 * two lists instead of their sum, when a core is free for it. When none is (a busy machine: the
 * worker had not even woken by the time the vector search ended, ~1 ms), the asker takes the job
 * back and reads the list itself (`KeywordJob.withdraw`) rather than wait for the worker to get a
 * core, then for the reply to wake it: both threads then shared one core anyway.
 *
 * A job and its answer pass through shared memory ({@link KeywordChannel}), not messages: the worker
 * waits on it with `Atomics.wait`, the asker wakes it with `Atomics.notify` and, once its vector
 * list is done, waits for the answer the same way. A `postMessage` cost its sender ~0.12 ms of CPU
 * (p99 ~0.3-1 ms) and an `Atomics.notify` to an `Atomics.waitAsync` waiter as much (both wake the
 * other side's event loop), where a notify to a thread blocked in `Atomics.wait` costs ~0.01 ms;
 * the asker paid that post before starting its vector search, on every hybrid query (p50 0.27 ms,
 * p99 1.1 ms of a ~1.4 ms query in the index worker, measured per stage at 100k messages).
 */
import { MEMORY_SEARCH_TIMEOUT_MS } from "../../config/mod.ts";
import { TabAgentError } from "../../errors/mod.ts";
import { openStoreReadOnly, storeFile } from "../stores.ts";
import type { KeywordJob, KeywordSources } from "./engine.ts";
import { MAX_QUERY_DEPTH, type MemoryQuery } from "./schema.ts";

/** Read-only connections to the stores a keyword list reads (for a worker thread of its own). */
export function openKeywordSources(storeDir: string): KeywordSources {
  return {
    conversations: openStoreReadOnly(`${storeDir}/${storeFile("conversations")}`),
    knowledge: openStoreReadOnly(`${storeDir}/${storeFile("knowledge")}`),
    tool_results: openStoreReadOnly(`${storeDir}/${storeFile("tool_results")}`),
  };
}

/** Closes what {@link openKeywordSources} opened. */
export function closeKeywordSources(sources: KeywordSources | undefined): void {
  sources?.conversations.close();
  sources?.knowledge.close();
  sources?.tool_results.close();
}

/**
 * Positions in the control array of a {@link KeywordChannel}. `claim` holds the waiting job's token,
 * minus the token once the worker took it, and 0 once the asker took it back (or before any job): a
 * job takes it with an atomic compare-and-swap, so exactly one side runs it. `done` holds the token
 * of the last job the worker answered (minus it for an error), `length` the answer's length (keys,
 * or bytes of the error message), `request` the request's length in bytes, `close` 1 once the
 * worker is to stop.
 */
export const CONTROL = { claim: 0, done: 1, length: 2, request: 3, close: 4 } as const;
const CONTROL_BYTES = 8 * Int32Array.BYTES_PER_ELEMENT;
/** Room for a request (the query as JSON): a query that does not fit runs in the asker. */
export const REQUEST_BYTES = 64 * 1024;
/** Room for an answer: a keyword list is at most `MAX_QUERY_DEPTH` keys. */
const ANSWER_BYTES = MAX_QUERY_DEPTH * Float64Array.BYTES_PER_ELEMENT;
/** How long the idle worker blocks before it goes back to its event loop (where `terminate()` can end it). */
export const IDLE_WAIT_MS = 1_000;

/** The memory an asker and its keyword worker share: one job at a time. */
export interface KeywordChannel {
  control: Int32Array;
  /** The request: `{ query, fused }` as UTF-8 JSON. */
  request: Uint8Array;
  /** The answer's keys, best first. */
  keys: Float64Array;
  /** The answer's error message (UTF-8), over the same memory as `keys`. */
  error: Uint8Array;
}

/** A channel over `buffer` (new shared memory when none is given). */
export function keywordChannel(
  buffer = new SharedArrayBuffer(CONTROL_BYTES + REQUEST_BYTES + ANSWER_BYTES),
): KeywordChannel {
  return {
    control: new Int32Array(buffer, 0, CONTROL_BYTES / Int32Array.BYTES_PER_ELEMENT),
    request: new Uint8Array(buffer, CONTROL_BYTES, REQUEST_BYTES),
    keys: new Float64Array(buffer, CONTROL_BYTES + REQUEST_BYTES, MAX_QUERY_DEPTH),
    error: new Uint8Array(buffer, CONTROL_BYTES + REQUEST_BYTES, ANSWER_BYTES),
  };
}

/**
 * Whether the worker may run job `token` (and now owns it); false when the asker took it back
 * first, or when a newer job replaced it.
 */
export function claimJob(control: Int32Array, token: number): boolean {
  return Atomics.compareExchange(control, CONTROL.claim, token, -token) === token;
}

/** What the keyword worker is sent once, when it starts. */
export type KeywordInit = { storeDir: string; buffer: SharedArrayBuffer };

/** What it answers when it has stopped. */
export type KeywordClosed = { closed: true };

/** A job's request as the worker reads it. */
export interface KeywordRequest {
  query: MemoryQuery;
  fused: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The keyword worker of one stores folder (its connections open on first use); one that fails or
 * stops answering is replaced on the next job.
 *
 * @example
 * ```ts
 * const keywords = new KeywordThread("/data/tabagent_db");
 * const result = runQueryConcurrently(sources, query, vector, (q, fused) => keywords.job(q, fused));
 * await keywords.close();
 * ```
 */
export class KeywordThread {
  #worker: Worker | null = null;
  #channel!: KeywordChannel;
  #next = 1;
  /** Set when the worker stops: its `closed` message. */
  #closed: PromiseWithResolvers<void> | null = null;

  constructor(private readonly storeDir: string) {
    this.#worker = this.#spawn();
  }

  #spawn(): Worker {
    const worker = new Worker(new URL("./_keyword_worker.ts", import.meta.url), { type: "module" });
    const buffer = new SharedArrayBuffer(CONTROL_BYTES + REQUEST_BYTES + ANSWER_BYTES);
    this.#channel = keywordChannel(buffer);
    const closed = this.#closed = Promise.withResolvers<void>();
    worker.onmessage = () => closed.resolve();
    worker.onerror = (event) => {
      event.preventDefault();
      this.#retire(worker);
    };
    worker.postMessage({ storeDir: this.storeDir, buffer } satisfies KeywordInit);
    return worker;
  }

  /** Stops `worker` for good; a job waiting on it is taken back by its asker, or times out. */
  #retire(worker: Worker): void {
    worker.terminate();
    if (this.#worker === worker) this.#worker = null, this.#closed?.resolve();
  }

  /** The keyword list of `query` (see `keywordKeysOf`), read in the worker (this thread waits for it). */
  keys(query: MemoryQuery, fused: boolean): Promise<number[]> {
    try {
      const keys = this.job(query, fused).take();
      return keys ? Promise.resolve(keys) : Promise.reject(new TabAgentError("timeout", "The keyword worker stalled"));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Hands the worker the keyword list of `query`; the caller may take the job back until the
   * worker starts it. One job at a time: the caller takes back or waits for one before the next.
   */
  job(query: MemoryQuery, fused: boolean): KeywordJob {
    const worker = this.#worker ??= this.#spawn();
    const { control, request } = this.#channel;
    const token = (this.#next++ % 0x3fff_ffff) + 1; // a positive int32, so that its negative marks a taken job
    // the keyword list never reads the query's vector
    const { vector: _unused, ...words } = query;
    const json = JSON.stringify({ query: words, fused } satisfies KeywordRequest);
    const { read, written } = encoder.encodeInto(json, request);
    if (read < json.length) return { withdraw: () => true, take: () => null }; // too long: the caller reads it
    Atomics.store(control, CONTROL.request, written);
    Atomics.store(control, CONTROL.claim, token);
    Atomics.notify(control, CONTROL.claim);
    return {
      withdraw: () => Atomics.compareExchange(control, CONTROL.claim, token, 0) === token,
      take: () => this.#take(worker, token),
    };
  }

  /** Waits for the answer to job `token`, which the worker took; null when it did not come in time. */
  #take(worker: Worker, token: number): number[] | null {
    const channel = this.#channel;
    const { control } = channel;
    const deadline = performance.now() + MEMORY_SEARCH_TIMEOUT_MS;
    let done = Atomics.load(control, CONTROL.done);
    while (done !== token && done !== -token) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(control, CONTROL.done, done, left) === "timed-out") {
        // a worker that holds a job this long is stuck: the next job gets a fresh one
        this.#retire(worker);
        return null;
      }
      done = Atomics.load(control, CONTROL.done);
    }
    const length = Atomics.load(control, CONTROL.length);
    if (done < 0) {
      const message = decoder.decode(channel.error.slice(0, length));
      throw new TabAgentError("internal", `Keyword search failed: ${message}`);
    }
    const keys = new Array<number>(length);
    for (let i = 0; i < length; i++) keys[i] = channel.keys[i];
    return keys;
  }

  /** Closes the worker's connections and stops it. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    const closed = this.#closed!;
    Atomics.store(this.#channel.control, CONTROL.close, 1);
    Atomics.notify(this.#channel.control, CONTROL.claim);
    await closed.promise;
    this.#retire(worker);
  }
}

/**
 * The worker's side: serves jobs from `channel`, running each with `run` and blocking this thread
 * between jobs, until asked to close (true) or until none came for {@link IDLE_WAIT_MS} (false:
 * call it again from the event loop, where a `terminate()` can end the worker, which it cannot
 * while this loop blocks).
 */
export function serveKeywordJobs(channel: KeywordChannel, run: (request: KeywordRequest) => number[]): boolean {
  const { control } = channel;
  for (;;) {
    if (Atomics.load(control, CONTROL.close) !== 0) return true;
    const claim = Atomics.load(control, CONTROL.claim);
    if (claim <= 0 || !claimJob(control, claim)) {
      if (Atomics.wait(control, CONTROL.claim, claim, IDLE_WAIT_MS) === "timed-out") return false;
      continue;
    }
    let answer = claim;
    let length: number;
    try {
      const size = Atomics.load(control, CONTROL.request);
      const request = JSON.parse(decoder.decode(channel.request.slice(0, size))) as KeywordRequest;
      const keys = run(request);
      channel.keys.set(keys);
      length = keys.length;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      length = encoder.encodeInto(message, channel.error).written;
      answer = -claim;
    }
    Atomics.store(control, CONTROL.length, length);
    Atomics.store(control, CONTROL.done, answer);
    Atomics.notify(control, CONTROL.done);
  }
}
