/**
 * The two HNSW libraries behind one small interface, so the benchmark can measure both and the
 * server uses the one that won (`DEFAULT_ANN_BACKEND`). Keys are non-negative integers below 2^53.
 */
import { Index as UsearchNative, type MetricKind, type ScalarKind } from "usearch";
import { TabAgentError } from "../../errors/mod.ts";
import { type UsearchCompiledIndex, usearchNative } from "./usearch_native.ts";

/** Distance measures an index can use. `cosine` and `ip` return 1 − similarity; `l2` squared L2. */
export const METRICS = ["cosine", "l2", "ip"] as const;
/** A distance measure. */
export type Metric = typeof METRICS[number];

/** The HNSW libraries. */
export const ANN_BACKENDS = ["usearch", "hnswlib"] as const;
/** An HNSW library. */
export type AnnBackendName = typeof ANN_BACKENDS[number];

/**
 * The library the server uses: usearch. Measured against hnswlib-node in the `retrieval` benchmark
 * (same M and ef_add, same data): hnswlib-node (f32 only) reached recall@10 0.953 and a p99
 * speedup of 24.9× at ef 80 but built in 150 s, one point at a time through a JS `number[]` each,
 * against half that for usearch building in parallel from one Float32Array; and with its vectors
 * as bf16 usearch searches for less CPU than hnswlib-node (0.71 against 0.88 ms per search at ef
 * 80 on 20,000 vectors, same loaded machine), so it reaches a higher recall (0.959 at ef 88) at
 * the same cost. It also needs no native build, where hnswlib-node needs node-gyp and a compiler.
 */
export const DEFAULT_ANN_BACKEND: AnnBackendName = "usearch";

/**
 * HNSW parameters: graph degree M, the candidate list sizes when adding and searching, and how
 * usearch stores the vectors in the graph (hnswlib-node always keeps f32).
 */
export interface HnswParams {
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
  quantization?: "f32" | "f16" | "bf16";
}

/**
 * Defaults for 384-d sentence embeddings, chosen on the retrieval bench's 100,000 vectors, with
 * recall and cost measured together (CPU time per search, so a busy machine does not skew it):
 * - M 16 needed ef 256 and still missed the goal (recall@10 0.942 at ef 160): a sparse graph
 *   makes the search wander. M 32 (ef_add 128) is the graph.
 * - A search is bound by fetching and comparing vectors (each a random read), not by the graph
 *   walk: the fewer bytes per vector and the cheaper their conversion, the faster. usearch's
 *   prebuilt binary compares f16 slowly (its f16 search at ef 80 cost more than hnswlib-node's
 *   f32 one); bf16 converts by a shift, halves the bytes like f16 and cost 1.35× less per search
 *   than f16 at a slightly larger ef (1.12 ms against 1.53 ms CPU, on a loaded machine). i8 was
 *   cheaper still but capped recall near 0.94.
 * - bf16 keeps 8 bits of mantissa against f16's 11: recall@10 0.952 at ef 80 (f16 0.957), 0.959
 *   at ef 88, 0.965 at ef 96; ef 64 was 0.931.
 * So M 32, ef_add 128, bf16, ef 88: recall ≈ 0.959 with room to spare, and the cheapest search
 * that keeps it. The truth stays f32 in the embeddings store; exact reranks (filtered queries)
 * read it.
 */
export const DEFAULT_HNSW: HnswParams = {
  connectivity: 32,
  expansionAdd: 128,
  expansionSearch: 88,
  quantization: "bf16",
};

/** Nearest keys, closest first, with their distances. */
export interface AnnMatches {
  keys: number[];
  distances: number[];
}

/** One in-memory HNSW index. Not thread-safe: one owner (a worker) calls it. */
export interface AnnIndex {
  readonly backend: AnnBackendName;
  readonly dimensions: number;
  readonly metric: Metric;
  /** Adds many vectors (row-major in `vectors`); a key already present is replaced. */
  addMany(keys: number[], vectors: Float32Array, threads?: number): void;
  remove(key: number): void;
  has(key: number): boolean;
  size(): number;
  /**
   * The `k` nearest keys. `expansion` asks for a smaller (or larger) candidate list than the
   * index's own `expansionSearch` for this search; a backend that cannot change it per search
   * (the prebuilt usearch binding) uses its own.
   */
  search(query: Float32Array, k: number, expansion?: number): AnnMatches;
  /** Whether `search` honours its `expansion`. */
  readonly perSearchExpansion: boolean;
  save(path: string): void;
}

const USEARCH_METRIC: Record<Metric, string> = { cosine: "cos", l2: "l2sq", ip: "ip" };

/**
 * usearch through its locally built binding when there is one (`usearch_native.ts`: the same
 * library with a per-search expansion), else through the package's prebuilt one.
 */
class UsearchIndex implements AnnIndex {
  readonly backend = "usearch";
  readonly perSearchExpansion: boolean;
  #index: UsearchNative | null = null;
  #native: UsearchCompiledIndex | null = null;
  /** The native index's expansion now, so a search changes it only when asked for another. */
  #expansion: number;
  readonly #defaultExpansion: number;

  constructor(readonly dimensions: number, readonly metric: Metric, params: HnswParams, path?: string) {
    const quantization = params.quantization ?? "f32";
    this.#defaultExpansion = this.#expansion = params.expansionSearch;
    const Native = usearchNative();
    if (Native) {
      this.#native = new Native(
        dimensions,
        USEARCH_METRIC[metric],
        quantization,
        params.connectivity,
        params.expansionAdd,
        params.expansionSearch,
        false,
      );
      if (path) this.#native.load(path);
    } else {
      this.#index = new UsearchNative({
        dimensions,
        metric: USEARCH_METRIC[metric] as MetricKind,
        quantization: quantization as ScalarKind,
        connectivity: params.connectivity,
        expansion_add: params.expansionAdd,
        expansion_search: params.expansionSearch,
        multi: false,
      });
      if (path) this.#index.load(path);
    }
    this.perSearchExpansion = !!this.#native;
    const stored = this.#native ? this.#native.dimensions() : this.#index!.dimensions();
    if (stored !== dimensions) {
      throw new TabAgentError("storage_corrupt", `The index at ${path} has ${stored} dimensions`);
    }
  }

  addMany(keys: number[], vectors: Float32Array, threads = 1): void {
    if (keys.length === 0) return;
    const big = BigUint64Array.from(keys, (k) => BigInt(k));
    if (this.#native) {
      const present = this.#native.contains(big);
      const replaced = keys.filter((_, i) => present[i]);
      if (replaced.length) this.#native.remove(BigUint64Array.from(replaced, (k) => BigInt(k)));
      this.#native.add(big, vectors, threads);
      return;
    }
    const present = this.#index!.contains(big);
    const replaced = keys.filter((_, i) => (Array.isArray(present) ? present[i] : present));
    if (replaced.length) this.#index!.remove(BigUint64Array.from(replaced, (k) => BigInt(k)));
    this.#index!.add(big, vectors, threads);
  }

  remove(key: number): void {
    if (this.#native) this.#native.remove(BigUint64Array.of(BigInt(key)));
    else this.#index!.remove(BigInt(key));
  }

  has(key: number): boolean {
    if (this.#native) return this.#native.contains(BigUint64Array.of(BigInt(key)))[0];
    return this.#index!.contains(BigInt(key)) as boolean;
  }

  size(): number {
    return this.#native ? this.#native.size() : this.#index!.size();
  }

  search(query: Float32Array, k: number, expansion?: number): AnnMatches {
    const size = this.size();
    if (size === 0) return { keys: [], distances: [] };
    let found: { keys: BigUint64Array; distances: Float32Array; count: number };
    if (this.#native) {
      const wanted = expansion ?? this.#defaultExpansion;
      if (wanted !== this.#expansion) this.#native.changeExpansionSearch(this.#expansion = wanted);
      const [keys, distances, counts] = this.#native.search(query, Math.min(k, size), 1);
      found = { keys, distances, count: Number(counts[0]) };
    } else {
      const matches = this.#index!.search(query, Math.min(k, size), 1);
      found = { keys: matches.keys, distances: matches.distances, count: matches.keys.length };
    }
    // a plain loop: Array.from on the typed arrays went through their iterators, ~9.9 KB of garbage
    // per 50-key search against ~5.2 KB (a hybrid query's index worker collects it in ~1 ms pauses)
    const n = found.count;
    const keys: number[] = new Array(n);
    const distances: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      keys[i] = Number(found.keys[i]);
      distances[i] = found.distances[i];
    }
    return { keys, distances };
  }

  save(path: string): void {
    if (this.#native) this.#native.save(path);
    else this.#index!.save(path);
  }
}

/** hnswlib-node, loaded on demand: it needs a native build (`scripts/setup.ts --for bench`). */
// deno-lint-ignore no-explicit-any
let hnswlib: any = null;

/** Loads a backend's native module; usearch is always loaded, hnswlib-node only when asked for. */
export async function loadAnnBackend(backend: AnnBackendName): Promise<void> {
  if (backend === "hnswlib" && !hnswlib) {
    try {
      hnswlib = (await import("hnswlib-node")).default;
    } catch (error) {
      throw new TabAgentError(
        "unavailable",
        "hnswlib-node is not built: run 'deno task setup --for bench' (node-gyp rebuild in its folder)",
        {},
        { cause: error },
      );
    }
  }
}

const HNSWLIB_SPACE: Record<Metric, "cosine" | "l2" | "ip"> = { cosine: "cosine", l2: "l2", ip: "ip" };

class HnswlibIndex implements AnnIndex {
  readonly backend = "hnswlib";
  readonly perSearchExpansion = true;
  // deno-lint-ignore no-explicit-any
  #index: any;
  #params: HnswParams;
  /** Live labels: hnswlib keeps deleted ones in its lookup table, marked. */
  #live = new Set<number>();

  constructor(readonly dimensions: number, readonly metric: Metric, params: HnswParams, path?: string) {
    this.#params = params;
    if (!hnswlib) throw new TabAgentError("unavailable", "Call loadAnnBackend('hnswlib') first");
    this.#index = new hnswlib.HierarchicalNSW(HNSWLIB_SPACE[metric], dimensions);
    if (path) {
      this.#index.readIndexSync(path, false);
      if (this.#index.getNumDimensions() !== dimensions) {
        throw new TabAgentError(
          "storage_corrupt",
          `The index at ${path} has ${this.#index.getNumDimensions()} dimensions`,
        );
      }
      for (const label of this.#index.getIdsList()) if (this.#alive(label)) this.#live.add(label);
    } else {
      this.#index.initIndex({ maxElements: 1024, m: params.connectivity, efConstruction: params.expansionAdd });
    }
    this.#index.setEf(params.expansionSearch);
  }

  #alive(label: number): boolean {
    try {
      this.#index.getPoint(label);
      return true;
    } catch (error) {
      // getPoint refuses a label that is unknown or marked deleted
      if (error instanceof Error) return false;
      throw error;
    }
  }

  addMany(keys: number[], vectors: Float32Array): void {
    const needed = this.#index.getCurrentCount() + keys.length;
    if (needed > this.#index.getMaxElements()) {
      this.#index.resizeIndex(Math.max(needed, this.#index.getMaxElements() * 2));
    }
    const d = this.dimensions;
    keys.forEach((key, i) => {
      // on a known label (deleted or not) addPoint updates it in place and unmarks it
      this.#index.addPoint(Array.from(vectors.subarray(i * d, (i + 1) * d)), key, false);
      this.#live.add(key);
    });
  }

  remove(key: number): void {
    if (!this.#live.delete(key)) return;
    this.#index.markDelete(key);
  }

  has(key: number): boolean {
    return this.#live.has(key);
  }

  size(): number {
    return this.#live.size;
  }

  search(query: Float32Array, k: number, expansion?: number): AnnMatches {
    if (this.#live.size === 0) return { keys: [], distances: [] };
    this.#index.setEf(Math.max(expansion ?? this.#params.expansionSearch, k));
    const found = this.#index.searchKnn(Array.from(query), Math.min(k, this.#live.size));
    return { keys: found.neighbors, distances: found.distances };
  }

  save(path: string): void {
    this.#index.writeIndexSync(path);
  }
}

/**
 * Creates an empty index, or loads the one saved at `path` (throws when the file is unreadable).
 *
 * @example
 * ```ts
 * const index = createAnnIndex("usearch", { dimensions: 384, metric: "cosine" });
 * index.addMany([1, 2], vectors);
 * index.search(query, 10);
 * ```
 */
export function createAnnIndex(
  backend: AnnBackendName,
  options: { dimensions: number; metric: Metric; params?: HnswParams; path?: string },
): AnnIndex {
  const params = options.params ?? DEFAULT_HNSW;
  return backend === "usearch"
    ? new UsearchIndex(options.dimensions, options.metric, params, options.path)
    : new HnswlibIndex(options.dimensions, options.metric, params, options.path);
}
