/**
 * A small pool of search workers. Each request goes to the least busy worker; one that runs past
 * its deadline is terminated (SQLite cannot be interrupted from outside) and replaced, and the
 * caller gets a `timeout` error.
 */
import { MEMORY_SEARCH_WORKER_STARTUP_MS } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";

/** A message to a search worker. */
export type SearchRequest =
  | { id: number; kind: "init"; dir: string }
  | { id: number; kind: "close" }
  | { id: number; kind: "messages"; query: string; limit: number; conversationId?: string }
  | { id: number; kind: "facts"; query: string; limit: number };

/** A worker's answer. */
export type SearchReply = { id: number; rows: Record<string, unknown>[] } | { id: number; error: string };

type Query = Exclude<SearchRequest, { kind: "init" | "close" }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Slot {
  worker: Worker;
  /** Settles when the worker has opened its connections (its `init` reply). */
  ready: Promise<unknown>;
  /** True once `ready` settled: queries skip the start-up wait (a timer and a race each). */
  started: boolean;
  pending: Map<number, { resolve: (rows: Record<string, unknown>[]) => void; reject: (error: unknown) => void }>;
}

/** Runs FTS queries in `size` workers with their own read-only connections to the stores in `dir`. */
export class SearchPool {
  #slots: Slot[] = [];
  #next = 1;
  #closed = false;

  constructor(private readonly options: { dir: string; size: number; timeoutMs: number }) {
    for (let i = 0; i < options.size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const worker = new Worker(new URL("./_search_worker.ts", import.meta.url), { type: "module" });
    const slot: Slot = { worker, pending: new Map(), ready: Promise.resolve(), started: false };
    worker.onmessage = (event: MessageEvent<SearchReply>) => {
      const reply = event.data;
      const waiter = slot.pending.get(reply.id);
      if (!waiter) return;
      slot.pending.delete(reply.id);
      if ("error" in reply) {
        waiter.reject(new TabAgentError("internal", `Search failed: ${reply.error}`));
      } else waiter.resolve(reply.rows);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#replace(slot, new TabAgentError("internal", `Search worker failed: ${event.message}`));
    };
    // A failed init surfaces through onerror (which replaces the slot) and on the first query.
    slot.ready = this.#send(slot, { kind: "init", dir: this.options.dir }).catch(() => {}).finally(() => {
      slot.started = true;
    });
    return slot;
  }

  #replace(slot: Slot, error: TabAgentError): void {
    slot.worker.terminate();
    for (const waiter of slot.pending.values()) waiter.reject(error);
    slot.pending.clear();
    const index = this.#slots.indexOf(slot);
    if (index >= 0 && !this.#closed) this.#slots[index] = this.#spawn();
  }

  #send(slot: Slot, request: DistributiveOmit<SearchRequest, "id">): Promise<Record<string, unknown>[]> {
    const id = this.#next++;
    const done = Promise.withResolvers<Record<string, unknown>[]>();
    slot.pending.set(id, done);
    slot.worker.postMessage({ ...request, id });
    return done.promise;
  }

  /** Runs one query in the least busy worker. */
  async run(request: DistributiveOmit<Query, "id">): Promise<Record<string, unknown>[]> {
    if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed");
    let slot = this.#slots[0];
    for (const candidate of this.#slots) if (candidate.pending.size < slot.pending.size) slot = candidate;
    // The deadline is the query's, not the worker's start-up: a worker starting at low priority on a
    // busy machine (or type-checked under `deno test`) took over 10 s at a load average of 30.
    if (!slot.started) await this.#startup(slot);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = this.#send(slot, request);
    try {
      return await Promise.race([
        result,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new TabAgentError(
              "timeout",
              `The search did not finish within ${this.options.timeoutMs} ms; use fewer or rarer words`,
            );
            reject(error);
            this.#replace(slot, error);
          }, this.options.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
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
    await Promise.all(this.#slots.map((slot) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        this.#send(slot, { kind: "close" }).catch(() => {}), // a dead worker is closed already
        new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
      ]).finally(() => clearTimeout(timer));
    }));
    for (const slot of this.#slots) {
      slot.worker.terminate();
      for (const waiter of slot.pending.values()) {
        waiter.reject(new TabAgentError("unavailable", "Memory is closing"));
      }
    }
    this.#slots = [];
  }
}
