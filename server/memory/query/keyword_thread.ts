/**
 * {@link KeywordThread}: a worker that reads a hybrid query's keyword list (FTS5) while the index
 * worker that owns it searches the vector index, so a hybrid query costs about the slower of its
 * two lists instead of their sum, when a core is free for it. When none is (a busy machine: the
 * worker had not even woken by the time the vector search ended, ~1 ms), the asker takes the job
 * back and reads the list itself (`KeywordJob.withdraw`) rather than wait for the worker to get a
 * core, then for the reply to wake it: both threads then shared one core anyway.
 */
import { TabAgentError } from "../../errors/mod.ts";
import { openStoreReadOnly, storeFile } from "../stores.ts";
import type { KeywordJob, KeywordSources } from "./engine.ts";
import type { MemoryQuery } from "./schema.ts";

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

/** A message to the keyword worker. */
export type KeywordRequest =
  | { id: number; kind: "claims"; claims: SharedArrayBuffer }
  | { id: number; kind: "keywords"; storeDir: string; query: MemoryQuery; fused: boolean; slot: number; token: number }
  | { id: number; kind: "close" };

/**
 * Slots of the claims array, one per job in flight (a ring: a hybrid query has one job out at a
 * time). A slot holds its job's token while the job waits, minus the token once the worker took
 * it, and 0 once the asker took it back; a job takes the slot with an atomic compare-and-swap, so
 * exactly one side runs it.
 */
export const CLAIM_SLOTS = 256;

/**
 * Whether the worker may run job `token` in `slot` of `claims` (and now owns it); false when the
 * asker took it back first.
 */
export function claimJob(claims: Int32Array, slot: number, token: number): boolean {
  return Atomics.compareExchange(claims, slot, token, -token) === token;
}

/** Its answer: the keyword list's item keys, best first. */
export type KeywordReply = { id: number; keys: number[] } | { id: number; error: string };

/**
 * The keyword worker of one stores folder (its connections open on first use); one that fails is
 * replaced on the next call (its pending calls are rejected).
 *
 * @example
 * ```ts
 * const keywords = new KeywordThread("/data/tabagent_db");
 * const result = await runQueryConcurrently(sources, query, vector, (q, fused) => keywords.keys(q, fused));
 * await keywords.close();
 * ```
 */
export class KeywordThread {
  #worker: Worker | null = null;
  #pending = new Map<number, { resolve: (keys: number[]) => void; reject: (error: unknown) => void }>();
  #next = 1;
  /** Shared with every worker this thread starts (see {@link CLAIM_SLOTS}). */
  readonly #claims = new Int32Array(new SharedArrayBuffer(CLAIM_SLOTS * Int32Array.BYTES_PER_ELEMENT));

  constructor(private readonly storeDir: string) {
    this.#worker = this.#spawn();
  }

  #spawn(): Worker {
    const worker = new Worker(new URL("./_keyword_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent<KeywordReply>) => {
      const reply = event.data;
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if ("error" in reply) waiter.reject(new TabAgentError("internal", `Keyword search failed: ${reply.error}`));
      else waiter.resolve(reply.keys);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      if (this.#worker === worker) this.#worker = null;
      for (const waiter of this.#pending.values()) {
        waiter.reject(new TabAgentError("internal", `The keyword worker failed: ${event.message}`));
      }
      this.#pending.clear();
    };
    worker.postMessage(
      { id: 0, kind: "claims", claims: this.#claims.buffer as SharedArrayBuffer } satisfies KeywordRequest,
    );
    return worker;
  }

  /** The keyword list of `query` (see `keywordKeysOf`), read in the worker. */
  keys(query: MemoryQuery, fused: boolean): Promise<number[]> {
    return this.job(query, fused).keys;
  }

  /** Asks the worker for the keyword list of `query`; the caller may take the job back until the worker starts it. */
  job(query: MemoryQuery, fused: boolean): KeywordJob {
    this.#worker ??= this.#spawn();
    const id = this.#next++;
    const slot = id % CLAIM_SLOTS;
    const token = (id % 0x3fff_ffff) + 1; // a positive int32, so that its negative marks a taken job
    const done = Promise.withResolvers<number[]>();
    this.#pending.set(id, done);
    Atomics.store(this.#claims, slot, token);
    // the keyword list never reads the query's vector; cloning its JS array would cost more than the rest
    const { vector: _unused, ...words } = query;
    this.#worker.postMessage(
      { id, kind: "keywords", storeDir: this.storeDir, query: words, fused, slot, token } satisfies KeywordRequest,
    );
    return {
      keys: done.promise,
      withdraw: () => {
        if (Atomics.compareExchange(this.#claims, slot, token, 0) !== token) return false;
        this.#pending.delete(id); // the worker answers a withdrawn job with nothing to wait for
        return true;
      },
    };
  }

  /** Closes the worker's connections and stops it. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    const id = this.#next++;
    const done = Promise.withResolvers<number[]>();
    this.#pending.set(id, done);
    worker.postMessage({ id, kind: "close" } satisfies KeywordRequest);
    await done.promise.catch(() => {});
    worker.terminate();
    this.#worker = null;
    for (const waiter of this.#pending.values()) {
      waiter.reject(new TabAgentError("unavailable", "The keyword worker is closing"));
    }
    this.#pending.clear();
  }
}
