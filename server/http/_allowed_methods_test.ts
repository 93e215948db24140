import assert from "node:assert/strict";
import { allowedMethods, patternToRegExp, templateToRegExp } from "./_allowed_methods.ts";

Deno.test("Hono path patterns match the paths their routes serve, and no others", () => {
  const cases: [string, string[], string[]][] = [
    ["/v1/memory/conversations/:id", ["/v1/memory/conversations/conv_1", "/v1/memory/conversations/x/"], [
      "/v1/memory/conversations",
      "/v1/memory/conversations/a/b",
    ]],
    ["/v1/models/:rest{.+}/verify", ["/v1/models/org/name/verify"], ["/v1/models/org/name", "/v1/models//verify"]],
    ["/v1/models/:rest{.+}", ["/v1/models/org/name/files/a.gguf"], ["/v1/models/", "/v1/modelsX"]],
    ["/api-doc/assets/*", ["/api-doc/assets/swagger/x.js"], ["/api-doc/other"]],
    ["/v1/a.b", ["/v1/a.b"], ["/v1/aXb"]],
  ];
  for (const [pattern, matching, other] of cases) {
    const regExp = patternToRegExp(pattern);
    for (const path of matching) assert.ok(regExp.test(path), `${pattern} should match ${path}`);
    for (const path of other) assert.ok(!regExp.test(path), `${pattern} should not match ${path}`);
  }
});

Deno.test("allowed methods merge every route of a path, add HEAD to GET and skip middleware", () => {
  let reads = 0;
  const allowed = allowedMethods(() => {
    reads++;
    return [
      { method: "ALL", path: "/*" },
      { method: "ALL", path: "/api/*" },
      { method: "GET", path: "/v1/things" },
      { method: "POST", path: "/v1/things" },
      { method: "DELETE", path: "/v1/things/:id" },
      { method: "GET", path: "/v1/things/:id" },
    ];
  });
  assert.deepEqual(allowed("/v1/things"), ["GET", "HEAD", "POST"]);
  assert.deepEqual(allowed("/v1/things/7"), ["DELETE", "GET", "HEAD"]);
  assert.equal(allowed("/api/anything"), null);
  assert.equal(allowed("/v1/other"), null);
  assert.equal(reads, 1, "the route table is read once");
});

Deno.test("a path the document describes gets its documented methods, though a wider route serves it", () => {
  const allowed = allowedMethods(
    () => [
      { method: "GET", path: "/v1/models/:rest{.+}" },
      { method: "DELETE", path: "/v1/models/:rest{.+}" },
      { method: "POST", path: "/v1/models/pull" },
    ],
    () => [
      { method: "get", path: "/v1/models/{org}/{name}" },
      { method: "delete", path: "/v1/models/{org}/{name}" },
      { method: "get", path: "/v1/models/{org}/{name}/files/{path}" },
      { method: "post", path: "/v1/models/pull" },
    ],
  );
  assert.deepEqual(allowed("/v1/models/pull"), ["POST"]);
  assert.deepEqual(allowed("/v1/models/a/b"), ["DELETE", "GET", "HEAD"]);
  assert.deepEqual(allowed("/v1/models/a/b/files/c"), ["GET", "HEAD"]);
  // Undocumented (a nested file path): the routes that serve it.
  assert.deepEqual(allowed("/v1/models/a/b/files/c/d"), ["DELETE", "GET", "HEAD"]);
  assert.ok(templateToRegExp("/v1/x.y/{id}").test("/v1/x.y/7") && !templateToRegExp("/v1/x.y/{id}").test("/v1/xzy/7"));
});
