/**
 * One model's vector index, persisted beside the stores and derived from the `embeddings` store
 * (the truth). Opening it loads the saved file when its sidecar says it is whole (checksum,
 * parameters) and not ahead of the store (a restored store), and otherwise rebuilds it from every
 * stored vector. It then catches up from `vector_log`, the store's log of changed embeddings, from
 * the sequence number it saved: so a crash at any point only costs replaying the log, and a
 * damaged file only a rebuild. Saving writes the file and its sidecar under temporary names and
 * renames them (sidecar last); afterwards the log entries it covers are pruned.
 */
import type { DatabaseSync } from "node:sqlite";
import { TabAgentError } from "../../errors/mod.ts";
import {
  type AnnBackendName,
  type AnnIndex,
  type AnnMatches,
  createAnnIndex,
  DEFAULT_HNSW,
  type HnswParams,
  type Metric,
} from "./ann.ts";
import { distance } from "./exact.ts";
import { itemKey, keyItem } from "./keys.ts";
import { cachedStatement as statement } from "../_prepared.ts";

/** Bumped when the sidecar or file layout changes: older files are rebuilt. */
const FORMAT = 1;
/** Log rows applied per statement while catching up. */
const CATCH_UP_BATCH = 2_000;
/** Vectors added per batch while rebuilding. */
const REBUILD_BATCH = 4_096;

/** What the sidecar JSON records about a saved index. */
export interface IndexSidecar {
  format: number;
  backend: AnnBackendName;
  model: string;
  metric: Metric;
  dimensions: number;
  params: HnswParams;
  /** The last `vector_log` sequence number the file contains. */
  seq: number;
  count: number;
  sha256: string;
}

/** Why an index was (re)built instead of loaded, or `loaded`. */
export type OpenOutcome = "loaded" | "missing" | "damaged" | "stale" | "changed" | "empty";

/** How an index is opened. */
export interface VectorIndexOptions {
  /** Folder for the index files. */
  dir: string;
  /** A read-write connection to the embeddings store (the log is pruned through it). */
  db: DatabaseSync;
  model: string;
  metric?: Metric;
  backend: AnnBackendName;
  params?: HnswParams;
  /** Threads a rebuild may use. */
  threads?: number;
}

/** File name stem for `model`: readable, and unique through a short hash. */
export async function indexStem(model: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(model));
  const hash = Array.from(new Uint8Array(digest).slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${model.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80)}-${hash}`;
}

async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function asVector(blob: Uint8Array): Float32Array {
  return new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
}

/**
 * A persisted, incrementally updated HNSW index of one model's embeddings.
 *
 * @example
 * ```ts
 * const index = await VectorIndex.open({ dir, db, model: "sentence-transformers/all-MiniLM-L6-v2", backend: "usearch" });
 * index.catchUp();
 * index.search(query, 10);
 * await index.save();
 * ```
 */
export class VectorIndex {
  #ann: AnnIndex | null;
  #seq: number;
  #dirty = 0;
  /** The store's `data_version` when the log was last read; -1 before the first read. */
  #seenVersion = -1;
  readonly outcome: OpenOutcome;

  private constructor(
    readonly options: VectorIndexOptions & { stem: string },
    ann: AnnIndex | null,
    seq: number,
    outcome: OpenOutcome,
  ) {
    this.#ann = ann;
    this.#seq = seq;
    this.outcome = outcome;
  }

  get metric(): Metric {
    return this.options.metric ?? "cosine";
  }

  get #params(): HnswParams {
    return this.options.params ?? DEFAULT_HNSW;
  }

  /** Dimensions of the vectors, or null while the model has none stored. */
  get dimensions(): number | null {
    return this.#ann?.dimensions ?? null;
  }

  /** Vectors in the index. */
  get size(): number {
    return this.#ann?.size() ?? 0;
  }

  /** Whether a search can set its own candidate list (see `AnnIndex.search`). */
  get perSearchExpansion(): boolean {
    return this.#ann?.perSearchExpansion ?? false;
  }

  /** The last log sequence number applied. */
  get seq(): number {
    return this.#seq;
  }

  /** Changes applied since the last save. */
  get unsaved(): number {
    return this.#dirty;
  }

  get #paths(): { file: string; sidecar: string } {
    const base = `${this.options.dir}/${this.options.stem}`;
    return { file: `${base}.${this.options.backend}`, sidecar: `${base}.json` };
  }

  /** Loads the saved index or rebuilds it from the store, then catches up with the log. */
  static async open(options: VectorIndexOptions): Promise<VectorIndex> {
    await Deno.mkdir(options.dir, { recursive: true, mode: 0o700 });
    const stem = await indexStem(options.model);
    const full = { ...options, stem };
    const metric = options.metric ?? "cosine";
    const params = options.params ?? DEFAULT_HNSW;
    const base = `${options.dir}/${stem}`;
    const file = `${base}.${options.backend}`;
    let sidecar: IndexSidecar | null = null;
    let outcome: OpenOutcome = "missing";
    try {
      sidecar = JSON.parse(await Deno.readTextFile(`${base}.json`)) as IndexSidecar;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) outcome = "damaged";
    }
    if (sidecar) {
      const highWater = logHighWater(options.db);
      if (
        sidecar.format !== FORMAT || sidecar.backend !== options.backend || sidecar.metric !== metric ||
        sidecar.model !== options.model || JSON.stringify(sidecar.params) !== JSON.stringify(params)
      ) {
        outcome = "changed";
      } else if (sidecar.seq > highWater) {
        outcome = "stale";
      } else {
        try {
          if ((await sha256File(file)) !== sidecar.sha256) throw new Error("checksum mismatch");
          const ann = createAnnIndex(options.backend, { dimensions: sidecar.dimensions, metric, params, path: file });
          if (ann.size() !== sidecar.count) throw new Error("count mismatch");
          const index = new VectorIndex(full, ann, sidecar.seq, "loaded");
          index.catchUp();
          if (index.size === storedCount(options.db, options.model)) return index;
          outcome = "stale";
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) outcome = "missing";
          else outcome = "damaged";
        }
      }
    }
    const index = new VectorIndex(full, null, 0, outcome);
    index.rebuild();
    if (index.size === 0 && outcome === "missing") return new VectorIndex(full, index.#ann, index.#seq, "empty");
    return index;
  }

  /** Replaces the in-memory index with one built from every stored vector of the model. */
  rebuild(): void {
    const { db, model } = this.options;
    db.exec("BEGIN");
    try {
      this.#seq = logHighWater(db);
      this.#ann = null;
      let keys: number[] = [];
      let rows: Float32Array[] = [];
      const flush = () => {
        if (!keys.length) return;
        const dims = rows[0].length;
        const matrix = new Float32Array(keys.length * dims);
        rows.forEach((row, i) => matrix.set(row, i * dims));
        this.#ensure(dims).addMany(keys, matrix, this.options.threads ?? 1);
        keys = [];
        rows = [];
      };
      const statement = db.prepare("SELECT item_kind, item_id, vector FROM embeddings WHERE model = ?");
      for (
        const row of statement.iterate(model) as Iterable<{ item_kind: string; item_id: number; vector: Uint8Array }>
      ) {
        const vector = asVector(row.vector);
        if (rows.length && vector.length !== rows[0].length) flush();
        keys.push(itemKey(row.item_kind, row.item_id));
        rows.push(vector);
        if (keys.length >= REBUILD_BATCH) flush();
      }
      flush();
    } finally {
      db.exec("COMMIT");
    }
    this.#dirty = Math.max(1, this.size);
  }

  #ensure(dimensions: number): AnnIndex {
    if (!this.#ann) {
      this.#ann = createAnnIndex(this.options.backend, { dimensions, metric: this.metric, params: this.#params });
    }
    if (this.#ann.dimensions !== dimensions) {
      throw new TabAgentError(
        "storage_corrupt",
        `Model '${this.options.model}' has vectors of ${this.#ann.dimensions} and ${dimensions} dimensions`,
      );
    }
    return this.#ann;
  }

  /** Applies the log past the last applied sequence number; returns how many entries it applied. */
  catchUp(): number {
    // data_version moves only when another connection commits, so an unchanged one means the log
    // has nothing new: the check costs a few µs where reading the log cost ~50 µs on every search
    const version = (statement(this.options.db, "PRAGMA data_version").get() as { data_version: number })
      .data_version;
    if (version === this.#seenVersion) return 0;
    this.#seenVersion = version;
    const log = statement(
      this.options.db,
      `SELECT l.seq, l.item_kind, l.item_id, e.vector FROM vector_log l
       LEFT JOIN embeddings e ON e.item_kind = l.item_kind AND e.item_id = l.item_id AND e.model = l.model
       WHERE l.model = ? AND l.seq > ? ORDER BY l.seq LIMIT ?`,
    );
    let applied = 0;
    for (;;) {
      const rows = log.all(this.options.model, this.#seq, CATCH_UP_BATCH) as {
        seq: number;
        item_kind: string;
        item_id: number;
        vector: Uint8Array | null;
      }[];
      if (!rows.length) return applied;
      for (const row of rows) {
        const key = itemKey(row.item_kind, row.item_id);
        // the log says what changed; the table says what is true now
        if (row.vector) this.#ensure(row.vector.byteLength / 4).addMany([key], asVector(row.vector));
        else this.#ann?.remove(key);
        this.#seq = row.seq;
      }
      applied += rows.length;
      this.#dirty += rows.length;
    }
  }

  /**
   * The `k` nearest items to `query`. With `allowed`, only those keys count: the search widens
   * until it has `k` of them or has looked at every vector. `expansion` is the search's candidate
   * list where the backend can set it per search (see {@link AnnIndex.search}); default the index's.
   */
  search(
    query: Float32Array,
    k: number,
    options: { allowed?: { has(key: number): boolean }; expansion?: number } = {},
  ): AnnMatches {
    const ann = this.#ann;
    if (!ann) return { keys: [], distances: [] };
    this.#checkQuery(query);
    const { allowed, expansion } = options;
    if (!allowed) return ann.search(query, k, expansion);
    let want = k * 4;
    for (;;) {
      const found = ann.search(query, want, expansion);
      const keys: number[] = [];
      const distances: number[] = [];
      found.keys.forEach((key, i) => {
        if (allowed.has(key) && keys.length < k) {
          keys.push(key);
          distances.push(found.distances[i]);
        }
      });
      if (keys.length >= k || want >= ann.size()) return { keys, distances };
      want *= 4;
    }
  }

  /** Exact distances from `query` to the given items (those without a vector are left out), closest first. */
  rerank(query: Float32Array, keys: number[], k: number): AnnMatches {
    if (!this.#ann) return { keys: [], distances: [] };
    this.#checkQuery(query);
    const read = statement(
      this.options.db,
      "SELECT vector FROM embeddings WHERE item_kind = ? AND item_id = ? AND model = ?",
    );
    const scored: { key: number; distance: number }[] = [];
    for (const key of keys) {
      const { kind, id } = keyItem(key);
      const row = read.get(kind, id, this.options.model) as { vector: Uint8Array } | undefined;
      if (!row) continue;
      scored.push({ key, distance: distance(this.metric, query, asVector(row.vector), 0) });
    }
    scored.sort((a, b) => a.distance - b.distance);
    const best = scored.slice(0, k);
    return { keys: best.map((s) => s.key), distances: best.map((s) => s.distance) };
  }

  /** The stored vectors of the given items (those without one are absent). */
  vectorsOf(keys: number[]): Map<number, Float32Array> {
    const read = statement(
      this.options.db,
      "SELECT vector FROM embeddings WHERE item_kind = ? AND item_id = ? AND model = ?",
    );
    const found = new Map<number, Float32Array>();
    for (const key of keys) {
      const { kind, id } = keyItem(key);
      const row = read.get(kind, id, this.options.model) as { vector: Uint8Array } | undefined;
      if (row) found.set(key, asVector(row.vector));
    }
    return found;
  }

  #checkQuery(query: Float32Array): void {
    if (query.length !== this.#ann!.dimensions) {
      throw new TabAgentError(
        "validation_failed",
        `The query vector has ${query.length} dimensions; model '${this.options.model}' has ${this.#ann!.dimensions}`,
        { field: "vector" },
      );
    }
  }

  /** Writes the index and its sidecar atomically, then prunes the log entries the file covers. */
  async save(): Promise<void> {
    const ann = this.#ann;
    if (!ann) return;
    const { file, sidecar } = this.#paths;
    const tmp = `${file}.tmp`;
    ann.save(tmp);
    const meta: IndexSidecar = {
      format: FORMAT,
      backend: this.options.backend,
      model: this.options.model,
      metric: this.metric,
      dimensions: ann.dimensions,
      params: this.#params,
      seq: this.#seq,
      count: ann.size(),
      sha256: await sha256File(tmp),
    };
    await syncFile(tmp);
    await Deno.writeTextFile(`${sidecar}.tmp`, JSON.stringify(meta));
    await syncFile(`${sidecar}.tmp`);
    await Deno.rename(tmp, file);
    await Deno.rename(`${sidecar}.tmp`, sidecar);
    this.#dirty = 0;
    this.options.db.prepare("DELETE FROM vector_log WHERE model = ? AND seq <= ?").run(this.options.model, meta.seq);
  }
}

async function syncFile(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

/** The highest sequence number the log ever handed out (pruning does not lower it). */
function logHighWater(db: DatabaseSync): number {
  const row = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'").get() as
    | { seq: number }
    | undefined;
  return row?.seq ?? 0;
}

function storedCount(db: DatabaseSync, model: string): number {
  return (db.prepare("SELECT count(*) AS n FROM embeddings WHERE model = ?").get(model) as { n: number }).n;
}
