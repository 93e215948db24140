import assert from "node:assert/strict";
import { type MemoryClient, openLocalMemory } from "../memory/mod.ts";
import { fastRoutesOf } from "./_fast_route.ts";
import { MEMORY_MAX_SEARCH_LIMIT } from "../config/mod.ts";
import { memoryRoutes, plainSearchQuery, SearchQuery } from "./memory.ts";
import { testHttpApp } from "./testing/http_app.ts";

const TOKEN = "t".repeat(40);
const HEADERS = { host: "127.0.0.1", authorization: `Bearer ${TOKEN}` };

/** `memory` without `searchMessagesBody`, as a client over gRPC is. */
function withoutSearchBody(memory: MemoryClient): MemoryClient {
  return new Proxy(memory, {
    get: (target, property) => {
      if (property === "searchMessagesBody") return undefined;
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("GET /v1/memory/search: the worker-built body is searchMessages' hits; bad input is still a problem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "http-memory-search-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 1 });
  try {
    const conversation = (await memory.createConversation({ title: "Trip" })).id;
    await memory.appendMessages(conversation, [
      { role: "user", content: "Find a train to Lyon on Friday" },
      { role: "assistant", content: [{ type: "text", text: "The 9:04 train reaches Lyon" }], model: "tiny" },
    ]);
    const expected = { hits: await memory.searchMessages({ query: "train lyon", limit: 5 }) };
    assert.deepEqual(expected.hits.length, 2);
    for (const client of [memory, withoutSearchBody(memory)]) {
      const router = memoryRoutes({ memory: client, backupDir: `${dir}/b` });
      // served in front of Hono where the memory builds the body (see _fast_route.ts), by Hono otherwise
      assert.deepEqual(fastRoutesOf([router]).map((route) => route.path), ["/v1/memory/search"]);
      const app = testHttpApp({ token: TOKEN, routers: [router] });
      const get = (query: string, headers: Record<string, string> = HEADERS) =>
        app.request(`/v1/memory/search?${query}`, { headers });

      const found = await get("q=train%20lyon&limit=5");
      assert.deepEqual(found.status, 200);
      assert.deepEqual(found.headers.get("content-type"), "application/json");
      assert.ok(found.headers.get("x-request-id"));
      assert.deepEqual(await found.json(), expected);
      const scoped = await get(`q=friday&conversation_id=${conversation}&match=any`);
      assert.deepEqual((await scoped.json()).hits.length, 1);

      const problems: [string, number, string][] = [
        ["limit=5", 400, "q"],
        ["q=train&limit=0", 400, "limit"],
        ["q=train&match=some", 400, "match"],
        ["q=%3F!", 400, "query"], // no word at all: memory's own check
        ["q=train&conversation_id=conv_nope", 404, ""],
      ];
      for (const [query, status, field] of problems) {
        const res = await get(query);
        assert.deepEqual(res.status, status, query);
        assert.deepEqual(res.headers.get("content-type"), "application/problem+json");
        const body = await res.json();
        if (field) assert.deepEqual(body.errors[0].field, field, query);
      }
      const anonymous = await get("q=train", { host: "127.0.0.1" });
      assert.deepEqual(anonymous.status, 401);
      await anonymous.body?.cancel();
    }
  } finally {
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plainSearchQuery accepts only what the route's schema accepts, and gives what it parses", () => {
  const valued = (value: unknown) =>
    value && Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
  const usual: Record<string, unknown>[] = [
    { q: "train lyon" },
    { q: "train", limit: "10" },
    { q: "t", limit: "1", match: "any" },
    { q: "x".repeat(1_000), limit: String(MEMORY_MAX_SEARCH_LIMIT), conversation_id: "conv_x", match: "all" },
    { q: "train", other: "ignored" },
  ];
  const others: Record<string, unknown>[] = [
    {},
    { q: "" },
    { q: "x".repeat(1_001) },
    { q: ["a", "b"] },
    { q: "a", limit: "0" },
    { q: "a", limit: String(MEMORY_MAX_SEARCH_LIMIT + 1) },
    { q: "a", limit: "1.5" },
    { q: "a", limit: " 5" },
    { q: "a", limit: "0x10" },
    { q: "a", limit: "1e1" },
    { q: "a", limit: "05" },
    { q: "a", limit: "" },
    { q: "a", limit: ["1", "2"] },
    { q: "a", conversation_id: "" },
    { q: "a", conversation_id: "c".repeat(201) },
    { q: "a", match: "some" },
    { q: "a", match: ["all", "any"] },
  ];
  for (const query of usual) {
    const plain = plainSearchQuery(query);
    assert.ok(plain, JSON.stringify(query));
    assert.deepEqual(plain, valued(SearchQuery.parse(query)), JSON.stringify(query));
  }
  for (const query of others) {
    const plain = plainSearchQuery(query);
    const parsed = SearchQuery.safeParse(query);
    if (plain !== undefined) assert.deepEqual(plain, valued(parsed.data), JSON.stringify(query));
  }
});
