/**
 * The memory's statistics: counts per store, the embedding backlog, the outbox backlog and each
 * embedding model's vector index. Computed from connections to the seven stores, so the running
 * server (its own connections) and `tabagent memory stats` without a server (read-only ones) say
 * the same thing.
 */
import type { DatabaseSync } from "node:sqlite";
import { TabAgentError } from "../errors/mod.ts";
import { outboxBacklog } from "./_outbox.ts";
import type { IndexStatus } from "./index/index_service.ts";
import { type IndexSidecar, indexStem } from "./index/vector_index.ts";
import { openStoreReadOnly, schemaVersion, STORE_NAMES, storeFile, type Stores } from "./stores.ts";
import type { IndexState, MemoryStats } from "./types.ts";

function count(db: DatabaseSync, table: string): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

function hasTable(db: DatabaseSync, name: string): boolean {
  return !!db.prepare("SELECT 1 FROM sqlite_schema WHERE name = ?").get(name);
}

async function readSidecar(path: string): Promise<IndexSidecar | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as IndexSidecar;
  } catch (error) {
    // a missing or unreadable sidecar means the index is rebuilt on first use: report it missing
    if (error instanceof Deno.errors.NotFound || error instanceof SyntaxError) return null;
    throw error;
  }
}

/**
 * The state of each model's index: every model with stored embeddings, or open in the index
 * worker (`open`, from the running server), or with a saved index file.
 */
export async function indexStates(
  embeddings: DatabaseSync,
  indexDir: string,
  open: IndexStatus[] = [],
): Promise<IndexState[]> {
  const stored = new Map(
    (embeddings.prepare("SELECT model, count(*) AS n, max(dimensions) AS d FROM embeddings GROUP BY model").all() as {
      model: string;
      n: number;
      d: number;
    }[]).map((row) => [row.model, row]),
  );
  const models = new Set([...stored.keys(), ...open.map((s) => s.model)]);
  const logged = hasTable(embeddings, "vector_log");
  const behind = (model: string, seq: number) =>
    logged
      ? (embeddings.prepare("SELECT count(*) AS n FROM vector_log WHERE model = ? AND seq > ?").get(model, seq) as {
        n: number;
      }).n
      : 0;
  const states: IndexState[] = [];
  for (const model of [...models].sort()) {
    const row = stored.get(model);
    const live = open.find((s) => s.model === model);
    const base = { model, vectors: row?.n ?? 0, dimensions: live?.dimensions ?? row?.d ?? null };
    if (live) {
      states.push({
        ...base,
        state: "open",
        backend: live.backend,
        indexed: live.size,
        behind: behind(model, live.seq),
        unsaved: live.unsaved,
      });
      continue;
    }
    const sidecar = await readSidecar(`${indexDir}/${await indexStem(model)}.json`);
    states.push(
      sidecar
        ? {
          ...base,
          state: "saved",
          backend: sidecar.backend,
          indexed: sidecar.count,
          behind: behind(model, sidecar.seq),
          unsaved: null,
        }
        : { ...base, state: "missing", backend: null, indexed: null, behind: behind(model, 0), unsaved: null },
    );
  }
  return states;
}

/** Every figure of {@link MemoryStats} from connections to the seven stores in `dir`. */
export async function collectStats(stores: Stores, dir: string, open: IndexStatus[] = []): Promise<MemoryStats> {
  const counters: Record<string, number> = {};
  for (const row of stores.meta.prepare("SELECT name, value FROM counters ORDER BY name").all()) {
    counters[row.name as string] = row.value as number;
  }
  const pendingByKind: Record<string, number> = {};
  for (
    const row of stores.embeddings.prepare("SELECT item_kind, count(*) AS n FROM pending GROUP BY item_kind").all()
  ) {
    pendingByKind[row.item_kind as string] = row.n as number;
  }
  const files = [];
  for (const store of STORE_NAMES) {
    let bytes = 0;
    for (const suffix of ["", "-wal"]) {
      try {
        bytes += (await Deno.stat(`${dir}/${storeFile(store)}${suffix}`)).size;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    files.push({ name: store, schema_version: schemaVersion(stores[store]), bytes });
  }
  const documents = hasTable(stores.conversations, "documents");
  return {
    conversations: count(stores.conversations, "conversations"),
    messages: count(stores.conversations, "messages"),
    entities: count(stores.knowledge, "entities"),
    relations: count(stores.knowledge, "relations"),
    facts: count(stores.knowledge, "facts"),
    tool_results: count(stores.tool_results, "tool_results"),
    episodes: count(stores.experience, "episodes"),
    summaries: count(stores.summaries, "summaries"),
    embeddings: count(stores.embeddings, "embeddings"),
    pending_embeddings: count(stores.embeddings, "pending"),
    outbox_pending: outboxBacklog(stores),
    counters,
    stores: files,
    documents: documents ? count(stores.conversations, "documents") : 0,
    document_chunks: documents ? count(stores.conversations, "document_chunks") : 0,
    pending_by_kind: pendingByKind,
    indexes: await indexStates(stores.embeddings, `${dir}/index`, open),
  };
}

/**
 * The stats of the stores in `dir`, read through read-only connections: safe beside a running
 * server (SQLite readers never block its writers), and nothing is created or migrated.
 */
export async function readStatsFromFiles(dir: string): Promise<MemoryStats> {
  const opened: Partial<Stores> = {};
  try {
    for (const store of STORE_NAMES) {
      const path = `${dir}/${storeFile(store)}`;
      try {
        await Deno.stat(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        throw new TabAgentError("not_found", `No memory stores at ${dir} (${storeFile(store)} is missing)`, {
          path,
        });
      }
      opened[store] = openStoreReadOnly(path);
    }
    return await collectStats(opened as Stores, dir);
  } finally {
    for (const db of Object.values(opened)) db.close();
  }
}
