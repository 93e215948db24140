/**
 * The one behaviour suite every {@link MemoryClient} implementation must pass. `local_test.ts` runs it
 * in-process, `grpc_test.ts` over a real gRPC socket.
 */
import assert from "node:assert/strict";
import type { MemoryClient } from "../client.ts";
import { TabAgentError } from "../../errors/mod.ts";
import type { ErrorCode } from "../../errors/mod.ts";
import { MEMORY_MAX_MESSAGE_BYTES } from "../../config/mod.ts";

/** Opens a client over the stores in `dir` (created if empty). */
export type OpenClient = (dir: string) => Promise<MemoryClient>;

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, includes?: string): Promise<TabAgentError> {
  const error = await promise.then(() => assert.fail(`expected a rejection with ${code}`), (e) => e);
  assert.ok(error instanceof TabAgentError, `expected a TabAgentError, got ${error}`);
  assert.deepEqual(error.code, code, error.message);
  if (includes) assert.ok(error.message.includes(includes), `'${error.message}' lacks '${includes}'`);
  return error;
}

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

/** One behaviour of the suite: `memory` over fresh stores in `dir`; `open` opens another client. */
type SuiteCase = (memory: MemoryClient, dir: string, open: OpenClient) => Promise<void>;

/** The suite's cases, by title. */
const CASES: Record<string, SuiteCase> = {
  "conversations can be created, read, listed page by page, renamed and deleted": async (memory) => {
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await memory.createConversation({ title: `chat ${i}`, metadata: { i } }));
    assert.deepEqual(await memory.getConversation(created[2].id), created[2]);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await memory.listConversations({ cursor, limit: 2 });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((c) => c.id));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    assert.deepEqual(seen.sort(), created.map((c) => c.id).sort());

    const renamed = await memory.updateConversation(created[0].id, { title: "renamed" });
    assert.deepEqual(renamed.title, "renamed");
    assert.deepEqual(renamed.metadata, { i: 0 });
    assert.deepEqual((await memory.updateConversation(created[0].id, { metadata: null })).metadata, null);
    await memory.appendMessages(created[0].id, [{ role: "user", content: "latest activity" }]);
    assert.deepEqual((await memory.listConversations({ limit: 1 })).items[0].id, created[0].id);

    await memory.deleteConversation(created[1].id);
    await rejectsWith(memory.getConversation(created[1].id), "not_found", created[1].id);
    await rejectsWith(memory.deleteConversation(created[1].id), "not_found");
    await rejectsWith(memory.createConversation({ id: created[2].id }), "conflict");
    await rejectsWith(memory.listConversations({ cursor: "garbage" }), "validation_failed", "cursor");
    await rejectsWith(memory.createConversation({ title: "" }), "validation_failed", "title");
  },

  "messages are appended in order, read back whole and paged": async (memory) => {
    const conversation = await memory.createConversation({ title: "parts" });
    const [first, second, third] = await memory.appendMessages(conversation.id, [
      { role: "system", content: "You are terse." },
      {
        role: "user",
        content: [{ type: "text", text: "What is this?" }, {
          type: "image_url",
          image_url: { url: "data:image/png;base64,AAAA", detail: "low" },
        }],
        metadata: { tab: "https://example.com" },
      },
      {
        role: "assistant",
        content: "",
        model: "tiny-llama",
        tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }],
        prompt_tokens: 12,
        completion_tokens: 3,
      },
    ]);
    const [tool] = await memory.appendMessages(conversation.id, [{
      role: "tool",
      content: "42",
      tool_call_id: "call_1",
    }]);
    assert.deepEqual(await memory.getMessage(second.id), second);
    assert.deepEqual(second.metadata, { tab: "https://example.com" });
    assert.deepEqual(third.tool_calls?.length, 1);
    assert.deepEqual(third.prompt_tokens, 12);
    assert.deepEqual(tool.tool_call_id, "call_1");
    assert.deepEqual((await memory.getConversation(conversation.id)).message_count, 4);

    const page1 = await memory.listMessages(conversation.id, { limit: 3 });
    assert.deepEqual(page1.items, [first, second, third]);
    const page2 = await memory.listMessages(conversation.id, { limit: 3, cursor: page1.next_cursor! });
    assert.deepEqual(page2.items, [tool]);
    assert.deepEqual(page2.next_cursor, null);

    await rejectsWith(memory.getMessage("msg_999999"), "not_found", "msg_999999");
    await rejectsWith(memory.getMessage("nonsense"), "not_found");
    await rejectsWith(memory.listMessages("conv_missing"), "not_found", "conv_missing");
    await rejectsWith(memory.appendMessages("conv_missing", [{ role: "user", content: "hi" }]), "not_found");
  },

  "bad messages are refused naming the field, and a bad batch stores nothing": async (memory) => {
    const { id } = await memory.createConversation();
    await rejectsWith(
      // deno-lint-ignore no-explicit-any
      memory.appendMessages(id, [{ role: "user", content: "ok" }, { role: "wizard", content: "x" } as any]),
      "validation_failed",
      "messages.1.role",
    );
    await rejectsWith(memory.appendMessages(id, []), "validation_failed", "messages");
    await rejectsWith(
      memory.appendMessages(id, [{ role: "user", content: "x".repeat(MEMORY_MAX_MESSAGE_BYTES + 1) }]),
      "payload_too_large",
    );
    assert.deepEqual((await memory.listMessages(id)).items, []);
  },

  "full-text search ranks by BM25, marks snippets and stays safe with odd queries": async (memory) => {
    const trip = await memory.createConversation({ title: "trip" });
    const cooking = await memory.createConversation({ title: "cooking" });
    await memory.appendMessages(trip.id, [
      { role: "user", content: "Book a train from Paris to Lyon on Friday morning" },
      {
        role: "assistant",
        content: "The train to Lyon leaves at 9; another train leaves at 11. Train tickets are cheap.",
      },
      { role: "user", content: "And a hotel in Lyon near the station" },
    ]);
    await memory.appendMessages(cooking.id, [
      { role: "user", content: [{ type: "text", text: "A recipe for Lyon style onion soup" }] },
    ]);
    const hits = await memory.searchMessages({ query: "train Lyon" });
    assert.deepEqual(hits.length, 2);
    assert.ok(hits[0].score >= hits[1].score);
    assert.ok(hits[0].message.content.toString().includes("train"));
    assert.ok(hits.every((hit) => hit.snippet.includes("**")), JSON.stringify(hits.map((h) => h.snippet)));
    const scoped = await memory.searchMessages({ query: "Lyon", conversationId: cooking.id });
    assert.deepEqual(scoped.map((hit) => hit.conversation_id), [cooking.id]);
    assert.deepEqual((await memory.searchMessages({ query: "Lyon", limit: 1 })).length, 1);
    assert.deepEqual(
      await memory.searchMessages({ query: 'train" OR * NEAR(' }),
      await memory.searchMessages({
        query: "train OR NEAR",
      }),
    );
    // A question rarely contains every word of its answer: `any` still finds it, best first.
    assert.deepEqual((await memory.searchMessages({ query: "when does my train to Paris leave" })).length, 0);
    const recalled = await memory.searchMessages({ query: "when does my train to Paris leave", match: "any" });
    assert.ok(recalled.length >= 1);
    assert.ok(recalled[0].message.content.toString().includes("train"));
    // Text without a word finds nothing (a search box's answer), but an unknown conversation is still named.
    assert.deepEqual(await memory.searchMessages({ query: "?!" }), []);
    assert.deepEqual(await memory.searchMessages({ query: " ?! ", match: "any" }), []);
    await rejectsWith(memory.searchMessages({ query: "x", conversationId: "conv_nope" }), "not_found");
    await rejectsWith(memory.searchMessages({ query: "?!", conversationId: "conv_nope" }), "not_found");
  },

  "hybrid query: keyword side with filters when nothing is embedded yet; bad input refused": async (memory) => {
    const trip = await memory.createConversation({ title: "trip", metadata: { tags: ["travel"] } });
    const other = await memory.createConversation({ title: "other" });
    const [train] = await memory.appendMessages(trip.id, [
      { role: "user", content: "Book the night train to Vienna for Friday" },
      { role: "assistant", content: "The night train to Vienna leaves at 21:10" },
    ]);
    await memory.appendMessages(other.id, [{ role: "user", content: "Vienna sausages for the picnic" }]);
    await memory.addFact({ text: "The user prefers night trains to flights", source_kind: "message" });
    const { hits, used } = await memory.query({ query: "night train Vienna", k: 5 });
    assert.deepEqual([used.keyword, used.vector], [true, false]);
    assert.deepEqual(hits[0].kind, "message");
    assert.ok(hits.some((h) => h.id === train.id && h.keyword_rank !== null && h.vector_rank === null));
    const users = await memory.query({ query: "Vienna", roles: ["user"], tags: ["travel"] });
    assert.deepEqual(users.hits.map((h) => h.id), [train.id]);
    const facts = await memory.query({ query: "night trains", stores: ["facts"] });
    assert.deepEqual(facts.hits.map((h) => h.kind), ["fact"]);
    for (const bad of [{ query: "" }, { query: "x", k: 0 }, { query: "x", k: 10_000 }, { query: "x", vector: [] }]) {
      await rejectsWith(memory.query(bad), "validation_failed");
    }
  },

  "documents: a page kept in chunks is found and cited by URL; deleting it or its conversation removes it": async (
    memory,
  ) => {
    const chat = await memory.createConversation({ title: "reading" });
    const text = "Lighthouses of Brittany. ".repeat(5) + "\n\n" +
      "The Phare du Créac'h has two black and white bands and guards the Ushant passage. ".repeat(30);
    const page = await memory.addDocument({
      conversation_id: chat.id,
      url: "https://example.org/phares",
      title: "Phares",
      text,
    });
    assert.ok(page.chunks > 1, `${page.chunks} chunks`);
    assert.deepEqual((await memory.getDocument(page.id)).url, "https://example.org/phares");
    const { hits } = await memory.query({ query: "Ushant passage lighthouse", stores: ["documents"], k: 3 });
    assert.ok(hits.length > 0 && hits.every((h) => h.kind === "chunk"));
    assert.deepEqual(hits[0].document?.url, "https://example.org/phares");
    await memory.flush();
    assert.deepEqual(
      (await memory.listPendingEmbeddings({ limit: 500 })).items.filter((p) => p.item_kind === "chunk").length,
      page.chunks,
    );
    await memory.deleteDocument(page.id);
    await rejectsWith(memory.getDocument(page.id), "not_found");
    assert.deepEqual((await memory.query({ query: "Ushant passage", stores: ["documents"] })).hits, []);
    await memory.flush();
    assert.deepEqual(
      (await memory.listPendingEmbeddings({ limit: 500 })).items.filter((p) => p.item_kind === "chunk"),
      [],
    );
    const again = await memory.addDocument({
      conversation_id: chat.id,
      url: "https://example.org/b",
      text: "Ushant again",
    });
    await memory.deleteConversation(chat.id);
    await rejectsWith(memory.getDocument(again.id), "not_found");
    await rejectsWith(memory.addDocument({ url: "javascript:alert(1)", text: "x" }), "validation_failed");
    await rejectsWith(memory.addDocument({ url: "https://example.org", text: "   " }), "validation_failed");
  },

  "documents: the same page brought into the same chat again is kept once; changed text or another chat is new": async (
    memory,
  ) => {
    const chat = await memory.createConversation({ title: "asking twice" });
    const page = {
      conversation_id: chat.id,
      url: "https://example.org/tides",
      title: "Tides",
      text: "Tides rise. ".repeat(200),
    };
    const first = await memory.addDocument(page);
    assert.deepEqual(await memory.addDocument(page), first);
    const changed = await memory.addDocument({ ...page, text: page.text + "And fall." });
    assert.ok(changed.id !== first.id, "a changed page is a new document");
    const other = await memory.createConversation({ title: "elsewhere" });
    const elsewhere = await memory.addDocument({ ...page, conversation_id: other.id });
    assert.ok(elsewhere.id !== first.id && elsewhere.conversation_id === other.id);
    const { hits } = await memory.query({ query: "tides rise", stores: ["documents"], k: 50 });
    assert.deepEqual(new Set(hits.map((h) => h.document?.id)).size, 3);
  },

  "knowledge graph: k-hop neighbourhoods follow relations both ways, stop at the depth, survive cycles": async (
    memory,
  ) => {
    const [ada, lyon, france, bob] = await Promise.all(
      [["person", "Ada"], ["city", "Lyon"], ["country", "France"], ["person", "Bob"]].map(([type, name]) =>
        memory.upsertEntity({ type, name })
      ),
    );
    await memory.addRelation({ subject_id: ada.id, predicate: "lives_in", object_id: lyon.id });
    await memory.addRelation({ subject_id: lyon.id, predicate: "in", object_id: france.id });
    await memory.addRelation({ subject_id: bob.id, predicate: "knows", object_id: ada.id });
    await memory.addRelation({ subject_id: france.id, predicate: "home_of", object_id: ada.id }); // a cycle
    const one = await memory.entityNeighbors(lyon.id, 1);
    assert.deepEqual(one.neighbors.map((n) => [n.entity.name, n.depth]).sort(), [["Ada", 1], ["France", 1]]);
    const two = await memory.entityNeighbors(lyon.id, 2);
    assert.deepEqual(two.neighbors.find((n) => n.entity.name === "Bob")?.depth, 2);
    assert.deepEqual(two.relations.length, 4);
    await rejectsWith(memory.entityNeighbors(lyon.id, 9), "validation_failed");
    await rejectsWith(memory.entityNeighbors("ent_999999", 1), "not_found");
  },

  "knowledge graph: shortest paths, fact versions answered as of a time, duplicate merging, weaver status": async (
    memory,
  ) => {
    const [ada, initech, berlin, paris] = await Promise.all(
      [["person", "Ada"], ["organization", "Initech"], ["place", "Berlin"], ["place", "Paris"]].map(([type, name]) =>
        memory.upsertEntity({ type, name })
      ),
    );
    await memory.addRelation({ subject_id: ada.id, predicate: "works_at", object_id: initech.id });
    await memory.addRelation({ subject_id: initech.id, predicate: "located_in", object_id: berlin.id });
    const path = await memory.graphPath(ada.id, berlin.id);
    assert.deepEqual([path.found, path.length, path.entities.map((e) => e.name)], [true, 2, [
      "Ada",
      "Initech",
      "Berlin",
    ]]);
    assert.deepEqual((await memory.graphPath(ada.id, berlin.id, 1)).found, false);
    assert.deepEqual((await memory.graphPath(ada.id, paris.id)).found, false);
    await rejectsWith(memory.graphPath(ada.id, "ent_999999"), "not_found");
    await rejectsWith(memory.graphPath(ada.id, paris.id, 99), "validation_failed", "max_depth");

    // a newer fact with the same entity and single-valued predicate retires the older one
    const inBerlin = await memory.addFact({
      text: "Ada lives in Berlin",
      entity_id: ada.id,
      predicate: "located_in",
      object: "Berlin",
      valid_from: "2024-01-01T00:00:00Z",
    });
    const inParis = await memory.addFact({
      text: "Ada moved to Paris",
      entity_id: ada.id,
      predicate: "located_in",
      object: "Paris",
      valid_from: "2025-06-01T00:00:00Z",
    });
    const retired = await memory.getFact(inBerlin.id);
    assert.deepEqual([retired.valid_to, retired.superseded_by], [inParis.valid_from, inParis.id]);
    const in2024 = await memory.listFacts({ entityId: ada.id, asOf: "2024-07-01T00:00:00Z" });
    assert.deepEqual(in2024.items.map((f) => f.object), ["Berlin"]);
    assert.deepEqual((await memory.listFacts({ current: true })).items.map((f) => f.object), ["Paris"]);
    assert.deepEqual((await memory.listFacts({ asOf: "2023-01-01T00:00:00Z" })).items, []);
    await rejectsWith(memory.listFacts({ asOf: "last tuesday" }), "validation_failed", "asOf");

    const copy = await memory.upsertEntity({ type: "organization", name: "Initech Inc." });
    await memory.addRelation({ subject_id: copy.id, predicate: "makes", object_id: paris.id });
    const { merges } = await memory.consolidateEntities();
    assert.deepEqual(merges.map((m) => [m.into, m.from, m.reason]), [[initech.id, copy.id, "name"]]);
    assert.deepEqual((await memory.entityNeighbors(initech.id)).neighbors.map((n) => n.entity.name).sort(), [
      "Ada",
      "Berlin",
      "Paris",
    ]);
    await rejectsWith(memory.getEntity(copy.id), "not_found");
    await rejectsWith(memory.consolidateEntities({ threshold: 3 }), "validation_failed", "threshold");

    const status = await memory.weaverStatus();
    assert.deepEqual([status.mode, status.woven, status.entities, status.facts, status.current_facts], [
      "off",
      0,
      4,
      2,
      1,
    ]);
  },

  "knowledge: entities upsert, relations link them, facts keep provenance and are searchable": async (memory) => {
    const { id: conversationId } = await memory.createConversation();
    const [message] = await memory.appendMessages(conversationId, [{ role: "user", content: "Ada lives in London" }]);
    const ada = await memory.upsertEntity({ type: "person", name: "Ada", attributes: { born: 1815 } });
    const again = await memory.upsertEntity({ type: "person", name: "Ada", attributes: { born: 1815, field: "math" } });
    assert.deepEqual(again.id, ada.id);
    assert.deepEqual(again.attributes, { born: 1815, field: "math" });
    const london = await memory.upsertEntity({ type: "place", name: "London" });
    const fact = await memory.addFact({
      text: "Ada lives in London",
      subject: "Ada",
      predicate: "lives_in",
      object: "London",
      entity_id: ada.id,
      confidence: 0.9,
      source_kind: "message",
      source_id: message.id,
      conversation_id: conversationId,
    });
    assert.deepEqual(fact.source_id, message.id);
    assert.deepEqual(await memory.getFact(fact.id), fact);
    const relation = await memory.addRelation({
      subject_id: ada.id,
      predicate: "lives_in",
      object_id: london.id,
      fact_id: fact.id,
    });
    assert.deepEqual((await memory.listRelations(london.id)).items, [relation]);
    assert.deepEqual((await memory.listEntities({ type: "place" })).items, [london]);
    assert.deepEqual((await memory.listFacts({ entityId: ada.id })).items, [fact]);
    const hits = await memory.searchFacts({ query: "london" });
    assert.deepEqual(hits.map((hit) => hit.fact.id), [fact.id]);
    await rejectsWith(memory.addRelation({ subject_id: ada.id, predicate: "x", object_id: "ent_999" }), "not_found");
    await memory.deleteFact(fact.id);
    await rejectsWith(memory.getFact(fact.id), "not_found");
    assert.deepEqual(await memory.searchFacts({ query: "london" }), []);
    await rejectsWith(memory.addFact({ text: "" }), "validation_failed", "text");
  },

  "tool results and episodes with feedback are recorded and listed": async (memory) => {
    const { id: conversationId } = await memory.createConversation();
    const ok = await memory.recordToolResult({
      tool_name: "web_search",
      arguments: { q: "weather" },
      result: { hits: [1, 2] },
      status: "ok",
      duration_ms: 12.5,
      call_id: "call_9",
      conversation_id: conversationId,
    });
    const failed = await memory.recordToolResult({
      tool_name: "calculator",
      arguments: { expr: "1/0" },
      status: "error",
      error: "division by zero",
      duration_ms: 1,
    });
    assert.deepEqual(await memory.getToolResult(ok.id), ok);
    assert.deepEqual(ok.result, { hits: [1, 2] });
    assert.deepEqual((await memory.listToolResults({ conversationId })).items, [ok]);
    assert.deepEqual((await memory.listToolResults({ toolName: "calculator" })).items, [failed]);
    await rejectsWith(
      memory.recordToolResult({ tool_name: "x", status: "maybe", duration_ms: 1 } as never),
      "validation_failed",
      "status",
    );

    const episode = await memory.recordEpisode({
      task: "find a train",
      outcome: "success",
      reward: 1,
      conversation_id: conversationId,
    });
    const rated = await memory.addFeedback(episode.id, { rating: 1, comment: "great" });
    assert.deepEqual(rated.feedback.map((f) => [f.rating, f.comment]), [[1, "great"]]);
    assert.deepEqual(await memory.getEpisode(episode.id), rated);
    assert.deepEqual((await memory.listEpisodes()).items, [rated]);
    await rejectsWith(memory.addFeedback("ep_404", { rating: 0 }), "not_found");
    await rejectsWith(memory.addFeedback(episode.id, { rating: 5 } as never), "validation_failed", "rating");
  },

  "derived stores follow: summaries, the embedding queue and counters": async (memory) => {
    const { id } = await memory.createConversation();
    const messages = await memory.appendMessages(id, [
      { role: "user", content: "one" },
      { role: "assistant", content: "two" },
      { role: "user", content: "three" },
    ]);
    const summary = await memory.putSummary({
      conversation_id: id,
      from_message_id: messages[0].id,
      to_message_id: messages[2].id,
      text: "counting",
    });
    assert.deepEqual((await memory.listSummaries(id)).items, [summary]);
    await rejectsWith(
      memory.putSummary({
        conversation_id: id,
        from_message_id: messages[2].id,
        to_message_id: messages[0].id,
        text: "x",
      }),
      "validation_failed",
      "to_message_id",
    );
    await memory.flush();
    const pending = (await memory.listPendingEmbeddings({ limit: 100 })).items;
    assert.deepEqual(pending.filter((p) => p.item_kind === "message").map((p) => p.item_id), messages.map((m) => m.id));
    assert.ok(pending.some((p) => p.item_kind === "summary" && p.item_id === summary.id));

    const embedding = await memory.putEmbedding({
      item_kind: "message",
      item_id: messages[0].id,
      model: "mini",
      vector: [0.1, 0.2, 0.3],
    });
    assert.deepEqual(embedding.dimensions, 3);
    assert.deepEqual(await memory.getEmbedding("message", messages[0].id, "mini"), embedding);
    assert.deepEqual(embedding.vector, Array.from(Float32Array.from([0.1, 0.2, 0.3])));
    assert.ok(!(await memory.listPendingEmbeddings({ limit: 100 })).items.some((p) => p.item_id === messages[0].id));
    await rejectsWith(
      memory.putEmbedding({ item_kind: "message", item_id: "msg_99999", model: "m", vector: [1] }),
      "not_found",
    );
    await rejectsWith(
      memory.putEmbedding({ item_kind: "message", item_id: messages[1].id, model: "m", vector: [] }),
      "validation_failed",
      "vector",
    );

    let stats = await memory.stats();
    assert.deepEqual([stats.conversations, stats.messages, stats.summaries, stats.embeddings], [1, 3, 1, 1]);
    assert.deepEqual(stats.counters.messages_written, 3);
    assert.deepEqual(stats.outbox_pending, 0);
    assert.deepEqual(stats.stores.length, 7);

    await memory.deleteConversation(id);
    await memory.flush();
    stats = await memory.stats();
    assert.deepEqual([stats.messages, stats.summaries, stats.embeddings, stats.pending_embeddings], [0, 0, 0, 0]);
    assert.deepEqual(stats.counters.conversations_deleted, 1);
  },

  "export to JSONL and import elsewhere reproduces the memory; importing twice adds nothing": async (
    memory,
    dir,
    open,
  ) => {
    const { id } = await memory.createConversation({ title: "export me", metadata: { pinned: true } });
    const messages = await memory.appendMessages(id, [
      { role: "user", content: "What is the capital of France?" },
      { role: "assistant", content: [{ type: "text", text: "Paris." }], model: "m" },
    ]);
    await memory.putSummary({
      conversation_id: id,
      from_message_id: messages[0].id,
      to_message_id: messages[1].id,
      text: "capital",
    });
    const person = await memory.upsertEntity({ type: "person", name: "Ada" });
    const place = await memory.upsertEntity({ type: "place", name: "Paris" });
    const fact = await memory.addFact({ text: "Paris is the capital of France", entity_id: place.id });
    await memory.addRelation({ subject_id: person.id, predicate: "visited", object_id: place.id, fact_id: fact.id });
    await memory.recordToolResult({ tool_name: "t", status: "ok", duration_ms: 2, result: "r" });
    const episode = await memory.recordEpisode({ task: "answer", outcome: "success" });
    await memory.addFeedback(episode.id, { rating: -1 });
    const lines = await collect(memory.exportJsonl());
    assert.deepEqual(lines.map((l) => JSON.parse(l).record), [
      "conversation",
      "message",
      "message",
      "summary",
      "entity",
      "entity",
      "fact",
      "relation",
      "tool_result",
      "episode",
    ]);
    assert.deepEqual((await collect(memory.exportJsonl({ conversationId: id }))).length, 4);

    const other = await open(`${dir}/other`);
    try {
      const result = await other.importJsonl(lines.join("\n") + "\n");
      assert.deepEqual(result.imported, {
        conversation: 1,
        message: 2,
        summary: 1,
        entity: 2,
        fact: 1,
        relation: 1,
        tool_result: 1,
        episode: 1,
      });
      const copy = await other.getConversation(id);
      assert.deepEqual([copy.title, copy.metadata, copy.message_count], ["export me", { pinned: true }, 2]);
      const copied = (await other.listMessages(id)).items;
      assert.deepEqual(copied.map((m) => m.content), messages.map((m) => m.content));
      assert.deepEqual(copied.map((m) => m.created_at), messages.map((m) => m.created_at));
      assert.deepEqual((await other.listEpisodes()).items[0].feedback.map((f) => f.rating), [-1]);
      const again = await other.importJsonl(lines.join("\n"));
      assert.deepEqual(again.imported, {});
      assert.deepEqual((await other.stats()).messages, 2);
      await rejectsWith(other.importJsonl('{"record":"conversation","id":"x"}'), "validation_failed", "line 1");
      await rejectsWith(other.importJsonl("not json"), "validation_failed", "line 1");
      for (const record of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
        const line = JSON.stringify({ record });
        await rejectsWith(other.importJsonl(line), "validation_failed", "line 1");
      }
    } finally {
      await other.close();
    }
  },

  "backup and restore bring back the snapshot; a damaged backup is refused and changes nothing": async (
    memory,
    dir,
  ) => {
    const { id } = await memory.createConversation({ title: "before" });
    await memory.appendMessages(id, [{ role: "user", content: "kept in the backup" }]);
    const manifest = await memory.backup(`${dir}/backup`);
    assert.deepEqual(manifest.files.length, 7);
    assert.ok(manifest.files.every((file) => /^[0-9a-f]{64}$/.test(file.sha256)));
    await rejectsWith(memory.backup(`${dir}/backup`), "conflict");
    await rejectsWith(memory.backup("relative/dir"), "validation_failed", "dir");
    // A drive-letter path is relative on POSIX: it would be a folder in the server's working directory.
    if (Deno.build.os !== "windows") {
      await rejectsWith(memory.backup("A:\\backup"), "validation_failed", "dir");
      await rejectsWith(memory.restore("C:/backup"), "validation_failed", "dir");
    }
    await rejectsWith(memory.restore("relative/dir"), "validation_failed", "dir");

    const later = await memory.createConversation({ title: "after the backup" });
    await memory.appendMessages(id, [{ role: "user", content: "written after the backup" }]);

    // A damaged copy: one byte of the conversations file flipped.
    const damaged = `${dir}/damaged`;
    await Deno.mkdir(damaged);
    for await (const entry of Deno.readDir(`${dir}/backup`)) {
      await Deno.copyFile(
        `${dir}/backup/${entry.name}`,
        `${damaged}/${entry.name}`,
      );
    }
    const bytes = await Deno.readFile(`${damaged}/conversations.db`);
    bytes[bytes.length - 100] ^= 0xff;
    await Deno.writeFile(`${damaged}/conversations.db`, bytes);
    await rejectsWith(memory.restore(damaged), "checksum_mismatch", "conversations.db");
    await Deno.remove(`${damaged}/manifest.json`);
    // Without a manifest nothing there is a backup: not found, and nothing changes either.
    await rejectsWith(memory.restore(damaged), "not_found", "manifest.json");
    assert.deepEqual((await memory.getConversation(later.id)).title, "after the backup");
    assert.deepEqual((await memory.listMessages(id)).items.length, 2);

    await memory.restore(`${dir}/backup`);
    await rejectsWith(memory.getConversation(later.id), "not_found");
    const restored = (await memory.listMessages(id)).items;
    assert.deepEqual(restored.map((m) => m.content), ["kept in the backup"]);
    assert.deepEqual((await memory.searchMessages({ query: "backup" })).length, 1);
    await memory.appendMessages(id, [{ role: "user", content: "writes work after a restore" }]);
    assert.deepEqual((await memory.searchMessages({ query: "restore" })).length, 1);
  },
};

/** Registers the suite's tests under `name`. */
export function memoryClientSuite(name: string, open: OpenClient): void {
  const test = (title: string, fn: SuiteCase) =>
    Deno.test(`${name}: ${title}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "tabagent-memory-" });
      const memory = await open(`${dir}/db`);
      try {
        await fn(memory, dir, open);
      } finally {
        await memory.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  for (const [title, fn] of Object.entries(CASES)) test(title, fn);
}
