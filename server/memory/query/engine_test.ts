/**
 * The converged query: its vector side when a filter leaves many candidates (the graph is walked and
 * each item checked against the filter: a truncated candidate list would hide most of them), and
 * importance ranking.
 */
import assert from "node:assert/strict";
import { openLocalMemory } from "../local.ts";
import { createAnnIndex, DEFAULT_HNSW } from "../index/ann.ts";
import { itemKey, keyItem } from "../index/keys.ts";
import { EXACT_RERANK_SMALL, HYBRID_VECTOR_EXPANSION, keywordKeysOf, runQuery } from "./engine.ts";
import { reciprocalRankFusion } from "./fusion.ts";
import { closeKeywordSources, openKeywordSources } from "./keyword_thread.ts";
import { MemoryQuerySchema } from "./schema.ts";

const MODEL = "test/random-8";

function unit(seed: number): number[] {
  const v = Array.from({ length: 8 }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 43758.5453 % 1);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function cosine(a: number[], b: number[]): number {
  return a.reduce((sum, x, i) => sum + x * b[i], 0);
}

Deno.test("a filter that leaves more candidates than are reranked exactly still finds the nearest items that pass it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-engine-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embeddingModel: MODEL });
  try {
    const { id: big } = await memory.createConversation({ title: "big" });
    const { id: small } = await memory.createConversation({ title: "small" });
    const many = EXACT_RERANK_SMALL + 200;
    const messages = [];
    for (let from = 0; from < many; from += 500) {
      messages.push(
        ...await memory.appendMessages(
          big,
          Array.from({ length: Math.min(500, many - from) }, (_, i) => ({
            role: "user" as const,
            content: `note ${from + i}`,
          })),
        ),
      );
    }
    const others = await memory.appendMessages(
      small,
      Array.from({ length: 20 }, (_, i) => ({ role: "assistant" as const, content: `other ${i}` })),
    );
    const vectors = new Map<string, number[]>();
    for (const [i, message] of [...messages, ...others].entries()) {
      vectors.set(message.id, unit(i + 1));
      await memory.putEmbedding({ item_kind: "message", item_id: message.id, model: MODEL, vector: unit(i + 1) });
    }
    await memory.embedPending();
    const query = unit(100_000);
    const nearest = (ids: string[]) =>
      ids.map((id) => ({ id, score: cosine(vectors.get(id)!, query) })).sort((a, b) => b.score - a.score)[0].id;

    // the big conversation: more candidates than an exact rerank takes, so the graph is walked
    const inBig = await memory.query({ query: "x", model: MODEL, vector: query, mode: "vector", conversation_id: big });
    assert.deepEqual(inBig.used.exact_rerank, false);
    assert.ok(inBig.hits.length === 10 && inBig.hits.every((h) => h.conversation_id === big));
    assert.deepEqual(inBig.hits[0].id, nearest(messages.map((m) => m.id)));
    // a role filter that leaves many: every hit passes it
    const users = await memory.query({ query: "x", model: MODEL, vector: query, mode: "vector", roles: ["user"] });
    assert.ok(users.hits.length === 10 && users.hits.every((h) => h.role === "user"));
    // the small one: its few candidates are reranked exactly
    const inSmall = await memory.query({
      query: "x",
      model: MODEL,
      vector: query,
      mode: "vector",
      conversation_id: small,
      k: 3,
    });
    assert.deepEqual(inSmall.used.exact_rerank, true);
    assert.deepEqual(inSmall.hits[0].id, nearest(others.map((m) => m.id)));
    assert.ok(inSmall.hits.every((h) => h.conversation_id === small));
    // only messages (most of the index): the graph, keeping messages
    const onlyMessages = await memory.query({ query: "x", model: MODEL, vector: query, stores: ["messages"] });
    assert.deepEqual(onlyMessages.used.exact_rerank, false);
    assert.deepEqual(onlyMessages.hits[0].id, nearest([...vectors.keys()]));
  } finally {
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("importance (metadata.importance) lifts an item only when it is weighted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-engine-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embeddingModel: MODEL });
  try {
    const { id } = await memory.createConversation();
    const [plain, important] = await memory.appendMessages(id, [
      { role: "user", content: "harbour ferry timetable harbour ferry" },
      { role: "user", content: "harbour ferry timetable", metadata: { importance: 1 } },
    ]);
    await memory.flush();
    const ids = async (ranking?: { importance: number }) =>
      (await memory.query({ query: "harbour ferry", mode: "keyword", ...(ranking ? { ranking } : {}) })).hits
        .map((h) => h.id);
    // by keywords alone the message that repeats the words ranks first
    assert.deepEqual(await ids(), [plain.id, important.id]);
    assert.deepEqual(await ids({ importance: 0.9 }), [important.id, plain.id]);
  } finally {
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the keyword list ranks by BM25 as GET /v1/memory/search does (its bm25() is FTS5's rank)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-engine-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embeddingModel: MODEL });
  try {
    const { id } = await memory.createConversation();
    // every message a different length and count of "ferry": no two BM25 scores tie
    await memory.appendMessages(
      id,
      Array.from({ length: 12 }, (_, i) => ({
        role: "user" as const,
        content: [...new Array(1 + (i % 4)).fill("ferry"), ...new Array(i + 1).fill("pier")].join(" "),
      })),
    );
    await memory.flush();
    const search = (await memory.searchMessages({ query: "ferry", limit: 10 })).map((h) => h.message.id);
    const query = await memory.query({ query: "ferry", mode: "keyword", stores: ["messages"], k: 10 });
    assert.deepEqual(query.hits.map((h) => h.id), search);
    assert.deepEqual(query.hits.map((h) => h.keyword_rank), Array.from({ length: 10 }, (_, i) => i + 1));
  } finally {
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A fresh store holding `count` messages "ferry note i" in one conversation, and keyword sources
 * over it, for `fn`; all closed and removed afterwards.
 */
async function withFerryNotes(
  count: number,
  fn: (store: { sources: ReturnType<typeof openKeywordSources>; id: string; stored: { id: string }[] }) => unknown,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-engine-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embeddingModel: MODEL });
  const sources = openKeywordSources(dir);
  try {
    const { id } = await memory.createConversation();
    const stored = await memory.appendMessages(
      id,
      Array.from({ length: count }, (_, i) => ({ role: "user" as const, content: `ferry note ${i}` })),
    );
    await memory.flush();
    await fn({ sources, id, stored });
  } finally {
    closeKeywordSources(sources);
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The engine's vector source over `ann` (no exact rerank), searching through `search`. */
function annVectors(
  ann: ReturnType<typeof createAnnIndex>,
  search = (query: Float32Array, k: number, options?: { expansion?: number }) =>
    ann.search(query, k, options?.expansion),
) {
  return {
    dimensions: 8,
    size: ann.size(),
    search,
    rerank: () => ({ keys: [], distances: [] }),
    vectorsOf: () => new Map(),
  };
}

Deno.test("hits skip items whose rows are gone (a vector not yet dropped) and still fill k, in fused order", async () => {
  await withFerryNotes(30, ({ sources, id, stored }) => {
    const rowIds = stored.map((m) => Number(m.id.replace("msg_", "")));
    // the index as a query may see it: every stored message, and 12 deleted ones it still holds,
    // nearest to the query, so the first rows read are mostly missing
    const ann = createAnnIndex("usearch", { dimensions: 8, metric: "cosine" });
    const ghosts = Array.from({ length: 12 }, (_, i) => 10_000 + i);
    const keys = [...ghosts, ...rowIds].map((n) => itemKey("message", n));
    ann.addMany(keys, Float32Array.from(keys.flatMap((_, i) => unit(i < ghosts.length ? 0 : i))));
    const vector = Float32Array.from(unit(0));
    const vectors = annVectors(ann);
    // every store: nothing filters, so the vector list is the index's search
    // (weighted to the vectors, so that the ghosts rank among the first ten)
    const query = MemoryQuerySchema.parse({
      query: "ferry note",
      model: MODEL,
      k: 10,
      weights: { keyword: 0.05, vector: 1 },
    });
    const result = runQuery({ ...sources, vectors }, query, vector);
    // what fusion ranks, less the rows that are gone
    const keyword = keywordKeysOf(sources, query, true);
    const nearest = ann.search(vector, 50).keys;
    const fused = reciprocalRankFusion([{ ids: keyword, weight: 0.05 }, { ids: nearest, weight: 1 }]).map((f) => f.id);
    assert.ok(fused.slice(0, 10).filter((key) => keyItem(key).id >= 10_000).length >= 5);
    const expected = fused
      .filter((key) => !ghosts.some((ghost) => itemKey("message", ghost) === key))
      .slice(0, 10)
      .map((key) => `msg_${keyItem(key).id}`);
    assert.deepEqual(result.hits.map((h) => h.id), expected);
    assert.ok(result.used.vector && result.hits.some((h) => h.vector_rank !== null && h.keyword_rank !== null));
    assert.ok(result.hits.every((h) => h.text.startsWith("ferry note") && h.conversation_id === id));
  });
});

Deno.test("a hybrid query searches the vector index with the hybrid expansion; a vector-only query with the index's own", async () => {
  await withFerryNotes(20, ({ sources, stored }) => {
    const ann = createAnnIndex("usearch", { dimensions: 8, metric: "cosine" });
    const keys = stored.map((m) => itemKey("message", Number(m.id.replace("msg_", ""))));
    ann.addMany(keys, Float32Array.from(keys.flatMap((_, i) => unit(i))));
    const asked: (number | undefined)[] = [];
    const vectors = annVectors(ann, (query, k, options) => {
      asked.push(options?.expansion);
      return ann.search(query, k, options?.expansion);
    });
    const vector = Float32Array.from(unit(3));
    const hybrid = runQuery(
      { ...sources, vectors },
      MemoryQuerySchema.parse({ query: "ferry note", model: MODEL }),
      vector,
    );
    const vectorOnly = runQuery(
      { ...sources, vectors },
      MemoryQuerySchema.parse({ query: "ferry note", model: MODEL, mode: "vector" }),
      vector,
    );
    assert.deepEqual(asked, [HYBRID_VECTOR_EXPANSION, undefined]);
    assert.ok(HYBRID_VECTOR_EXPANSION < DEFAULT_HNSW.expansionSearch);
    // both lists answered: the nearest item is the vector list's first either way
    assert.ok(hybrid.used.keyword && hybrid.used.vector && !vectorOnly.used.keyword);
    assert.equal(vectorOnly.hits[0].id, stored[3].id);
    assert.ok(hybrid.hits.some((h) => h.id === stored[3].id && h.vector_rank === 1));
  });
});
