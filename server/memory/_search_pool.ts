/**
 * A small pool of search workers. Each request goes to the least busy worker; one that runs past
 * its deadline is terminated (SQLite cannot be interrupted from outside) and replaced, and the
 * caller gets a `timeout` error.
 *
 * Deadlines are checked by one shared sweep while searches are pending, not by a timer and a
 * `Promise.race` per search: under eight searching clients those were a tenth of the event loop's
 * own work per search, work that every `/v1/health` call waiting behind it paid for. A deadline is
 * therefore enforced to within a sweep (a tenth of the timeout, at most a second).
 */
import { MEMORY_SEARCH_WORKER_STARTUP_MS } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import { InFlight } from "../inflight/mod.ts";
import { SearchLanes } from "./_search_lanes.ts";

/** A message to a search worker. */
export type SearchRequest =
  | { id: number; kind: "init"; dir: string; lanes: SharedArrayBuffer }
  | { id: number; kind: "close" }
  | {
    id: number;
    kind: "messages";
    query: string;
    limit: number;
    conversationId?: string;
    /** "body": answer the HTTP body itself (see {@link SearchPool.body}) instead of the rows. */
    answer?: "rows" | "body";
  }
  | { id: number; kind: "facts"; query: string; limit: number };

/** A worker's answer: rows, the HTTP body (its buffer transferred, not copied), or an error. */
export type SearchReply =
  | { id: number; rows: Record<string, unknown>[] }
  | { id: number; body: Uint8Array<ArrayBuffer> }
  | { id: number; error: string };

/** A successful answer. */
type Answer = Exclude<SearchReply, { error: string }>;

type Query = Exclude<SearchRequest, { kind: "init" | "close" }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message search as a query asks for it (before the pool numbers it). */
type MessageQuery = Omit<Extract<Query, { kind: "messages" }>, "id">;

interface Slot {
  worker: Worker;
  /** Settles when the worker has opened its connections (its `init` reply). */
  ready: Promise<unknown>;
  /** True once `ready` settled: queries skip the start-up wait (a timer and a race each). */
  started: boolean;
  /** Queries waiting for the worker, under the id their reply carries (an InFlight, not a Map: see there). */
  pending: InFlight<Waiter>;
  /** Message searches for the HTTP body go through these (see `_search_lanes.ts`). */
  lanes: SearchLanes;
}

interface Waiter {
  resolve: (answer: Answer) => void;
  reject: (error: unknown) => void;
  /** When the query times out (`performance.now()` time); Infinity for a worker's init and close. */
  deadline: number;
}

/** The body of a body search's answer. */
function bodyOf(answer: Answer): Uint8Array<ArrayBuffer> {
  if (!("body" in answer)) throw new TabAgentError("internal", "Search failed: the worker sent no body");
  return answer.body;
}

/** Runs FTS queries in `size` workers with their own read-only connections to the stores in `dir`. */
export class SearchPool {
  #slots: Slot[] = [];
  #closed = false;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #sweepMs: number;

  constructor(
    private readonly options: {
      dir: string;
      size: number;
      timeoutMs: number;
      /** The worker's module (default `_search_worker.ts`); tests give one that never answers a query. */
      worker?: URL;
    },
  ) {
    this.#sweepMs = Math.min(1000, Math.max(10, Math.floor(options.timeoutMs / 10)));
    for (let i = 0; i < options.size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const worker = new Worker(this.options.worker ?? new URL("./_search_worker.ts", import.meta.url), {
      type: "module",
    });
    const lanes = new SearchLanes();
    const slot: Slot = { worker, pending: new InFlight(), ready: Promise.resolve(), started: false, lanes };
    worker.onmessage = (event: MessageEvent<SearchReply>) => {
      const reply = event.data;
      const waiter = slot.pending.take(reply.id);
      if (!waiter) return;
      if ("error" in reply) {
        waiter.reject(new TabAgentError("internal", `Search failed: ${reply.error}`));
      } else waiter.resolve(reply);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#replace(slot, new TabAgentError("internal", `Search worker failed: ${event.message}`));
    };
    // A failed init surfaces through onerror (which replaces the slot) and on the first query.
    slot.ready = this.#send(slot, { kind: "init", dir: this.options.dir, lanes: lanes.buffer }).catch(() => {}).finally(
      () => {
        slot.started = true;
      },
    );
    return slot;
  }

  #replace(slot: Slot, error: TabAgentError): void {
    slot.worker.terminate();
    slot.lanes.abandon();
    for (const waiter of slot.pending.values()) waiter.reject(error);
    slot.pending.clear();
    const index = this.#slots.indexOf(slot);
    if (index >= 0 && !this.#closed) this.#slots[index] = this.#spawn();
  }

  #send(
    slot: Slot,
    request: DistributiveOmit<SearchRequest, "id">,
    deadline = Infinity,
  ): Promise<Answer> {
    const { promise, resolve, reject } = Promise.withResolvers<Answer>();
    const id = slot.pending.add({ resolve, reject, deadline });
    slot.worker.postMessage({ ...request, id });
    this.#timeSearches(deadline);
    return promise;
  }

  #timeSearches(deadline: number): void {
    if (deadline !== Infinity && this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), this.#sweepMs);
      // Never keep the process alive just to time searches out.
      Deno.unrefTimer(this.#sweeper as unknown as number);
    }
  }

  /**
   * A message search's body through one of the worker's lanes, timed and failed like a posted
   * query (it waits in `pending` alike); null when no lane can take it. An answer too large for a
   * lane is asked again by message.
   */
  #askLane(slot: Slot, request: MessageQuery, deadline: number): Promise<Answer> | null {
    // Past the deadline the sweep replaces the worker, and the lanes go with it.
    const asked = slot.lanes.ask(request);
    if (asked === null) return null;
    const { promise, resolve, reject } = Promise.withResolvers<Answer>();
    const id = slot.pending.add({ resolve, reject, deadline });
    this.#timeSearches(deadline);
    asked.then((answer) => {
      if (!slot.pending.delete(id)) return; // timed out or closed meanwhile: already failed
      if ("body" in answer) resolve({ id, body: answer.body });
      else if ("error" in answer) reject(new TabAgentError("internal", `Search failed: ${answer.error}`));
      else this.#send(slot, request, deadline).then(resolve, reject);
    });
    return promise;
  }

  /** Times out the queries past their deadline (replacing their workers); stops when none has one. */
  #sweep(): void {
    const now = performance.now();
    let timed = 0;
    for (const slot of [...this.#slots]) {
      for (const waiter of slot.pending.values()) {
        if (waiter.deadline === Infinity) continue;
        if (waiter.deadline > now) {
          timed++;
          continue;
        }
        // The worker is stuck in this query: it goes, and every query waiting on it fails alike.
        this.#replace(
          slot,
          new TabAgentError(
            "timeout",
            `The search did not finish within ${this.options.timeoutMs} ms; use fewer or rarer words`,
          ),
        );
        break;
      }
    }
    if (timed === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Runs one query in the least busy worker; resolves with its rows. */
  async run(request: DistributiveOmit<Query, "id">): Promise<Record<string, unknown>[]> {
    const answer = await this.#query(request);
    if (!("rows" in answer)) throw new TabAgentError("internal", "Search failed: the worker sent no rows");
    return answer.rows;
  }

  /**
   * Runs a message search in the least busy worker; resolves with the HTTP route's body, built there
   * (`{"hits": [...]}`, see `searchHitsBody` in `_rows.ts`) and handed over without a copy. The event loop
   * then neither decodes rows nor encodes JSON: what a `/v1/health` call queued behind a burst of
   * searches would otherwise wait for. For the same reason no `async` layer stands between the caller
   * and the lane (each was a promise and a microtask turn per search).
   */
  body(request: Omit<MessageQuery, "kind" | "answer">): Promise<Uint8Array<ArrayBuffer>> {
    return this.#query({ ...request, kind: "messages", answer: "body" }).then(bodyOf);
  }

  /** Runs `request` in the least busy worker: a body search through a lane when one can take it. */
  #query(request: DistributiveOmit<Query, "id">): Promise<Answer> {
    if (this.#closed) return Promise.reject(new TabAgentError("unavailable", "Memory is closed"));
    let slot = this.#slots[0];
    for (const candidate of this.#slots) if (candidate.pending.size < slot.pending.size) slot = candidate;
    if (slot.started) return this.#ask(slot, request);
    // The deadline is the query's, not the worker's start-up: a worker starting at low priority on a
    // busy machine (or type-checked under `deno test`) took over 10 s at a load average of 30.
    return this.#startup(slot).then(() => {
      if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed"); // closed while it started
      return this.#ask(slot, request);
    });
  }

  /** Asks `slot`'s worker, its deadline counted from now. */
  #ask(slot: Slot, request: DistributiveOmit<Query, "id">): Promise<Answer> {
    const deadline = performance.now() + this.options.timeoutMs;
    // Lanes carry bodies only; rows (and a body too large for a lane, re-sent by #askLane) go by message.
    const laned = request.kind === "messages" && request.answer === "body"
      ? this.#askLane(slot, request, deadline)
      : null;
    return laned ?? this.#send(slot, request, deadline);
  }

  /** Waits for a worker's start-up, bounded so that a worker that never starts still fails the query. */
  async #startup(slot: Slot): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        slot.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new TabAgentError("unavailable", "The search worker did not start; try again");
            reject(error);
            this.#replace(slot, error);
          }, MEMORY_SEARCH_WORKER_STARTUP_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Closes the workers' connections (so no handle on the store files outlives the pool: a restore
   * swaps them next) and terminates the workers; pending searches fail with `unavailable`.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await Promise.all(this.#slots.map((slot) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        this.#send(slot, { kind: "close" }).catch(() => {}), // a dead worker is closed already
        new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
      ]).finally(() => clearTimeout(timer));
    }));
    for (const slot of this.#slots) {
      slot.worker.terminate();
      slot.lanes.abandon();
      for (const waiter of slot.pending.values()) {
        waiter.reject(new TabAgentError("unavailable", "Memory is closing"));
      }
    }
    this.#slots = [];
  }
}
