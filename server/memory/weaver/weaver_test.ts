/**
 * The weaver over real store files, the real outbox and real all-MiniLM-L6-v2 name embeddings (the
 * ONNX export from setup): a conversation becomes entities, relations and versioned facts with
 * provenance; what was true at a time can be asked; duplicates merge by name and by meaning;
 * weaving again changes nothing; a knowledge store from schema v1 upgrades in place.
 */
import { DatabaseSync } from "node:sqlite";
import assert from "node:assert/strict";
import { type LocalMemory, openLocalMemory } from "../local.ts";
import { loadMiniLm } from "../testing/minilm.ts";
import { allPages as all } from "../testing/pages.ts";
import { applicationId, MIGRATIONS, storeFile } from "../stores.ts";
import type { Entity, Fact } from "../types.ts";

/** Appends one user message, then waits for the clock to move on, so the next message is strictly later. */
async function say(memory: LocalMemory, conversation: string, content: string): Promise<string> {
  const [message] = await memory.appendMessages(conversation, [{ role: "user", content }]);
  const at = Date.parse(message.created_at);
  while (Date.now() <= at) await new Promise((resolve) => setTimeout(resolve, 1));
  return message.id;
}

function byName(entities: Entity[], name: string): Entity {
  const found = entities.find((e) => e.name === name);
  assert.ok(found, `no entity '${name}' in ${entities.map((e) => e.name).join(", ")}`);
  return found;
}

function fact(facts: Fact[], predicate: string, object: string): Fact {
  const found = facts.find((f) => f.predicate === predicate && f.object === object);
  assert.ok(found, `no fact ${predicate} ${object} in ${facts.map((f) => f.text).join("; ")}`);
  return found;
}

/** Everything the graph holds, for before/after comparisons. */
async function snapshot(memory: LocalMemory) {
  const entities = await all((cursor) => memory.listEntities({ cursor, limit: 500 }));
  const relations = new Map<string, unknown>();
  for (const entity of entities) {
    for (const r of await all((cursor) => memory.listRelations(entity.id, { cursor, limit: 500 }))) {
      relations.set(r.id, r);
    }
  }
  const facts = await all((cursor) => memory.listFacts({ cursor, limit: 500 }));
  return { entities, relations: [...relations.values()], facts };
}

Deno.test("weaver: a conversation becomes a graph with versioned facts, as_of answers the past, re-weaving changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-weaver-" });
  const minilm = await loadMiniLm();
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed, weaver: { mode: "rules" } });
  try {
    const { id: conversation } = await memory.createConversation({ title: "about me" });
    const first = await say(memory, conversation, "My name is Ada. I work at Initech in Berlin.");
    await memory.appendMessages(conversation, [{ role: "assistant", content: "Nice to meet you, Ada from Berlin!" }]);
    await memory.weavePending();
    const beforeMove = new Date().toISOString();
    while (Date.now() <= Date.parse(beforeMove)) await new Promise((resolve) => setTimeout(resolve, 1));
    const second = await say(memory, conversation, "I moved to Paris");
    const status = await memory.weavePending();
    assert.deepEqual([status.mode, status.backlog, status.woven, status.extractors], ["rules", 0, 2, { rules: 2 }]);

    const entities = await all((cursor) => memory.listEntities({ cursor }));
    const ada = byName(entities, "Ada");
    assert.deepEqual(
      ["Ada", "Initech", "Berlin", "Paris"].map((name) => byName(entities, name).type),
      ["person", "organization", "place", "place"],
    );
    assert.deepEqual(ada.attributes?.self, true);

    const facts = (await memory.listFacts({ entityId: ada.id })).items;
    const berlin = fact(facts, "located_in", "Berlin");
    const paris = fact(facts, "located_in", "Paris");
    const initech = fact(facts, "works_at", "Initech");
    // provenance: which message said it, in which conversation, read by which extractor
    assert.deepEqual([berlin.source_kind, berlin.source_id, berlin.conversation_id], ["message", first, conversation]);
    assert.deepEqual([paris.source_id, paris.metadata?.extractor], [second, "rules"]);
    assert.deepEqual(berlin.text, "Ada is located in Berlin");
    // the move retired Berlin when it was said; Initech is untouched (another predicate)
    assert.deepEqual([berlin.valid_to, berlin.superseded_by], [paris.valid_from, paris.id]);
    assert.deepEqual([paris.valid_to, initech.valid_to], [null, null]);

    const then = (await memory.listFacts({ entityId: ada.id, asOf: beforeMove })).items.map((f) => f.object);
    assert.ok(then.includes("Berlin") && !then.includes("Paris"), `as_of before the move: ${then}`);
    const now = (await memory.listFacts({ entityId: ada.id, current: true })).items.map((f) => f.object);
    assert.ok(now.includes("Paris") && !now.includes("Berlin") && now.includes("Initech"), `current: ${now}`);

    // the graph: Ada's neighbours follow current relations; the Berlin edge is history
    const around = await memory.entityNeighbors(ada.id, 1);
    const names = around.neighbors.map((n) => n.entity.name).sort();
    assert.deepEqual(names, ["Initech", "Paris"]);
    const berlinEdge = (await memory.listRelations(byName(entities, "Berlin").id)).items[0];
    assert.deepEqual([berlinEdge.fact_id, berlinEdge.valid_to], [berlin.id, berlin.valid_to]);
    const path = await memory.graphPath(byName(entities, "Initech").id, byName(entities, "Paris").id);
    assert.deepEqual([path.found, path.length, path.entities.map((e) => e.name)], [true, 2, [
      "Initech",
      "Ada",
      "Paris",
    ]]);
    assert.deepEqual(path.relations.map((r) => r.predicate), ["works_at", "located_in"]);
    const none = await memory.graphPath(byName(entities, "Berlin").id, byName(entities, "Paris").id);
    assert.deepEqual([none.found, none.entities], [false, []]);

    // re-weaving the same messages (the queue rebuilt from the truth, and once more) changes nothing
    const before = await snapshot(memory);
    await memory.rebuildDerived();
    await memory.weavePending();
    assert.deepEqual(await snapshot(memory), before);
    assert.deepEqual((await memory.weaverStatus()).woven, 2);
  } finally {
    await memory.close();
    await minilm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weaver: duplicates merge by name and by name embedding, keeping relations and provenance", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-weaver-" });
  const minilm = await loadMiniLm();
  const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed, weaver: { mode: "rules" } });
  try {
    const { id: conversation } = await memory.createConversation();
    await say(memory, conversation, "My name is Ada. I work at Initech.");
    // "Initech Inc." is Initech by name: resolved on the way in, no second entity
    const bobSaid = await say(memory, conversation, "Bob works at Initech Inc. in Boston.");
    await say(memory, conversation, "I visited NYC in May.");
    const graceSaid = await say(memory, conversation, "Grace lives in New York City.");
    await memory.weavePending();

    const entities = await all((cursor) => memory.listEntities({ cursor }));
    const initechs = entities.filter((e) => e.name.startsWith("Initech"));
    assert.deepEqual(initechs.map((e) => e.name), ["Initech"]);
    // "NYC" and "New York City" share no word: MiniLM puts them at 0.92, over the 0.85 threshold
    const nyc = entities.filter((e) => e.name === "NYC" || e.name === "New York City");
    assert.deepEqual(nyc.map((e) => e.name), ["NYC"]);
    assert.deepEqual(nyc[0].attributes?.aliases, ["New York City"]);
    const grace = byName(entities, "Grace");
    const graceFacts = (await memory.listFacts({ entityId: grace.id })).items;
    const lives = fact(graceFacts, "located_in", "New York City"); // the fact keeps what was said
    assert.deepEqual(lives.source_id, graceSaid);
    const graceEdges = (await memory.listRelations(grace.id)).items;
    assert.deepEqual(graceEdges.map((r) => [r.predicate, r.object_id]), [["located_in", nyc[0].id]]);
    const bob = byName(entities, "Bob");
    const bobWorks = fact((await memory.listFacts({ entityId: bob.id })).items, "works_at", "Initech");
    assert.deepEqual(bobWorks.source_id, bobSaid);

    // a later mention by the merged name resolves to the survivor
    await say(memory, conversation, "Eve moved to New York City.");
    await memory.weavePending();
    const after = await all((cursor) => memory.listEntities({ cursor }));
    assert.deepEqual(after.filter((e) => e.name === "New York City").length, 0);
    const nycAround = await memory.entityNeighbors(nyc[0].id, 1);
    assert.deepEqual(nycAround.neighbors.map((n) => n.entity.name).sort(), ["Eve", "Grace"]);

    // entities written by hand with another spelling merge on consolidation, their relations moving along
    const shouty = await memory.upsertEntity({ type: "organization", name: "INITECH, Inc." });
    const hq = await memory.upsertEntity({ type: "place", name: "Austin" });
    const edge = await memory.addRelation({ subject_id: shouty.id, predicate: "headquartered_in", object_id: hq.id });
    const { merges } = await memory.consolidateEntities();
    const initech = initechs[0];
    assert.deepEqual(merges.map((m) => [m.into, m.from, m.reason]), [[initech.id, shouty.id, "name"]]);
    const moved = (await memory.listRelations(hq.id)).items.find((r) => r.id === edge.id);
    assert.deepEqual(moved?.subject_id, initech.id);
    assert.deepEqual((await memory.getEntity(initech.id)).attributes?.aliases, ["INITECH, Inc."]);
    assert.deepEqual((await memory.consolidateEntities()).merges, []);
  } finally {
    await memory.close();
    await minilm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weaver: what the user says before giving a name moves to that name; a known person is merged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-weaver-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0, weaver: { mode: "rules" } });
  try {
    const { id: conversation } = await memory.createConversation();
    const oslo = await say(memory, conversation, "I live in Oslo.");
    await memory.weavePending();
    const placeholder = byName(await all((cursor) => memory.listEntities({ cursor })), "User");
    assert.deepEqual(placeholder.attributes, { self: true, placeholder: true });
    await say(memory, conversation, "Grace works at Navy. Grace is my friend.");
    await say(memory, conversation, "Call me Grace");
    await memory.weavePending();
    const entities = await all((cursor) => memory.listEntities({ cursor }));
    assert.deepEqual(entities.filter((e) => e.name === "User"), []);
    const grace = byName(entities, "Grace");
    assert.deepEqual(grace.attributes?.self, true);
    const facts = (await memory.listFacts({ entityId: grace.id })).items;
    const lives = fact(facts, "located_in", "Oslo");
    assert.deepEqual([lives.source_id, lives.valid_to], [oslo, null]);
    fact(facts, "works_at", "Navy");
    fact(facts, "name", "Grace");
  } finally {
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weaver: a knowledge store from schema v1 upgrades in place and its history is woven", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-weaver-" });
  try {
    const v1 = new DatabaseSync(`${dir}/${storeFile("knowledge")}`);
    v1.exec(MIGRATIONS.knowledge[0]);
    v1.exec(`PRAGMA application_id = ${applicationId("knowledge")}; PRAGMA user_version = 1`);
    v1.exec(`INSERT INTO entities(type, name, created_at, updated_at) VALUES ('person', 'Grace Hopper', 1000, 1000);
      INSERT INTO entities(type, name, created_at, updated_at) VALUES ('organization', 'Navy', 1000, 1000);
      INSERT INTO facts(text, subject, predicate, object, entity_id, source_kind, created_at)
        VALUES ('Grace served in the Navy', 'Grace Hopper', 'served_in', 'Navy', 1, 'user', 2000);
      INSERT INTO relations(subject_id, predicate, object_id, fact_id, created_at) VALUES (1, 'served_in', 2, 1, 2000);`);
    v1.close();

    // messages written before the weaver existed are woven once the store is upgraded
    const old = await openLocalMemory({ dir, searchWorkers: 0, outbox: false });
    const { id: conversation } = await old.createConversation();
    await old.appendMessages(conversation, [{ role: "user", content: "My name is Ada. I live in London." }]);
    await old.close();

    const memory = await openLocalMemory({ dir, searchWorkers: 0, weaver: { mode: "rules" } });
    try {
      const stats = await memory.stats();
      assert.deepEqual(stats.stores.find((s) => s.name === "knowledge")?.schema_version, 2);
      const [served] = (await memory.listFacts({ asOf: new Date(2500).toISOString() })).items;
      assert.deepEqual([served.text, served.valid_from, served.valid_to], [
        "Grace served in the Navy",
        new Date(2000).toISOString(),
        null,
      ]);
      assert.deepEqual((await memory.listFacts({ asOf: new Date(1500).toISOString() })).items, []);
      const [relation] = (await memory.listRelations("ent_1")).items;
      assert.deepEqual(relation.valid_from, new Date(2000).toISOString());
      const status = await memory.weavePending();
      assert.deepEqual([status.woven, status.backlog], [1, 0]);
      const london = (await memory.listFacts({ current: true })).items.find((f) => f.object === "London");
      assert.deepEqual(london?.subject, "Ada");
      // the old entity is found by its normalised name
      await memory.appendMessages(conversation, [{ role: "user", content: "GRACE HOPPER works at Navy." }]);
      await memory.weavePending();
      assert.deepEqual((await memory.listEntities({ type: "person" })).items.map((e) => e.name).sort(), [
        "Ada",
        "Grace Hopper",
      ]);
    } finally {
      await memory.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
