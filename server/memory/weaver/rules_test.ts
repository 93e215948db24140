import assert from "node:assert/strict";
import { isSingleValued, nameKey, predicateKey } from "./names.ts";
import { parseModelExtraction } from "./model.ts";
import { extractWithRules } from "./rules.ts";
import { TabAgentError } from "../../errors/mod.ts";

const triples = (items: { subject: string; predicate: string; object: string }[]) =>
  items.map((t) => `${t.subject} ${t.predicate} ${t.object}`);

Deno.test("rules: what people say about themselves becomes facts and relations of 'I'", () => {
  const ada = extractWithRules("My name is Ada. I work at Initech in Berlin.");
  assert.deepEqual(ada.entities, [
    { name: "Ada", type: "person" },
    { name: "Initech", type: "organization" },
    { name: "Berlin", type: "place" },
  ]);
  assert.deepEqual(triples(ada.relations), ["I works_at Initech", "I located_in Berlin"]);
  assert.deepEqual(triples(ada.facts), ["I name Ada"]);

  assert.deepEqual(triples(extractWithRules("I moved to Paris").relations), ["I located_in Paris"]);
  assert.deepEqual(triples(extractWithRules("i've just moved to New York City!").relations), [
    "I located_in New York City",
  ]);
  assert.deepEqual(triples(extractWithRules("Hi! I'm Grace, and I live in Oslo.").facts), ["I name Grace"]);
  const me = extractWithRules(
    "I am a software engineer at Hooli. My email is ada@example.com and my website is https://ada.dev. " +
      "I'm 36 years old. My birthday is 10 December 1815.",
  );
  assert.deepEqual(triples(me.facts), [
    "I job_title software engineer",
    "I email ada@example.com",
    "I website https://ada.dev",
    "I age 36",
    "I born_on 10 December 1815",
  ]);
  assert.deepEqual(triples(me.relations), ["I works_at Hooli"]);
});

Deno.test("rules: other people, family, places and bare names", () => {
  const family = extractWithRules("Bob is my brother. My sister Eve works at Acme Corp in London.");
  assert.deepEqual(triples(family.relations), [
    "I has_sibling Bob",
    "I has_sibling Eve",
    "Eve works_at Acme Corp",
    "Eve located_in London",
  ]);
  const mentions = extractWithRules("Yesterday I talked to Dr. Watson about the University of Oxford in Cambridge.");
  assert.deepEqual(mentions.entities, [
    { name: "Watson", type: "person" },
    { name: "University of Oxford", type: "thing" },
    { name: "Cambridge", type: "place" },
  ]);
  assert.deepEqual(triples(extractWithRules("Initech is a software company.").facts), [
    "Initech is_a software company",
  ]);
  // nothing to learn from small talk, and sentence-initial words are not names
  assert.deepEqual(extractWithRules("Thanks! That helps. Sure, see you on Monday."), {
    entities: [],
    relations: [],
    facts: [],
  });
});

Deno.test("names: one key for spellings of one name; predicates in snake_case; single-valued ones", () => {
  assert.deepEqual(nameKey("Initech, Inc."), "initech");
  assert.deepEqual(nameKey("INITECH"), "initech");
  assert.deepEqual(nameKey("the  Zürich   Opera"), "zurich opera");
  assert.deepEqual(nameKey("ada@example.com"), "ada@example.com");
  assert.deepEqual(predicateKey("Works at"), "works_at");
  assert.deepEqual([isSingleValued("located_in"), isSingleValued("has_friend")], [true, false]);
});

Deno.test("model output: valid JSON of the schema passes; anything else is upstream_failed", () => {
  const good = parseModelExtraction(
    '{"entities":[{"name":"Ada","type":"person"}],"relations":[],"facts":[{"subject":"I","predicate":"name","object":"Ada"}]}',
  );
  assert.deepEqual(good.entities[0].name, "Ada");
  for (const bad of ['{"entities":[', '{"entities":[{"name":"Ada","type":"alien"}],"relations":[],"facts":[]}']) {
    let code = "";
    try {
      parseModelExtraction(bad);
    } catch (error) {
      code = error instanceof TabAgentError ? error.code : String(error);
    }
    assert.deepEqual(code, "upstream_failed");
  }
});
