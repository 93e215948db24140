/**
 * `deno task bench memory`: the memory stores against real files in a temp dir, in one run.
 * Messages are about 20 words drawn from a 10,000-word vocabulary with a Zipf distribution (as
 * in natural text), all FTS-indexed. Search queries are two words drawn from ranks 10-1,000:
 * common enough that many pairs match hundreds or thousands of messages, which is what makes
 * ranking cost something (the ten most common words alone would match nearly every message).
 *
 * The raw baselines run the store's own statements on the same schema (so `store_overhead_ratio`
 * measures our layer only); the `*_raw_minimal_schema_*` lines run the minimal schema (a
 * messages table with an FTS5 insert trigger) for comparison with the figures quoted there.
 *
 * Durability: `synchronous=NORMAL` in WAL (see server/memory/stores.ts): a commit survives any
 * crash of the process; FULL would fsync each commit and is measured here too for comparison.
 */
import { DatabaseSync } from "node:sqlite";
import { type LocalMemory, openLocalMemory } from "../../server/memory/mod.ts";
import { MESSAGE_INDEX_DEFER_LIMIT } from "../../server/memory/_message_index.ts";
import { CACHE_KIB, MIGRATIONS, MMAP_BYTES } from "../../server/memory/stores.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const VOCABULARY = 10_000;
const CORPUS = 100_000;
const BATCH = 1_000;
const SINGLE = 20_000;
const POINT_READS = 200_000;
const QUERIES = 1_000;
const SEARCH_CLIENTS = 8;
const HEALTH_SECONDS = 6;

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(42);
const words = Array.from({ length: VOCABULARY }, (_, i) => {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  let word = "";
  for (let n = i + 1; n > 0; n = Math.floor(n / 26)) word += letters[n % 26];
  return word + "o";
});
// Zipf(1): cumulative weights 1/rank.
const cumulative = new Float64Array(VOCABULARY);
for (let i = 0, sum = 0; i < VOCABULARY; i++) cumulative[i] = sum += 1 / (i + 1);
function zipfWord(): string {
  const target = random() * cumulative[VOCABULARY - 1];
  let lo = 0, hi = VOCABULARY - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid] < target) lo = mid + 1;
    else hi = mid;
  }
  return words[lo];
}
function sentence(): string {
  const out: string[] = [];
  for (let i = 0; i < 20; i++) out.push(zipfWord());
  return out.join(" ");
}
function query(): string {
  const pick = () => words[10 + Math.floor(random() * 990)];
  return `${pick()} ${pick()}`;
}

const INSERT_SQL = "INSERT INTO messages(conversation_id, role, content, parts, model, tool_calls, tool_call_id, " +
  "prompt_tokens, completion_tokens, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

function rawDatabase(path: string, synchronous: "NORMAL" | "FULL"): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous}; PRAGMA foreign_keys = ON;`);
  db.exec(`PRAGMA cache_size = -${CACHE_KIB}; PRAGMA mmap_size = ${MMAP_BYTES};`);
  for (const migration of MIGRATIONS.conversations) db.exec(migration);
  db.prepare("INSERT INTO conversations(id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
    .run("c", null, null, Date.now(), Date.now());
  return db;
}

/**
 * Raw node:sqlite running the statements the store runs for an append, prepared once, against the
 * same schema: in one transaction, count the messages on the conversation, insert them, and index
 * the backlog for search once it reaches MESSAGE_INDEX_DEFER_LIMIT; the rest is indexed at the end,
 * inside the timing (as the store's trailing search does).
 */
function rawAppender(db: DatabaseSync): { append: (texts: string[]) => void; finish: () => void } {
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const touch = db.prepare(
    "UPDATE conversations SET message_count = message_count + ?, updated_at = max(updated_at, ?) WHERE id = ?",
  );
  const insert = db.prepare(INSERT_SQL);
  const seq = db.prepare("SELECT seq FROM fts_indexed WHERE name = 'messages_fts'");
  const index = db.prepare(
    "INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages WHERE id > ? ORDER BY id",
  );
  const record = db.prepare("UPDATE fts_indexed SET seq = ? WHERE name = 'messages_fts'");
  const catchUp = (last: number) => {
    index.run((seq.get() as { seq: number }).seq);
    record.run(last);
  };
  let last = 0;
  return {
    append(texts) {
      const now = Date.now();
      begin.run();
      touch.run(texts.length, now, "c");
      for (const text of texts) {
        last = Number(insert.run("c", "user", text, null, null, null, null, null, null, null, now).lastInsertRowid);
      }
      if (last - (seq.get() as { seq: number }).seq >= MESSAGE_INDEX_DEFER_LIMIT) catchUp(last);
      commit.run();
    },
    finish() {
      begin.run();
      catchUp(last);
      commit.run();
    },
  };
}

/** Raw node:sqlite: the store's single-message append (see {@link rawAppender}), same schema. */
function rawInsertRate(dir: string, texts: string[], synchronous: "NORMAL" | "FULL"): number {
  const db = rawDatabase(`${dir}/raw-${synchronous}.db`, synchronous);
  const appender = rawAppender(db);
  const began = performance.now();
  for (const text of texts) appender.append([text]);
  appender.finish();
  const seconds = (performance.now() - began) / 1000;
  db.close();
  return texts.length / seconds;
}

/**
 * Raw node:sqlite on the minimal schema, for comparison with its figures: a messages table
 * and an FTS5 index kept by an insert trigger, one insert per transaction or `batch` per transaction.
 */
function rawMinimalRate(path: string, texts: string[], batch: number): number {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec(`CREATE TABLE messages(id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, role TEXT NOT NULL,
      content TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
      INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;`);
  const insert = db.prepare("INSERT INTO messages(conversation_id, role, content, created_at) VALUES (?, ?, ?, ?)");
  const began = performance.now();
  for (let done = 0; done < texts.length; done += batch) {
    if (batch > 1) db.exec("BEGIN");
    for (let i = done; i < done + batch; i++) insert.run("c", "user", texts[i], Date.now());
    if (batch > 1) db.exec("COMMIT");
  }
  const seconds = (performance.now() - began) / 1000;
  db.close();
  return texts.length / seconds;
}

async function storeInsertRate(memory: LocalMemory, conversation: string, texts: string[]): Promise<number> {
  const began = performance.now();
  for (const content of texts) await memory.appendMessages(conversation, [{ role: "user", content }]);
  // A search indexes what waits for the full-text index, so every timed message is indexed.
  await memory.searchMessages({ query: texts[0], limit: 1 });
  return texts.length / ((performance.now() - began) / 1000);
}

export default async function (ctx: BenchContext): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-bench-memory-" });
  const dir = `${dataDir}/tabagent_db`;
  try {
    const memory = await openLocalMemory({ dir });
    const singles = Array.from({ length: SINGLE }, sentence);

    // Single inserts: ours and raw, alternated twice on fresh files, best of each (the machine is shared).
    const conversation = (await memory.createConversation({ title: "singles" })).id;
    let raw = 0, ours = 0;
    for (let round = 0; round < 2; round++) {
      const half = singles.slice(round * SINGLE / 2, (round + 1) * SINGLE / 2);
      raw = Math.max(raw, rawInsertRate(await Deno.makeTempDir({ dir: dataDir }), half, "NORMAL"));
      ours = Math.max(ours, await storeInsertRate(memory, conversation, half));
    }
    ctx.report("insert_single_per_s", ours, "msg/s");
    ctx.report("insert_single_raw_per_s", raw, "msg/s");
    ctx.report("store_overhead_ratio", raw / ours, "x");
    ctx.report(
      "insert_single_raw_full_sync_per_s",
      rawInsertRate(await Deno.makeTempDir({ dir: dataDir }), singles.slice(0, 5_000), "FULL"),
      "msg/s",
    );
    ctx.note("synchronous=NORMAL (WAL): commits survive a process crash; FULL adds an fsync per commit");
    const minimalTexts = singles.slice(0, 5_000);
    ctx.report(
      "insert_single_raw_minimal_schema_per_s",
      rawMinimalRate(`${dataDir}/minimal-single.db`, minimalTexts, 1),
      "msg/s",
    );

    // Batches of 1,000, building the 100k-message corpus.
    const corpus = (await memory.createConversation({ title: "corpus" })).id;
    const ids: string[] = [];
    let batchSeconds = 0;
    for (let done = 0; done < CORPUS; done += BATCH) {
      const batch = Array.from({ length: BATCH }, () => ({ role: "user" as const, content: sentence() }));
      const began = performance.now();
      const stored = await memory.appendMessages(corpus, batch);
      batchSeconds += (performance.now() - began) / 1000;
      for (const message of stored) ids.push(message.id);
    }
    ctx.report("insert_batch_per_s", CORPUS / batchSeconds, "msg/s");
    {
      const raw = rawDatabase(`${dataDir}/raw-batch.db`, "NORMAL");
      const appender = rawAppender(raw);
      const texts = Array.from({ length: 20 * BATCH }, sentence);
      const began = performance.now();
      for (let done = 0; done < texts.length; done += BATCH) appender.append(texts.slice(done, done + BATCH));
      appender.finish();
      ctx.report("insert_batch_raw_per_s", texts.length / ((performance.now() - began) / 1000), "msg/s");
      raw.close();
      ctx.report(
        "insert_batch_raw_minimal_schema_per_s",
        rawMinimalRate(`${dataDir}/minimal-batch.db`, texts, BATCH),
        "msg/s",
      );
    }

    // Point reads by id.
    const picks = Array.from({ length: POINT_READS }, () => ids[Math.floor(random() * ids.length)]);
    let began = performance.now();
    for (const id of picks) await memory.getMessage(id);
    ctx.report("read_point_per_s", POINT_READS / ((performance.now() - began) / 1000), "reads/s");
    {
      const raw = new DatabaseSync(`${dir}/conversations.db`, { readOnly: true });
      const select = raw.prepare(`SELECT * FROM messages WHERE id = ?`);
      const rowIds = picks.map((id) => Number(id.slice(4)));
      began = performance.now();
      for (const id of rowIds) select.get(id);
      ctx.report("read_point_raw_per_s", POINT_READS / ((performance.now() - began) / 1000), "reads/s");
      raw.close();
    }

    // FTS: two-word queries, top 10 by rank, through the search worker.
    const total = (await memory.stats()).messages;
    ctx.note(`searching ${total} messages`);
    for (let i = 0; i < 50; i++) await memory.searchMessages({ query: query(), limit: 10 }); // warm the cache
    const latencies: number[] = [];
    let hits = 0;
    for (let i = 0; i < QUERIES; i++) {
      began = performance.now();
      hits += (await memory.searchMessages({ query: query(), limit: 10 })).length;
      latencies.push(performance.now() - began);
    }
    ctx.report("fts_p99_ms", percentile(latencies, 99), "ms");
    ctx.report("fts_p50_ms", percentile(latencies, 50), "ms");
    ctx.note(`${(hits / QUERIES).toFixed(1)} hits per query on average`);
    await memory.flush();
    await memory.close();

    // /v1/health while 8 clients search, against the real server on the same files.
    await using server = await startServer({ dataDir, args: ["--mode", "http", "--no-ml"] });
    // The search clients run in a worker: the probe below must measure the server, not wait behind
    // its own process handling 8 clients' responses.
    const until = Date.now() + HEALTH_SECONDS * 1000;
    const stop = performance.now() + HEALTH_SECONDS * 1000;
    const load = new Worker(new URL("./_search_load.ts", import.meta.url), { type: "module" });
    const loadDone = new Promise<number>((resolve, reject) => {
      load.onmessage = (event) => resolve(event.data.searches);
      load.onerror = (event) => reject(new Error(event.message));
    });
    load.postMessage({
      url: server.url,
      token: server.token,
      clients: SEARCH_CLIENTS,
      until,
      queries: Array.from({ length: 5_000 }, query),
    });
    const health: number[] = [];
    await new Promise((resolve) => setTimeout(resolve, 200));
    while (performance.now() < stop - 100) {
      began = performance.now();
      const res = await fetch(`${server.url}/v1/health`);
      await res.arrayBuffer();
      health.push(performance.now() - began);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const searches = await loadDone;
    load.terminate();
    ctx.report("health_p99_during_search_ms", percentile(health, 99), "ms");
    ctx.note(
      `${health.length} health checks while ${searches} searches ran (${(searches / HEALTH_SECONDS).toFixed(0)}/s)`,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}
