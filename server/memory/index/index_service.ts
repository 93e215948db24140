/**
 * {@link VectorIndexService}: the main thread's handle on the index worker. Every call is a message
 * to the worker; a worker that dies is replaced (its indexes reload from their files and the log).
 */
import { TabAgentError } from "../../errors/mod.ts";
import { InFlight } from "../../inflight/mod.ts";
import type { Logger } from "../../log/mod.ts";
import { type AnnBackendName, type AnnMatches, DEFAULT_ANN_BACKEND, type HnswParams, type Metric } from "./ann.ts";
import type { OpenOutcome } from "./vector_index.ts";
import type { MemoryQuery, MemoryQueryResult } from "../query/schema.ts";

/** The most neighbours one search may ask for. */
export const MAX_INDEX_K = 1_000;

/** What the worker reports about one index. */
export interface IndexStatus {
  model: string;
  backend: AnnBackendName;
  metric: Metric;
  dimensions: number | null;
  size: number;
  seq: number;
  unsaved: number;
  opened: OpenOutcome;
  /** Whether a search can set its own candidate list (usearch's binding built here; see usearch_native.ts). */
  perSearchExpansion: boolean;
}

/** A message to the index worker. */
export type IndexRequest =
  & { id: number }
  & (
    | {
      kind: "init";
      settings: {
        storeDir: string;
        indexDir: string;
        backend: AnnBackendName;
        params?: HnswParams;
        threads: number;
      };
    }
    | { kind: "sync" | "rebuild"; model: string; metric?: Metric }
    | {
      kind: "search";
      model: string;
      metric?: Metric;
      vector: number[] | Float32Array;
      k: number;
      allowed?: number[];
      exact?: boolean;
    }
    | { kind: "query"; query: MemoryQuery; vector?: Float32Array }
    | { kind: "status" | "save" | "close" }
  );

/** The worker's answer. */
export type IndexReply = { id: number; result: unknown } | { id: number; error: string; code?: string };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Options for {@link VectorIndexService}. */
export interface VectorIndexServiceOptions {
  /** The stores' folder (`--db-path`). */
  storeDir: string;
  /** Where index files live; default `<storeDir>/index`. */
  indexDir?: string;
  backend?: AnnBackendName;
  params?: HnswParams;
  /** Threads a rebuild may use (default 1: it runs beside the server). */
  threads?: number;
  log?: Logger;
}

/**
 * Vector indexes of the embeddings store, one per model, in a worker.
 *
 * @example
 * ```ts
 * const indexes = new VectorIndexService({ storeDir: "/data/tabagent_db" });
 * const { keys } = await indexes.search("sentence-transformers/all-MiniLM-L6-v2", query, 10);
 * await indexes.close();
 * ```
 */
export class VectorIndexService {
  #worker!: Worker;
  /** Requests waiting for the worker, under the id their reply carries (an InFlight, not a Map: see there). */
  #pending = new InFlight<{ resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
  #closed = false;
  readonly #options: VectorIndexServiceOptions;

  constructor(options: VectorIndexServiceOptions) {
    this.#options = options;
    this.#spawn();
  }

  #spawn(): void {
    const worker = new Worker(new URL("./_index_worker.ts", import.meta.url), { type: "module" });
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent<IndexReply>) => {
      const reply = event.data;
      const waiter = this.#pending.take(reply.id);
      if (!waiter) return;
      if ("error" in reply) {
        const code = reply.code === "validation_failed" || reply.code === "storage_corrupt" ? reply.code : "internal";
        waiter.reject(new TabAgentError(code, reply.error));
      } else waiter.resolve(reply.result);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#options.log?.error("vector index worker failed; restarting it", { error: event.message });
      worker.terminate();
      for (const waiter of this.#pending.values()) {
        waiter.reject(new TabAgentError("internal", `The vector index failed: ${event.message}`));
      }
      this.#pending.clear();
      if (!this.#closed) this.#spawn();
    };
    const { storeDir } = this.#options;
    this.#send({
      kind: "init",
      settings: {
        storeDir,
        indexDir: this.#options.indexDir ?? `${storeDir}/index`,
        backend: this.#options.backend ?? DEFAULT_ANN_BACKEND,
        params: this.#options.params,
        threads: this.#options.threads ?? 1,
      },
    }).catch(() => {});
  }

  #send<T>(request: DistributiveOmit<IndexRequest, "id">): Promise<T> {
    if (this.#closed && request.kind !== "close") {
      return Promise.reject(new TabAgentError("unavailable", "The vector index is closed"));
    }
    const done = Promise.withResolvers<unknown>();
    const id = this.#pending.add(done);
    this.#worker.postMessage({ ...request, id });
    return done.promise as Promise<T>;
  }

  /**
   * The `k` items nearest to `vector` in `model`'s index (keys from {@link itemKey}). With
   * `allowed`, only those items: `exact` computes their exact distances instead of walking the graph.
   */
  search(
    model: string,
    vector: Float32Array | number[],
    k: number,
    options: { allowed?: number[]; exact?: boolean; metric?: Metric } = {},
  ): Promise<AnnMatches> {
    const values = Array.from(vector);
    if (!values.length || values.some((v) => !Number.isFinite(v))) {
      return Promise.reject(
        new TabAgentError("validation_failed", "The query vector must be non-empty and finite", { field: "vector" }),
      );
    }
    if (!Number.isInteger(k) || k < 1 || k > MAX_INDEX_K) {
      return Promise.reject(
        new TabAgentError("validation_failed", `k must be an integer from 1 to ${MAX_INDEX_K}`, { field: "k" }),
      );
    }
    return this.#send({ kind: "search", model, vector: Float32Array.from(values), k, ...options });
  }

  /**
   * Runs a parsed hybrid query in the worker (see query/engine.ts); `vector` is the query's
   * embedding by `query.model`, when one could be computed.
   */
  query(query: MemoryQuery, vector?: Float32Array): Promise<MemoryQueryResult> {
    if (vector && (!vector.length || vector.some((v) => !Number.isFinite(v)))) {
      return Promise.reject(
        new TabAgentError("validation_failed", "The query vector must be non-empty and finite", { field: "vector" }),
      );
    }
    // the worker reads the vector from `vector`: the query's own copy (a JS array) would only cost
    // a structured clone five times dearer than the rest of the message
    const { vector: _copy, ...rest } = query;
    return this.#send({ kind: "query", query: rest, vector });
  }

  /** Catches `model`'s index up with the store (opening or rebuilding it first if needed). */
  sync(model: string, metric?: Metric): Promise<IndexStatus> {
    return this.#send({ kind: "sync", model, metric });
  }

  /** Rebuilds `model`'s index from the store and saves it. */
  rebuild(model: string, metric?: Metric): Promise<IndexStatus> {
    return this.#send({ kind: "rebuild", model, metric });
  }

  /** Every open index. */
  status(): Promise<IndexStatus[]> {
    return this.#send({ kind: "status" });
  }

  /** Saves every index with unsaved changes. */
  save(): Promise<void> {
    return this.#send({ kind: "save" });
  }

  /** Saves and closes the indexes and stops the worker. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#send({ kind: "close" }).catch((error) =>
        this.#options.log?.warn("saving the vector indexes failed", { error })
      ),
      new Promise((resolve) => timer = setTimeout(resolve, 30_000)),
    ]).finally(() => clearTimeout(timer));
    this.#worker.terminate();
    for (const waiter of this.#pending.values()) {
      waiter.reject(new TabAgentError("unavailable", "The vector index is closing"));
    }
    this.#pending.clear();
  }
}
