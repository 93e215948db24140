import assert from "node:assert/strict";
import { TrieRouter } from "hono/router/trie-router";
import { RouteMemo } from "./_route_memo.ts";

/** The API's shape where RegExpRouter gives up: fixed paths beside a `{.+}` parameter and wildcards. */
function routes<T>(router: { add(method: string, path: string, handler: string): void }): void {
  router.add("ALL", "/*", "context");
  router.add("ALL", "/api/*", "ollama");
  router.add("GET", "/v1/health", "health");
  router.add("POST", "/v1/models/pull", "pull");
  router.add("GET", "/v1/models/pull/:job", "job");
  router.add("GET", "/v1/models/:rest{.+}", "model");
  router.add("GET", "/api/tags", "tags");
}

Deno.test("the memo answers every path as Hono's router does", () => {
  const memo = new RouteMemo<string>();
  const plain = new TrieRouter<string>();
  routes(memo);
  routes(plain);
  const names = (result: ReturnType<TrieRouter<string>["match"]>) =>
    result[0].map(([handler, params]) => [handler, { ...(params as Record<string, unknown>) }]);
  for (
    const [method, path] of [
      ["GET", "/v1/health"],
      ["GET", "/v1/health"],
      ["POST", "/v1/health"],
      ["GET", "/v1/models/pull"],
      ["POST", "/v1/models/pull"],
      ["GET", "/v1/models/pull/7"],
      ["GET", "/v1/models/org/name"],
      ["GET", "/api/tags"],
      ["GET", "/nothing"],
      ["FOO1", "/v1/health"],
    ]
  ) {
    const ours = memo.match(method, path);
    const theirs = plain.match(method, path);
    // RegExpRouter and TrieRouter write params differently (an index stash or a record): compare values.
    const values = (result: typeof ours) =>
      result[0].map(([handler, params]) => {
        const stash = result[1] as string[] | undefined;
        const record = Object.fromEntries(
          Object.entries(params as Record<string, unknown>).map(([k, v]) => [k, stash ? stash[v as number] : v]),
        );
        return [handler, record];
      });
    assert.deepEqual(values(ours), names(theirs), `${method} ${path}`);
  }
});

Deno.test("only fixed paths and known methods are remembered, so clients cannot grow the memo", () => {
  const memo = new RouteMemo<string>();
  routes(memo);
  const first = memo.match("GET", "/v1/health");
  assert.equal(memo.match("GET", "/v1/health"), first, "a fixed path's match is kept");
  assert.ok(
    memo.match("GET", "/v1/models/a/b") !== memo.match("GET", "/v1/models/a/b"),
    "a parameter path is matched anew",
  );
  assert.ok(
    memo.match("FOO1", "/v1/health") !== memo.match("FOO1", "/v1/health"),
    "an invented method is matched anew",
  );
  assert.ok(memo.match("GET", "/x1") !== memo.match("GET", "/x1"), "an unknown path is matched anew");
});
