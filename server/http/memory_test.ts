import assert from "node:assert/strict";
import { type MemoryClient, openLocalMemory } from "../memory/mod.ts";
import { fastRoutesOf } from "./_fast_routes.ts";
import { memoryRoutes } from "./memory.ts";
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
        ["q=train&conversation_id=conv_nope", 404, ""],
        ["q=%3F!&conversation_id=conv_nope", 404, ""], // the conversation is checked even when nothing can match
      ];
      // Text without a word finds nothing, as a search box answers it (it was a 400).
      const wordless = await get("q=%3F!");
      assert.deepEqual([wordless.status, await wordless.json()], [200, { hits: [] }]);
      for (const [query, status, field] of problems) {
        const res = await get(query);
        assert.deepEqual(res.status, status, query);
        assert.deepEqual(res.headers.get("content-type"), "application/problem+json");
        const body = await res.json();
        if (field) assert.deepEqual(body.errors[0].field, field, query);
      }
      // The fast path (see _fast_routes.ts) answers as Hono does: a percent-encoded path reaches the
      // same route through Hono alone.
      const viaHono = (query: string) => app.request(`/v1/memory/%73earch?${query}`, { headers: HEADERS });
      for (
        const query of [
          "q=train%20lyon&limit=5",
          `q=friday&conversation_id=${conversation}`,
          ...problems.map((p) => p[0]),
        ]
      ) {
        const [fast, full] = [await get(query), await viaHono(query)];
        assert.deepEqual(fast.status, full.status, query);
        assert.deepEqual([...fast.headers.keys()].sort(), [...full.headers.keys()].sort(), query);
        const [fastBody, fullBody] = [await fast.json(), await full.json()];
        assert.deepEqual({ ...fastBody, request_id: undefined }, { ...fullBody, request_id: undefined }, query);
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
