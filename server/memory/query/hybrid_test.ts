/**
 * Hybrid search end to end over real stores, the real vector index worker and real all-MiniLM-L6-v2
 * embeddings (the ONNX export from setup): relevance on the labelled set, filters, diversity, and
 * refusals of bad input.
 */
import assert from "node:assert/strict";
import { TabAgentError } from "../../errors/mod.ts";
import { type LocalMemory, openLocalMemory } from "../local.ts";
import { loadMiniLm } from "../testing/minilm.ts";
import { ndcgAtK } from "./fusion.ts";
import { RELEVANCE_MESSAGES, RELEVANCE_QUERIES } from "./testing/relevance_set.ts";

interface World {
  memory: LocalMemory;
  /** message id of RELEVANCE_MESSAGES[i] */
  ids: string[];
  conversations: string[];
}

async function withWorld(fn: (world: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-hybrid-" });
  const minilm = await loadMiniLm();
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed });
  try {
    const conversations: string[] = [];
    const ids: string[] = [];
    for (let c = 0; c < 3; c++) {
      const { id } = await memory.createConversation({ title: `c${c}`, metadata: c === 2 ? { tags: ["work"] } : {} });
      conversations.push(id);
    }
    // spread the messages over the conversations, alternating roles
    const stored = await Promise.all(conversations.map((conversation, c) =>
      memory.appendMessages(
        conversation,
        RELEVANCE_MESSAGES.flatMap((content, i) =>
          i % 3 === c ? [{ role: i % 2 ? "assistant" as const : "user" as const, content }] : []
        ),
      )
    ));
    RELEVANCE_MESSAGES.forEach((_, i) => (ids[i] = stored[i % 3][Math.floor(i / 3)].id));
    await memory.embedPending(); // the background writer may have stored some of them already
    const stats = await memory.stats();
    assert.deepEqual([stats.pending_embeddings, stats.embeddings], [0, RELEVANCE_MESSAGES.length]);
    await fn({ memory, ids, conversations });
  } finally {
    await memory.close();
    await minilm.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("hybrid query: beats vector-only and keyword-only on the labelled set, honours filters, refuses bad input", async () => {
  await withWorld(async ({ memory, ids, conversations }) => {
    const ndcg: Record<string, number> = {};
    for (const mode of ["hybrid", "vector", "keyword"] as const) {
      let sum = 0;
      for (const { query, relevant } of RELEVANCE_QUERIES) {
        const { hits, used } = await memory.query({ query, mode, k: 10 });
        assert.deepEqual([used.keyword, used.vector], [mode !== "vector", mode !== "keyword"]);
        sum += ndcgAtK(hits.map((h) => h.id), new Map([[ids[relevant], 1]]), 10);
      }
      ndcg[mode] = sum / RELEVANCE_QUERIES.length;
    }
    assert.ok(ndcg.hybrid > ndcg.vector && ndcg.hybrid > ndcg.keyword, `nDCG@10 ${JSON.stringify(ndcg)}`);

    // a paraphrase with no shared word is found by meaning, with both ranks reported
    const { hits } = await memory.query({ query: "tell me about our pet dog", k: 3 });
    assert.deepEqual(hits[0].id, ids[3]);
    assert.ok(hits[0].vector_rank === 1 && hits[0].distance !== null && hits[0].text.includes("greyhound"));

    // structural filters: conversation, role, tags, time scope; a filtered query reranks exactly
    const inConversation = await memory.query({ query: "dentist Okonkwo", conversation_id: conversations[1] });
    assert.ok(inConversation.hits.every((h) => h.conversation_id === conversations[1]));
    assert.ok(inConversation.used.exact_rerank);
    const assistant = await memory.query({ query: "allergic", roles: ["assistant"] });
    assert.ok(assistant.hits.length > 0 && assistant.hits.every((h) => h.role === "assistant"));
    const tagged = await memory.query({ query: "allergic", tags: ["work"] });
    assert.ok(tagged.hits.length > 0 && tagged.hits.every((h) => h.conversation_id === conversations[2]));
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual((await memory.query({ query: "allergic", since: future })).hits, []);
    const onlyFacts = await memory.query({ query: "allergic", stores: ["facts"] });
    assert.deepEqual(onlyFacts.hits, []);

    // diversity: the same message stored three times fills the top only without MMR
    const [copy] = conversations;
    await memory.appendMessages(
      copy,
      Array.from({ length: 3 }, () => ({ role: "user" as const, content: "The ferry to the island leaves at dawn." })),
    );
    await memory.embedPending();
    const plain = await memory.query({ query: "ferry to the island", k: 3 });
    const diverse = await memory.query({ query: "ferry to the island", k: 3, diversity: 0.3 });
    assert.deepEqual(new Set(plain.hits.map((h) => h.text)).size, 1);
    assert.ok(new Set(diverse.hits.map((h) => h.text)).size >= 2, JSON.stringify(diverse.hits.map((h) => h.text)));

    // queries sent together (the index worker takes them one at a time) answer as they do one by one
    const texts = RELEVANCE_QUERIES.slice(0, 8).map((q) => q.query);
    const oneByOne = [];
    for (const query of texts) oneByOne.push(await memory.query({ query, k: 5 }));
    assert.deepEqual(await Promise.all(texts.map((query) => memory.query({ query, k: 5 }))), oneByOne);

    // bad input is refused with validation_failed
    const bad = [
      { query: "" },
      { query: "   " },
      { query: "x", k: 0 },
      { query: "x", k: 1_000_000 },
      { query: "x", vector: [0.1, 0.2, 0.3] }, // wrong dimension for MiniLM (384)
      { query: "x", vector: [NaN, ...new Array(383).fill(0)] },
      { query: "x", since: "2026-02-01T00:00:00Z", until: "2026-01-01T00:00:00Z" },
      { query: "x", ranking: { recency: 0.8, importance: 0.5 } },
    ];
    for (const input of bad) {
      const error = await memory.query(input as never).then(() => assert.fail("refused"), (e) => e);
      assert.ok(error instanceof TabAgentError);
      assert.deepEqual(error.code, "validation_failed", JSON.stringify(input));
    }
  });
});
