/**
 * kill -9 while the weaver weaves: a child process appends a scripted conversation and weaves it
 * in the background and in drains, and is SIGKILLed at random moments several times over the same
 * files. After a restart the graph converges to exactly the graph an uninterrupted run builds from
 * the same messages: same entities, same facts with the same provenance and versions, same edges,
 * each message woven once.
 */
import assert from "node:assert/strict";
import { type LocalMemory, openLocalMemory } from "../local.ts";
import { scriptedMessage } from "./testing/crash_script.ts";
import { allPages as everything } from "../testing/pages.ts";

const CHILD = new URL("./testing/crash_weaver.ts", import.meta.url);
const CONFIG = new URL("../../../deno.json", import.meta.url);
const MESSAGES = 96;
const KILLS = 6;

/** The graph in a form two runs can be compared by (ids of entities differ; message ids do not). */
async function graphOf(memory: LocalMemory) {
  const entities = await everything((cursor) => memory.listEntities({ cursor, limit: 500 }));
  const name = new Map(entities.map((e) => [e.id, e.name]));
  const facts = await everything((cursor) => memory.listFacts({ cursor, limit: 500 }));
  const relations = new Map<string, string>();
  for (const entity of entities) {
    for (const r of await everything((cursor) => memory.listRelations(entity.id, { cursor, limit: 500 }))) {
      relations.set(
        r.id,
        `${name.get(r.subject_id)} ${r.predicate} ${name.get(r.object_id)} ${r.valid_to ? "ended" : "now"}`,
      );
    }
  }
  return {
    entities: entities.map((e) => `${e.type}:${e.name}`).sort(),
    facts: facts.map((f) =>
      `${f.source_id} ${f.subject} ${f.predicate} ${f.object} ${
        f.valid_to ? `until ${f.superseded_by ? "newer" : "?"}` : "now"
      }`
    ).sort(),
    relations: [...relations.values()].sort(),
  };
}

Deno.test("weaver: SIGKILLs while weaving converge to the graph of an uninterrupted run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-weaver-crash-" });
  try {
    let finished = false;
    for (let round = 0; !finished; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", CONFIG.pathname, CHILD.pathname, `${dir}/crashed`, String(MESSAGES)],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const killAfter = round < KILLS ? 2 + Math.floor(Math.random() * 12) : Infinity;
      let acks = 0;
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        if (chunk.includes("done")) finished = true;
        acks += chunk.split("\n").length - 1;
        if (acks >= killAfter) {
          // a random extra delay puts the kill anywhere in the appends, outbox steps and weave passes
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
          child.kill("SIGKILL");
          break;
        }
      }
      const status = await child.status;
      if (round < KILLS && !finished) assert.deepEqual(status.signal, "SIGKILL");
      assert.ok(round < KILLS + 1, "the last child did not finish the script");
    }

    const crashed = await openLocalMemory({ dir: `${dir}/crashed`, searchWorkers: 0, weaver: { mode: "rules" } });
    const reference = await openLocalMemory({ dir: `${dir}/reference`, searchWorkers: 0, weaver: { mode: "rules" } });
    try {
      const status = await crashed.weavePending();
      assert.deepEqual([status.backlog, status.woven, status.extractors], [0, MESSAGES, { rules: MESSAGES }]);
      const { id } = await reference.createConversation({ title: "crash" });
      for (let i = 0; i < MESSAGES; i++) {
        await reference.appendMessages(id, [{ role: "user", content: scriptedMessage(i) }]);
      }
      await reference.weavePending();
      const got = await graphOf(crashed);
      assert.deepEqual(got, await graphOf(reference));
      assert.ok(got.facts.some((f) => f.includes("until newer")), "the script should retire facts");
      assert.deepEqual(got.entities.filter((e) => e.includes("Initech")), ["organization:Initech"]);
      // each message's triple is stored once
      const keys = got.facts.map((f) => f.split(" ").slice(0, 5).join(" "));
      assert.deepEqual(keys.length, new Set(keys).size);
    } finally {
      await crashed.close();
      await reference.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
