/**
 * The vector index worker: owns every model's {@link VectorIndex} and its own connection to the
 * embeddings store, so building, catching up, saving and searching never run on the server's event
 * loop. Started by {@link VectorIndexService}.
 */
/// <reference lib="deno.worker" />
import { DatabaseSync } from "node:sqlite";
import { BUSY_TIMEOUT_MS, storeFile } from "../stores.ts";
import { type KeywordSources, runQueryConcurrently } from "../query/engine.ts";
import { closeKeywordSources, KeywordThread, openKeywordSources } from "../query/keyword_thread.ts";
import { lowerThreadPriority } from "../_thread_priority.ts";
import type { AnnBackendName, HnswParams, Metric } from "./ann.ts";
import { VectorIndex } from "./vector_index.ts";
import { anonymousMappings, collapseNewMemory } from "./huge_pages.ts";
import type { IndexReply, IndexRequest, IndexStatus } from "./index_service.ts";
import { TabAgentError } from "../../errors/mod.ts";

lowerThreadPriority();

let db: DatabaseSync | undefined;
let readers: KeywordSources | undefined;
/** Reads hybrid queries' keyword lists while this worker searches the vectors. */
let keywords: KeywordThread | undefined;
let settings: { storeDir: string; indexDir: string; backend: AnnBackendName; params?: HnswParams; threads: number };
const indexes = new Map<string, Promise<VectorIndex>>();
/** Save after this many changes once this long has passed since the last save (ms). */
const SAVE_AFTER_CHANGES = 1_000;
const SAVE_EVERY_MS = 30_000;
let lastSave = Date.now();

function connection(): DatabaseSync {
  if (!db) {
    db = new DatabaseSync(`${settings.storeDir}/${storeFile("embeddings")}`);
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
  return db;
}

function indexOf(model: string, metric: Metric = "cosine"): Promise<VectorIndex> {
  let found = indexes.get(model);
  if (!found) {
    // the index's memory on 2 MB pages: a search reads vectors all over it (see huge_pages.ts)
    const before = anonymousMappings();
    found = VectorIndex.open({
      dir: settings.indexDir,
      db: connection(),
      model,
      metric,
      backend: settings.backend,
      params: settings.params,
      threads: settings.threads,
    }).then((index) => {
      collapseNewMemory(before);
      return index;
    });
    indexes.set(model, found);
    found.catch(() => indexes.delete(model));
  }
  return found;
}

async function saveDue(force: boolean): Promise<void> {
  if (!force && Date.now() - lastSave < SAVE_EVERY_MS) return;
  for (const pending of indexes.values()) {
    const index = await pending;
    if (index.unsaved > 0 && (force || index.unsaved >= SAVE_AFTER_CHANGES)) await index.save();
  }
  lastSave = Date.now();
}

function status(model: string, index: VectorIndex): IndexStatus {
  return {
    model,
    backend: settings.backend,
    metric: index.metric,
    dimensions: index.dimensions,
    size: index.size,
    seq: index.seq,
    unsaved: index.unsaved,
    opened: index.outcome,
    perSearchExpansion: index.perSearchExpansion,
  };
}

async function handle(request: IndexRequest): Promise<unknown> {
  switch (request.kind) {
    case "init":
      settings = request.settings;
      // started now, so the first hybrid query does not wait for it (its connections open on first use)
      keywords = new KeywordThread(settings.storeDir);
      return null;
    case "sync": {
      const index = await indexOf(request.model, request.metric);
      index.catchUp();
      await saveDue(false);
      return status(request.model, index);
    }
    case "search": {
      const index = await indexOf(request.model, request.metric);
      index.catchUp();
      const query = new Float32Array(request.vector);
      const allowed = request.allowed ? new Set(request.allowed) : undefined;
      return request.exact && request.allowed
        ? index.rerank(query, request.allowed, request.k)
        : index.search(query, request.k, { allowed });
    }
    case "query": {
      readers ??= openKeywordSources(settings.storeDir);
      const index = await indexOf(request.query.model);
      index.catchUp();
      const thread = keywords ??= new KeywordThread(settings.storeDir);
      return runQueryConcurrently(
        { ...readers, vectors: index.dimensions === null ? null : index },
        request.query,
        request.vector ? new Float32Array(request.vector) : null,
        (query, fused) => thread.job(query, fused),
      );
    }
    case "status": {
      const all: IndexStatus[] = [];
      for (const [model, pending] of indexes) all.push(status(model, await pending));
      return all;
    }
    case "rebuild": {
      const index = await indexOf(request.model, request.metric);
      const before = anonymousMappings();
      index.rebuild();
      collapseNewMemory(before);
      await index.save();
      return status(request.model, index);
    }
    case "save":
      await saveDue(true);
      return null;
    case "close":
      await saveDue(true);
      db?.close();
      db = undefined;
      closeKeywordSources(readers);
      readers = undefined;
      await keywords?.close();
      keywords = undefined;
      indexes.clear();
      return null;
  }
}

// one request at a time: the indexes are not thread-safe and a rebuild must not interleave a search
let queue: Promise<void> = Promise.resolve();
self.onmessage = (event: MessageEvent<IndexRequest>) => {
  const request = event.data;
  queue = queue.then(async () => {
    let reply: IndexReply;
    try {
      reply = { id: request.id, result: await handle(request) };
    } catch (error) {
      reply = error instanceof TabAgentError
        ? { id: request.id, error: error.message, code: error.code }
        : { id: request.id, error: error instanceof Error ? error.message : String(error) };
    }
    self.postMessage(reply);
  });
};
