/**
 * The concurrent hybrid query (keyword list in its own worker, vector list here) against the
 * serial one, over real stores, a real index and real all-MiniLM-L6-v2 vectors: same hits, same
 * ranks, with filters, ranking and diversity; and a keyword worker that cannot read its stores
 * answers a typed error.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { TabAgentError } from "../../errors/mod.ts";
import { openLocalMemory } from "../local.ts";
import { openStoreReadOnly, storeFile } from "../stores.ts";
import { loadMiniLm } from "../testing/minilm.ts";
import { VectorIndex } from "../index/vector_index.ts";
import { DEFAULT_ANN_BACKEND } from "../index/ann.ts";
import { keywordKeysOf, runQuery, runQueryConcurrently } from "./engine.ts";
import { claimJob, CONTROL, keywordChannel, KeywordThread, REQUEST_BYTES } from "./keyword_thread.ts";
import { DEFAULT_EMBEDDING_MODEL, MemoryQuerySchema } from "./schema.ts";
import { RELEVANCE_MESSAGES, RELEVANCE_QUERIES } from "./testing/relevance_set.ts";

Deno.test("hybrid query with the keyword list in its own worker: the same result as the serial query", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-keyword-thread-" });
  const minilm = await loadMiniLm();
  const thread = new KeywordThread(dir);
  const embeddings = new DatabaseSync(`${dir}/${storeFile("embeddings")}`);
  const readers: DatabaseSync[] = [];
  try {
    const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed });
    const conversations = [(await memory.createConversation()).id, (await memory.createConversation()).id];
    const messages = RELEVANCE_MESSAGES.slice(0, 60);
    for (const [c, conversation] of conversations.entries()) {
      await memory.appendMessages(
        conversation,
        messages.flatMap((content, i) =>
          i % 2 === c ? [{ role: i % 3 ? "user" as const : "assistant" as const, content }] : []
        ),
      );
    }
    await memory.embedPending();
    await memory.flush();
    await memory.close();

    const index = await VectorIndex.open({
      dir: `${dir}/index`,
      db: embeddings,
      model: DEFAULT_EMBEDDING_MODEL,
      backend: DEFAULT_ANN_BACKEND,
    });
    assert.equal(index.size, messages.length);
    const open = (store: "conversations" | "knowledge" | "tool_results") => {
      const db = openStoreReadOnly(`${dir}/${storeFile(store)}`);
      readers.push(db);
      return db;
    };
    const sources = {
      conversations: open("conversations"),
      knowledge: open("knowledge"),
      tool_results: open("tool_results"),
      vectors: index,
    };
    const shapes = [
      {},
      { conversation_id: conversations[1] },
      { roles: ["assistant"] },
      { stores: ["messages", "facts"] },
      { ranking: { recency: 0.3, importance: 0.2 } },
      { diversity: 0.5, k: 5 },
      { mode: "keyword" },
      { mode: "vector" },
    ];
    let compared = 0;
    for (const { query: text } of RELEVANCE_QUERIES.slice(0, 12)) {
      const [vector] = await minilm.embed([text], { priority: "interactive" });
      for (const shape of shapes) {
        const query = MemoryQuerySchema.parse({ query: text, ...shape });
        const serial = runQuery(sources, query, vector);
        const concurrent = await runQueryConcurrently(sources, query, vector, (q, fused) => thread.job(q, fused));
        // scores blend in Date.now() when recency counts: compare the order and the lists' ranks
        const strip = (r: typeof serial) => ({ used: r.used, hits: r.hits.map(({ score: _, ...hit }) => hit) });
        assert.deepEqual(strip(concurrent), strip(serial), `${text} ${JSON.stringify(shape)}`);
        if (query.mode === "hybrid") {
          assert.deepEqual(await thread.keys(query, true), keywordKeysOf(sources, query, true));
        }
        compared += serial.hits.length;
      }
    }
    assert.ok(compared > 100, `only ${compared} hits compared`);
  } finally {
    await thread.close();
    for (const db of readers) db.close();
    embeddings.close();
    await minilm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keyword worker: stores it cannot open give a typed error, and it serves again once they exist", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-keyword-thread-" });
  const thread = new KeywordThread(`${dir}/missing`);
  try {
    const query = MemoryQuerySchema.parse({ query: "anything at all" });
    await assert.rejects(thread.keys(query, true), (error) => error instanceof TabAgentError);
    const memory = await openLocalMemory({ dir: `${dir}/missing`, searchWorkers: 0 });
    const { id } = await memory.createConversation();
    await memory.appendMessages(id, [{ role: "user", content: "anything at all here" }]);
    await memory.flush(); // the full-text index is written in the background
    await memory.close();
    assert.equal((await thread.keys(query, false)).length, 1);
  } finally {
    await thread.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keyword jobs: exactly one side runs each; one taken back is skipped and the worker serves on", async () => {
  // the worker takes a waiting job once, never one taken back or one a newer job replaced
  const { control } = keywordChannel();
  Atomics.store(control, CONTROL.claim, 7);
  assert.equal(claimJob(control, 7), true);
  assert.equal(claimJob(control, 7), false);
  assert.equal(Atomics.load(control, CONTROL.claim), -7);
  Atomics.store(control, CONTROL.claim, 0); // taken back
  assert.equal(claimJob(control, 8), false);
  Atomics.store(control, CONTROL.claim, 10); // replaced by a newer job
  assert.equal(claimJob(control, 9), false);
  assert.equal(Atomics.load(control, CONTROL.claim), 10);

  const dir = await Deno.makeTempDir({ prefix: "tabagent-keyword-thread-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0 });
  const thread = new KeywordThread(dir);
  try {
    const { id } = await memory.createConversation();
    await memory.appendMessages(id, [
      { role: "user", content: "the ferry to the island leaves at noon" },
      { role: "user", content: "a ferry timetable for the island ferry" },
      { role: "user", content: "nothing about boats" },
    ]);
    await memory.flush();
    const query = MemoryQuerySchema.parse({ query: "island ferry" });
    const expected = await thread.keys(query, true);
    assert.equal(expected.length, 2);
    for (let i = 0; i < 40; i++) {
      const job = thread.job(query, true);
      if (!job.withdraw()) assert.deepEqual(job.take(), expected); // the worker had it: it answers
    }
    // jobs taken back leave nothing behind: the next ones are answered, and an answered job stays the worker's
    const answered = thread.job(query, true);
    assert.deepEqual(answered.take(), expected);
    assert.equal(answered.withdraw(), false);
    // a job left unread (its asker failed) does not confuse the next one's answer
    thread.job(MemoryQuerySchema.parse({ query: "nothing about boats" }), true);
    assert.deepEqual(await thread.keys(query, true), expected);
  } finally {
    await thread.close();
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keyword worker: a query too long for the shared request is left to its asker", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-keyword-thread-" });
  const thread = new KeywordThread(dir);
  try {
    const query = MemoryQuerySchema.parse({ query: "ferry", tags: ["x".repeat(100)] });
    const long = { ...query, tags: Array.from({ length: REQUEST_BYTES / 100 }, (_, i) => `${i}`.padEnd(100, "x")) };
    assert.equal(thread.job(long, true).withdraw(), true);
  } finally {
    await thread.close();
    await Deno.remove(dir, { recursive: true });
  }
});
