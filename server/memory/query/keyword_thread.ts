/**
 * {@link KeywordThread}: a worker that reads a hybrid query's keyword list (FTS5) while the index
 * worker that owns it searches the vector index, so a hybrid query costs about the slower of its
 * two lists instead of their sum.
 */
import { TabAgentError } from "../../errors/mod.ts";
import { openStoreReadOnly, storeFile } from "../stores.ts";
import type { KeywordSources } from "./engine.ts";
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
  | { id: number; kind: "keywords"; storeDir: string; query: MemoryQuery; fused: boolean }
  | { id: number; kind: "close" };

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
    return worker;
  }

  /** The keyword list of `query` (see `keywordKeysOf`), read in the worker. */
  keys(query: MemoryQuery, fused: boolean): Promise<number[]> {
    this.#worker ??= this.#spawn();
    const id = this.#next++;
    const done = Promise.withResolvers<number[]>();
    this.#pending.set(id, done);
    // the keyword list never reads the query's vector; cloning its JS array would cost more than the rest
    const { vector: _unused, ...words } = query;
    this.#worker.postMessage(
      { id, kind: "keywords", storeDir: this.storeDir, query: words, fused } satisfies KeywordRequest,
    );
    return done.promise;
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
