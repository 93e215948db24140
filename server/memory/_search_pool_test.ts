import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { openLocalMemory } from "./local.ts";
import { SearchPool } from "./_search_pool.ts";
import { SEARCH_LANE_BYTES, SEARCH_LANES } from "./_search_lanes.ts";
import { type SearchHit, SearchHitSchema } from "./types.ts";

const STUCK = new URL("./testing/stuck_search_worker.ts", import.meta.url);

Deno.test("a search pool answers queries from its workers' own connections", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search-pool-" });
  try {
    const memory = await openLocalMemory({ dir, searchWorkers: 0 });
    const conversation = (await memory.createConversation({ title: "t" })).id;
    await memory.appendMessages(conversation, [
      { role: "user", content: "the heron stood in the reeds" },
      { role: "user", content: "a kettle of hawks" },
    ]);
    await memory.searchMessages({ query: "heron", limit: 1 }); // catches the full-text index up
    await memory.close();
    const pool = new SearchPool({ dir, size: 2, timeoutMs: 10_000 });
    try {
      const rows = await Promise.all([
        pool.run({ kind: "messages", query: '"heron"', limit: 10 }),
        pool.run({ kind: "messages", query: '"hawks"', limit: 10 }),
      ]);
      assert.deepEqual(rows.map((found) => found.map((row) => row.content)), [
        ["the heron stood in the reeds"],
        ["a kettle of hawks"],
      ]);
    } finally {
      await pool.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a search pool builds the HTTP body in its worker: the same hits as the rows, valid, in UTF-8", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search-pool-" });
  try {
    const memory = await openLocalMemory({ dir, searchWorkers: 0 });
    const conversation = (await memory.createConversation({ title: "t" })).id;
    await memory.appendMessages(conversation, [
      { role: "user", content: "the heron stood in the reeds, naïvely" },
      { role: "assistant", content: [{ type: "text", text: "a heron fishes" }], metadata: { source: "test" } },
      { role: "user", content: "a kettle of hawks" },
    ]);
    const inline = await memory.searchMessages({ query: "heron", limit: 10 }); // also catches the index up
    const inlineBody = await memory.searchMessagesBody({ query: "heron", limit: 10 });
    await memory.close();
    assert.deepEqual(JSON.parse(new TextDecoder().decode(inlineBody)), { hits: inline });
    const pool = new SearchPool({ dir, size: 1, timeoutMs: 10_000 });
    try {
      const body = await pool.body({ query: '"heron"', limit: 10 });
      const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
      assert.deepEqual(Object.keys(parsed), ["hits"]);
      assert.deepEqual(parsed.hits.map((hit: unknown) => SearchHitSchema.parse(hit)), inline);
      const byRole = (role: string) =>
        parsed.hits.find((hit: { message: { role: string } }) => hit.message.role === role);
      assert.deepEqual(byRole("user").message.content, "the heron stood in the reeds, naïvely");
      assert.deepEqual(byRole("assistant").message.content, [{ type: "text", text: "a heron fishes" }]);
      assert.deepEqual(byRole("assistant").message.metadata, { source: "test" });
      const none = await pool.body({ query: '"osprey"', limit: 10, conversationId: conversation });
      assert.deepEqual(JSON.parse(new TextDecoder().decode(none)), { hits: [] });
    } finally {
      await pool.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a query past its deadline fails with timeout, its worker is replaced, and the pool keeps serving", async () => {
  const pool = new SearchPool({ dir: "/nonexistent", size: 1, timeoutMs: 30, worker: STUCK });
  try {
    const queries = [
      pool.run({ kind: "messages", query: '"a"', limit: 1 }),
      pool.run({ kind: "facts", query: '"b"', limit: 1 }),
    ];
    for (const query of queries) {
      await assert.rejects(query, (error) => error instanceof TabAgentError && error.code === "timeout");
    }
    // The replacement worker is stuck too (the same module), so a new query times out as well:
    // the sweep restarts after stopping with nothing left to time.
    await assert.rejects(
      pool.run({ kind: "messages", query: '"c"', limit: 1 }),
      (error) => error instanceof TabAgentError && error.code === "timeout",
    );
  } finally {
    await pool.close();
  }
});

Deno.test("closing the pool fails the queries still waiting with unavailable", async () => {
  const pool = new SearchPool({ dir: "/nonexistent", size: 1, timeoutMs: 60_000, worker: STUCK });
  const query = pool.run({ kind: "messages", query: '"a"', limit: 1 });
  // Whether the query is still waiting for the worker to start or already sent, it fails alike.
  const closed = pool.close();
  await assert.rejects(query, (error) => error instanceof TabAgentError && error.code === "unavailable");
  await closed;
  await assert.rejects(
    pool.run({ kind: "messages", query: '"a"', limit: 1 }),
    (error) => error instanceof TabAgentError && error.code === "unavailable",
  );
});

Deno.test("more searches at once than lanes, and answers larger than a lane, all come back whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search-pool-" });
  try {
    const memory = await openLocalMemory({ dir, searchWorkers: 0 });
    const conversation = (await memory.createConversation({ title: "t" })).id;
    const words = Array.from({ length: 3 * SEARCH_LANES }, (_, i) => `bird${i}x`);
    await memory.appendMessages(
      conversation,
      words.map((word) => ({ role: "user" as const, content: `a ${word} flew` })),
    );
    // Ten messages of 20 kB that all match: their body is larger than a lane.
    const long = "egret ".repeat(3_400);
    await memory.appendMessages(
      conversation,
      Array.from({ length: 10 }, () => ({ role: "user" as const, content: long })),
    );
    const inline = await memory.searchMessages({ query: "egret", limit: 10 }); // also catches the index up
    await memory.close();
    const pool = new SearchPool({ dir, size: 1, timeoutMs: 10_000 });
    try {
      const bodies = await Promise.all(words.map((word) => pool.body({ query: `"${word}"`, limit: 5 })));
      assert.deepEqual(
        bodies.map((body) =>
          JSON.parse(new TextDecoder().decode(body)).hits.map((hit: SearchHit) => hit.message.content)
        ),
        words.map((word) => [`a ${word} flew`]),
      );
      const large = await pool.body({ query: '"egret"', limit: 10 });
      assert.ok(large.length > SEARCH_LANE_BYTES);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(large)), { hits: inline });
    } finally {
      await pool.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a body search through a lane fails with timeout past its deadline, and so does the next on the stuck replacement", async () => {
  const pool = new SearchPool({ dir: "/nonexistent", size: 1, timeoutMs: 30, worker: STUCK });
  try {
    await assert.rejects(
      pool.body({ query: '"a"', limit: 1 }),
      (error) => error instanceof TabAgentError && error.code === "timeout",
    );
    await assert.rejects(
      pool.body({ query: '"b"', limit: 1 }),
      (error) => error instanceof TabAgentError && error.code === "timeout",
    );
  } finally {
    await pool.close();
  }
});
