/**
 * Embedding on write over real stores, the real index worker and real all-MiniLM-L6-v2: tool
 * results are embedded from the outbox like messages (idempotently) and found by a query filtered
 * to them; deleting a conversation or a kept page takes its vectors out of the index.
 */
import assert from "node:assert/strict";
import { type LocalMemory, openLocalMemory } from "../local.ts";
import { loadMiniLm } from "../testing/minilm.ts";

async function withMemory(fn: (memory: LocalMemory, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-embed-write-" });
  const minilm = await loadMiniLm();
  // the background loops run as in the server; the test waits with embedPending() and asserts on
  // what is stored, never on which loop stored it
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed });
  try {
    await fn(memory, dir);
  } finally {
    await memory.close();
    await minilm.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Records a successful tool call; the writer embeds its name, arguments and result. */
function recordOk(
  memory: LocalMemory,
  call: { tool_name: string; arguments: unknown; result: unknown; conversation_id?: string },
): ReturnType<LocalMemory["recordToolResult"]> {
  return memory.recordToolResult({ ...call, status: "ok", duration_ms: 100 });
}

async function indexSize(memory: LocalMemory): Promise<number> {
  await memory.embedPending();
  const [status] = await memory.indexStatus();
  return status.size;
}

Deno.test("tool results are embedded from the outbox, once, and a query filtered to them finds them by meaning", async () => {
  await withMemory(async (memory) => {
    const { id: conversation } = await memory.createConversation({ title: "weather" });
    await memory.appendMessages(conversation, [{ role: "user", content: "Is it going to rain in Lyon tomorrow?" }]);
    const forecast = { summary: "Heavy showers and thunderstorms all afternoon", high_c: 14 };
    const weather = await recordOk(memory, {
      tool_name: "get_forecast",
      arguments: { city: "Lyon" },
      result: forecast,
      conversation_id: conversation,
    });
    const quote = "ACME closed at 41.20, down 3 percent";
    const stock = await recordOk(memory, { tool_name: "get_quote", arguments: { symbol: "ACME" }, result: quote });
    await memory.embedPending();
    let stats = await memory.stats();
    assert.deepEqual([stats.embeddings, stats.pending_embeddings], [3, 0]);
    // idempotent: replaying the outbox from the start queues nothing that already has a vector
    await memory.rebuildDerived();
    assert.deepEqual((await memory.stats()).pending_embeddings, 0);
    await memory.embedPending();
    stats = await memory.stats();
    assert.deepEqual([stats.embeddings, stats.pending_embeddings], [3, 0]);
    assert.deepEqual(await memory.checkDerived(), []);
    for (const tool of [weather, stock]) {
      assert.deepEqual((await memory.getEmbedding("tool_result", tool.id, memory.embeddingModel)).dimensions, 384);
    }

    // found by meaning alone (no shared word), and only tool results when the query says so
    const rain = await memory.query({ query: "will I need an umbrella?", stores: ["tool_results"], k: 2 });
    assert.deepEqual(rain.hits[0].id, weather.id);
    assert.deepEqual(rain.hits[0].kind, "tool_result");
    assert.deepEqual(rain.hits[0].conversation_id, conversation);
    assert.ok(rain.hits[0].text.includes("get_forecast") && rain.hits[0].text.includes("thunderstorms"));
    assert.ok(rain.hits.every((h) => h.kind === "tool_result"));
    // and by keyword through the tool results' full-text index
    const byWord = await memory.query({ query: "ACME quote", stores: ["tool_results"], mode: "keyword" });
    assert.deepEqual(byWord.hits.map((h) => h.id), [stock.id]);
    // a conversation filter applies to tool results as well
    const scoped = await memory.query({
      query: "share price",
      stores: ["tool_results"],
      conversation_id: conversation,
    });
    assert.deepEqual(scoped.hits.map((h) => h.id), [weather.id]);
    // unfiltered queries search every store, tool results included
    const all = await memory.query({ query: "stock market share price", k: 3 });
    assert.deepEqual(all.hits[0].id, stock.id);
  });
});

Deno.test("deleting a conversation or a kept page removes its chunks and their vectors from the index", async () => {
  await withMemory(async (memory) => {
    const { id: keep } = await memory.createConversation({ title: "kept" });
    const { id: doomed } = await memory.createConversation({ title: "doomed" });
    await memory.appendMessages(keep, [{ role: "user", content: "My sister lives in Porto." }]);
    await memory.appendMessages(doomed, [
      { role: "user", content: "The lighthouse keeper retired in March." },
      { role: "assistant", content: "Lighthouses are mostly automated now." },
    ]);
    const text = "Sourdough needs a starter fed daily. ".repeat(30) + "\n\n" +
      "Bake the loaf in a cast iron pot at a high temperature. ".repeat(20);
    const inDoomed = await memory.addDocument({ conversation_id: doomed, url: "https://example.org/bread", text });
    const standalone = await memory.addDocument({
      url: "https://example.org/tides",
      title: "Tides",
      text: "Spring tides happen at new and full moon. ".repeat(25),
    });
    assert.ok(inDoomed.chunks >= 2 && standalone.chunks >= 1);
    const everything = 3 + inDoomed.chunks + standalone.chunks;
    assert.deepEqual(await indexSize(memory), everything);
    const tides = await memory.query({ query: "when are tides strongest?", stores: ["documents"], mode: "vector" });
    assert.deepEqual(tides.hits[0].document?.id, standalone.id);

    // the page alone: its chunks leave the truth store, the embeddings store and the index
    await memory.deleteDocument(standalone.id);
    await memory.flush();
    assert.deepEqual(await indexSize(memory), everything - standalone.chunks);
    const after = await memory.query({ query: "when are tides strongest?", stores: ["documents"], mode: "vector" });
    assert.ok(after.hits.every((h) => h.document?.id !== standalone.id));
    assert.deepEqual((await memory.stats()).embeddings, everything - standalone.chunks);

    // the conversation: its messages and the page kept in it go, the other conversation stays
    await memory.deleteConversation(doomed);
    await memory.flush();
    assert.deepEqual(await indexSize(memory), 1);
    const left = await memory.query({ query: "lighthouse sourdough Porto", mode: "vector", k: 10 });
    assert.deepEqual(left.hits.map((h) => h.conversation_id), [keep]);
    assert.deepEqual((await memory.stats()).embeddings, 1);
    assert.deepEqual(await memory.checkDerived(), []);
  });
});
