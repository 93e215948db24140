/**
 * {@link LocalMemory}: the in-process {@link MemoryClient} over `node:sqlite`. Writes are synchronous
 * SQLite transactions on the main thread (a few microseconds each); searches run in a worker pool
 * with read-only connections; the outbox worker keeps the derived stores in step. The operations
 * live beside it, one file per store (`_conversations.ts`, `_knowledge.ts`, `_tool_results.ts`,
 * `_experience.ts`, `_derived.ts`); this class owns the connections, the workers and the gates that
 * backups and restores close.
 */
import { MEMORY_OUTBOX_INTERVAL_MS, MEMORY_SEARCH_TIMEOUT_MS } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { MemoryCalls, MemoryClient, SearchBodySource } from "./client.ts";
import { type MemoryContext, parse, StoreAccess } from "./_context.ts";
import * as conversations from "./_conversations.ts";
import * as derived from "./_derived.ts";
import * as documents from "./_documents.ts";
import * as graph from "./weaver/graph.ts";
import * as experience from "./_experience.ts";
import * as knowledge from "./_knowledge.ts";
import * as toolResults from "./_tool_results.ts";
import { rebuildMessageIndex } from "./_message_index.ts";
import { applyOutboxStep, OutboxWorker, resetTails } from "./_outbox.ts";
import { SearchPool } from "./_search_pool.ts";
import { WalCheckpointer } from "./_checkpoint.ts";
import {
  discardStaged,
  prepareBackupDir,
  recoverRestore,
  snapshotStores,
  stageBackup,
  swapInStaged,
  verifyBackup,
  writeManifest,
} from "./_backup.ts";
import { exportLines } from "./_export.ts";
import { collectStats } from "./_stats.ts";
import { importJsonl, type ImportSource } from "./_import.ts";
import { type IndexStatus, VectorIndexService } from "./index/index_service.ts";
import { EmbeddingWriter } from "./query/embedding_writer.ts";
import { Weaver, type WeaverSettings } from "./weaver/weaver.ts";
import type { ConsolidateOptions, Consolidation, WeaverStatus } from "./weaver/schema.ts";
import {
  DEFAULT_EMBEDDING_MODEL,
  isQueryVector,
  type MemoryQueryInput,
  type MemoryQueryResult,
  MemoryQuerySchema,
} from "./query/schema.ts";
import { closeStores, openStores, schemaVersion, STORE_NAMES, type StoreName, type Stores } from "./stores.ts";
import type { BackupManifest, ImportResult, MemoryStats, SearchOptions } from "./types.ts";

export { parse } from "./_context.ts";

/** A store module's implementation of a memory call: the call's arguments after the context. */
type StoreOperation<K extends keyof MemoryCalls> = (
  ctx: MemoryContext,
  ...args: Parameters<MemoryCalls[K]>
) => ReturnType<MemoryCalls[K]>;

/**
 * The calls each store module implements, by name; `LocalMemory` gets one method per entry. A new
 * memory call is a function in the store module that owns its data, listed here.
 */
const STORE_OPERATIONS = {
  createConversation: conversations.createConversation,
  getConversation: conversations.getConversation,
  listConversations: conversations.listConversations,
  updateConversation: conversations.updateConversation,
  deleteConversation: conversations.deleteConversation,
  appendMessages: conversations.appendMessages,
  getMessage: conversations.getMessage,
  listMessages: conversations.listMessages,
  searchMessages: conversations.searchMessages,
  upsertEntity: knowledge.upsertEntity,
  getEntity: knowledge.getEntity,
  listEntities: knowledge.listEntities,
  addRelation: knowledge.addRelation,
  listRelations: knowledge.listRelations,
  addFact: knowledge.addFact,
  getFact: knowledge.getFact,
  listFacts: knowledge.listFacts,
  deleteFact: knowledge.deleteFact,
  searchFacts: knowledge.searchFacts,
  recordToolResult: toolResults.recordToolResult,
  getToolResult: toolResults.getToolResult,
  listToolResults: toolResults.listToolResults,
  recordEpisode: experience.recordEpisode,
  getEpisode: experience.getEpisode,
  addFeedback: experience.addFeedback,
  listEpisodes: experience.listEpisodes,
  putSummary: derived.putSummary,
  listSummaries: derived.listSummaries,
  putEmbedding: derived.putEmbedding,
  getEmbedding: derived.getEmbedding,
  listPendingEmbeddings: derived.listPendingEmbeddings,
  addDocument: documents.addDocument,
  getDocument: documents.getDocument,
  deleteDocument: documents.deleteDocument,
  entityNeighbors: graph.entityNeighbors,
  graphPath: graph.graphPath,
} satisfies { [K in keyof MemoryCalls]?: StoreOperation<K> };

/** The calls the store modules implement (the rest touch every store and live in the class). */
type StoreCalls = Pick<MemoryCalls, keyof typeof STORE_OPERATIONS>;

/** Options for {@link openLocalMemory}. */
export interface LocalMemoryOptions {
  /** Folder holding the seven store files (`--db-path`). */
  dir: string;
  /** Search workers; 0 runs searches inline (bounded by their `limit`). Default 1. */
  searchWorkers?: number;
  /** Run the outbox worker in the background (default true). */
  outbox?: boolean;
  /** Checkpoint the WALs in a worker instead of on the committing thread (default true). */
  checkpoints?: boolean;
  /**
   * Embeds texts with {@link embeddingModel}. When given, queued items are embedded in the
   * background (`priority: "background"`) and queries embed their text (`"interactive"`).
   */
  embed?: MemoryEmbedder;
  /** The model memories are embedded and indexed with (default all-MiniLM-L6-v2). */
  embeddingModel?: string;
  /** Threads the vector index worker may use to build an index (default 1: it runs beside the server). */
  indexThreads?: number;
  /**
   * The knowledge-graph weaver (weaver/): how it extracts from the user's messages. Default off
   * here; the server turns it on (`--weaver rules` by default). It runs with the outbox.
   */
  weaver?: WeaverSettings;
  log?: Logger;
}

/** Embeds texts for memory; vectors come back in the order of `texts`. */
export type MemoryEmbedder = (
  texts: string[],
  options: { priority: "interactive" | "background"; signal?: AbortSignal },
) => Promise<Float32Array[]>;

/** Opens (creating and migrating) the stores in `options.dir` and starts the workers. */
export async function openLocalMemory(options: LocalMemoryOptions): Promise<LocalMemory> {
  if (
    await recoverRestore(options.dir).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    })
  ) {
    options.log?.warn("finished a restore that was interrupted", { dir: options.dir });
  }
  return new LocalMemory(options, openStores(options.dir));
}

/** The store modules' calls, installed by the constructor from `STORE_OPERATIONS`. */
export interface LocalMemory extends StoreCalls {}

/**
 * The in-process {@link MemoryClient}. Create it with {@link openLocalMemory}.
 *
 * @example
 * ```ts
 * const memory = await openLocalMemory({ dir: "/tmp/db" });
 * const c = await memory.createConversation({ title: "Notes" });
 * await memory.appendMessages(c.id, [{ role: "user", content: "hello" }]);
 * await memory.close();
 * ```
 */
export class LocalMemory implements MemoryClient, SearchBodySource {
  #db: StoreAccess;
  #pool: SearchPool | null = null;
  #outbox: OutboxWorker | null = null;
  #checkpointer: WalCheckpointer | null = null;
  #indexes: VectorIndexService | null = null;
  #writer: EmbeddingWriter | null = null;
  #weaver: Weaver;
  /** Set while a backup copies the files: writes wait on it. */
  #writeGate: Promise<void> | null = null;
  /** Set while a restore swaps the files: everything waits on it. */
  #gate: Promise<void> | null = null;
  #closed = false;
  /** Set from the moment a restore starts verifying until it has swapped: a second one gets 409. */
  #restoring = false;
  /** Why the stores could not be reopened after a failed restore (memory then answers 503). */
  #failure: string | null = null;
  readonly #options: LocalMemoryOptions;
  /** What the per-store operations see of this instance. */
  readonly #ctx: MemoryContext;

  constructor(options: LocalMemoryOptions, stores: Stores) {
    this.#options = options;
    this.#db = new StoreAccess(stores);
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#ctx = {
      dir: options.dir,
      log: options.log,
      get db() {
        return self.#db;
      },
      get pool() {
        return self.#pool;
      },
      get readBlocked() {
        return self.#gate !== null || self.#closed;
      },
      get writeBlocked() {
        return self.#gate !== null || self.#writeGate !== null || self.#closed;
      },
      ready: () => this.#ready(),
      writable: () => this.#writable(),
    };
    for (const [name, operation] of Object.entries(STORE_OPERATIONS)) {
      const call = (...args: unknown[]) => (operation as (...args: unknown[]) => unknown)(this.#ctx, ...args);
      Object.defineProperty(this, name, { value: call, writable: true, configurable: true });
    }
    this.#weaver = this.#createWeaver();
    this.#startWorkers();
  }

  /** The folder holding the store files. */
  get dir(): string {
    return this.#options.dir;
  }

  get #stores(): Stores {
    return this.#db.stores;
  }

  #startWorkers(): void {
    if (this.#options.checkpoints ?? true) {
      this.#checkpointer = new WalCheckpointer({
        dir: this.#options.dir,
        stores: this.#stores,
        log: this.#options.log,
      });
    }
    const workers = this.#options.searchWorkers ?? 1;
    if (workers > 0) {
      this.#pool = new SearchPool({ dir: this.#options.dir, size: workers, timeoutMs: MEMORY_SEARCH_TIMEOUT_MS });
    }
    const embed = this.#options.embed;
    if (embed && (this.#options.outbox ?? true)) {
      this.#writer = new EmbeddingWriter({
        memory: this,
        model: this.embeddingModel,
        embed: (texts, signal) => embed(texts, { priority: "background", signal }),
        log: this.#options.log,
        // the index follows in its worker; a failure there shows on the next query
        onStored: () => void this.#indexService().sync(this.embeddingModel).catch(() => {}),
      });
      this.#writer.start();
    }
    if (this.#options.outbox ?? true) {
      if (this.#weaver.mode !== "off") {
        this.#weaver = this.#createWeaver();
        this.#weaver.start();
      }
      this.#outbox = new OutboxWorker({
        stores: () => this.#stores,
        intervalMs: MEMORY_OUTBOX_INTERVAL_MS,
        log: this.#options.log,
      });
      this.#outbox.start();
    }
  }

  #createWeaver(): Weaver {
    const embed = this.#options.embed;
    return new Weaver({
      ctx: this.#ctx,
      settings: this.#options.weaver ?? { mode: "off" },
      embed: embed && ((texts, signal) => embed(texts, { priority: "background", signal })),
      embeddingModel: this.embeddingModel,
      log: this.#options.log,
    });
  }

  async #stopWorkers(): Promise<void> {
    await this.#weaver.stop();
    await this.#writer?.stop();
    this.#writer = null;
    const indexes = this.#indexes;
    this.#indexes = null;
    await indexes?.close();
    this.#outbox?.stop();
    this.#outbox = null;
    const pool = this.#pool;
    this.#pool = null;
    const checkpointer = this.#checkpointer;
    this.#checkpointer = null;
    await Promise.all([pool?.close(), checkpointer?.close()]);
  }

  /** The model memories are embedded and indexed with. */
  get embeddingModel(): string {
    return this.#options.embeddingModel ?? DEFAULT_EMBEDDING_MODEL;
  }

  /** The vector index worker, started on first use. */
  #indexService(): VectorIndexService {
    this.#indexes ??= new VectorIndexService({
      storeDir: this.dir,
      log: this.#options.log,
      threads: this.#options.indexThreads,
    });
    return this.#indexes;
  }

  async #ready(): Promise<void> {
    while (this.#gate) await this.#gate;
    if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed");
  }

  async #writable(): Promise<void> {
    while (this.#gate || this.#writeGate) await (this.#gate ?? this.#writeGate);
    if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed");
  }

  /** {@link searchMessages}' hits as the HTTP route's body, built in the search worker (see {@link SearchBodySource}). */
  searchMessagesBody(options: SearchOptions): Promise<Uint8Array<ArrayBuffer>> {
    return conversations.searchMessagesBody(this.#ctx, options);
  }

  // ---- retrieval (index/, query/) ----

  /**
   * Hybrid search: keyword (BM25) and vector (HNSW) lists fused by reciprocal rank, filtered,
   * ranked with recency and importance, optionally diversified (see query/engine.ts). Without an
   * embedder (and no `vector` given) it runs keyword-only and says so in `used`.
   */
  async query(input: MemoryQueryInput): Promise<MemoryQueryResult> {
    // a valid vector is taken as it is (see isQueryVector); anything else gets the schema's own verdict
    const given = isQueryVector(input.vector) ? input.vector : undefined;
    const query = given
      ? { ...parse(MemoryQuerySchema, { ...input, vector: undefined }, "query"), vector: given }
      : parse(MemoryQuerySchema, input, "query");
    await this.#ready();
    if (this.#db.messagesBehind) await conversations.catchUpBeforeSearch(this.#ctx);
    let vector: Float32Array | undefined = query.vector ? Float32Array.from(query.vector) : undefined;
    if (!vector && query.mode !== "keyword" && this.#options.embed && query.model === this.embeddingModel) {
      try {
        [vector] = await this.#options.embed([query.query], { priority: "interactive" });
      } catch (error) {
        // no embedding model (not exported or pulled yet): the keyword side still answers, and `used` says so
        if (!(error instanceof TabAgentError) || query.mode === "vector") throw error;
        this.#options.log?.warn("query runs keyword-only: the embedding model failed", { error });
      }
    }
    return await this.#indexService().query(query, vector);
  }

  /** The text an item of a kind without a getter is embedded from (page chunks), or null when it is gone. */
  async embeddableText(kind: string, id: string): Promise<string | null> {
    await this.#ready();
    if (kind !== "chunk") return null;
    const n = Number(String(id).replace(/^chunk_/, ""));
    return this.#db.get<{ text: string }>("conversations", "SELECT text FROM document_chunks WHERE id = ?", n)?.text ??
      null;
  }

  /** Embeds everything queued now and brings the vector index up to date (tests, benchmarks). */
  async embedPending(): Promise<number> {
    await this.flush();
    const stored = await this.#writer?.drain() ?? 0;
    await this.#indexService().sync(this.embeddingModel);
    return stored;
  }

  /** The vector indexes' state (size, how each was opened, unsaved changes). */
  indexStatus(): Promise<IndexStatus[]> {
    return this.#indexService().status();
  }

  // ---- the knowledge graph's weaver (weaver/) ----

  /** The weaver's mode, queue and counts. */
  weaverStatus(): Promise<WeaverStatus> {
    return this.#weaver.status();
  }

  /** Applies the outbox and weaves every queued message now (a no-op queue-wise when the weaver is off). */
  async weavePending(): Promise<WeaverStatus> {
    await this.flush();
    await this.#weaver.drain();
    return await this.#weaver.status();
  }

  /** Merges duplicate entities by normalised name, then by name embedding (when memory has an embedder). */
  consolidateEntities(options: ConsolidateOptions = {}): Promise<Consolidation> {
    return this.#weaver.consolidate(options);
  }

  // ---- whole memory ----

  async stats(): Promise<MemoryStats> {
    await this.#ready();
    // the open indexes as the worker sees them; a worker not started yet is not started for this
    const open = this.#indexes ? await this.#indexes.status() : [];
    return await collectStats(this.#stores, this.dir, open);
  }

  async *exportJsonl(options: { conversationId?: string } = {}): AsyncIterable<string> {
    await this.#ready();
    if (options.conversationId !== undefined) conversations.conversationRow(this.#db, String(options.conversationId));
    for (const line of exportLines(() => this.#stores, options.conversationId)) {
      yield line;
      if (this.#gate) await this.#ready();
    }
  }

  async importJsonl(source: ImportSource): Promise<ImportResult> {
    await this.#writable();
    return await importJsonl(this.#db, source, {
      beforeBatch: async () => {
        await this.#writable();
        this.#db.messagesBehind = true;
      },
    });
  }

  async backup(dir: string): Promise<BackupManifest> {
    await prepareBackupDir(String(dir));
    await this.#writable();
    const released = Promise.withResolvers<void>();
    this.#writeGate = released.promise;
    const versions = {} as Record<StoreName, number>;
    try {
      for (const store of STORE_NAMES) versions[store] = schemaVersion(this.#stores[store]);
      await snapshotStores(this.dir, dir);
    } finally {
      this.#writeGate = null;
      released.resolve();
    }
    const manifest = await writeManifest(dir, versions);
    this.#options.log?.info("backup written", { dir, files: manifest.files.length });
    return manifest;
  }

  /**
   * What the memory can do now: `ready`; `degraded` while a restore swaps the files (calls wait);
   * `failed` when a restore could not put any stores back (every call answers 503 until a restart).
   */
  get health(): { state: "ready" | "degraded" | "failed"; detail?: string } {
    // the weaver's mode shows in `detail` while ready (e.g. "weaver: rules")
    if (this.#failure !== null) return { state: "failed", detail: this.#failure };
    if (this.#closed) return { state: "failed", detail: "memory is closed" };
    if (this.#gate !== null) return { state: "degraded", detail: "a restore is swapping the store files" };
    return { state: "ready", detail: this.#weaver.healthDetail };
  }

  async restore(dir: string): Promise<BackupManifest> {
    // The lock is taken before verifying and staging: two restores sharing one staging folder
    // removed each other's files (ENOENT/ENOTEMPTY, or a "damaged" copy) and could close memory.
    if (this.#restoring) {
      throw new TabAgentError("conflict", "A restore is already running; try again when it has finished", {
        path: String(dir),
      });
    }
    if (this.#closed) throw new TabAgentError("unavailable", "Memory is closed");
    this.#restoring = true;
    try {
      return await this.#restore(String(dir));
    } finally {
      this.#restoring = false;
    }
  }

  async #restore(dir: string): Promise<BackupManifest> {
    let manifest: BackupManifest;
    try {
      manifest = await verifyBackup(dir);
      await stageBackup(dir, this.dir, manifest);
    } catch (error) {
      await discardStaged(this.dir);
      throw error;
    }
    await this.#writable();
    const released = Promise.withResolvers<void>();
    this.#gate = released.promise;
    let storesOpen = true;
    try {
      await this.#stopWorkers();
      this.#db.clear();
      closeStores(this.#stores);
      storesOpen = false;
      await swapInStaged(this.dir);
      this.#db = new StoreAccess(openStores(this.dir));
      storesOpen = true;
      this.#startWorkers();
    } catch (error) {
      this.#options.log?.error("restore failed while swapping; reopening the stores", {
        dir,
        error: error instanceof Error ? error.message : String(error),
      });
      if (!storesOpen) await this.#reopenAfterFailedSwap();
      throw error;
    } finally {
      this.#gate = null;
      released.resolve();
    }
    this.#options.log?.info("restored from backup", { dir, created_at: manifest.created_at });
    return manifest;
  }

  /** Finishes (by its journal) or abandons the swap and reopens whichever files are complete. */
  async #reopenAfterFailedSwap(): Promise<void> {
    try {
      await recoverRestore(this.dir);
      this.#db = new StoreAccess(openStores(this.dir));
      this.#startWorkers();
    } catch (error) {
      this.#closed = true;
      this.#failure = `a restore failed and the stores could not be reopened: ${
        error instanceof Error ? error.message : String(error)
      }; restart the server`;
      this.#options.log?.error("memory is unavailable after a failed restore", { error: this.#failure });
    }
  }

  async flush(): Promise<void> {
    await this.#writable();
    while (applyOutboxStep(this.#stores) > 0) {
      // each step is bounded; yield so a big backlog does not hold the event loop for long
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /**
   * Rebuilds what is derived: the FTS indexes from their tables, and the embedding queue from the
   * truth stores (items without an embedding are queued again).
   */
  async rebuildDerived(): Promise<void> {
    await this.#writable();
    rebuildMessageIndex(this.#stores.conversations);
    this.#stores.knowledge.exec("INSERT INTO facts_fts(facts_fts) VALUES ('rebuild')");
    this.#stores.tool_results.exec("INSERT INTO tool_results_fts(tool_results_fts) VALUES ('rebuild')");
    resetTails(this.#stores);
    await this.flush();
  }

  /**
   * Lists where the derived stores disagree with the truth stores (empty when they have converged):
   * every message, fact, episode and summary is embedded or queued exactly once, nothing is queued
   * for an item that is gone, and the FTS indexes pass their integrity check.
   */
  checkDerived(): Promise<string[]> {
    return derived.checkDerived(this.#ctx);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#gate) await this.#gate;
    this.#closed = true;
    await this.#stopWorkers();
    this.#db.clear();
    closeStores(this.#stores);
  }
}
