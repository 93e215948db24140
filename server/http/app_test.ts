import assert from "node:assert/strict";
import { createRoute, z } from "@hono/zod-openapi";
import { Lifecycle } from "../lifecycle/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { BEARER_SECURITY, createHttpApp, createRouter, type HttpAppDeps } from "./mod.ts";

const TOKEN = "t".repeat(40);
const quiet = createLogger({ level: "error", sink: () => {} });
const H = { host: "127.0.0.1:8765" };
const AUTH = { ...H, authorization: `Bearer ${TOKEN}` };

function echoRouter() {
  const route = createRoute({
    method: "post",
    path: "/v1/echo",
    security: BEARER_SECURITY,
    request: {
      body: {
        content: { "application/json": { schema: z.object({ text: z.string().max(10), n: z.number().int() }) } },
      },
    },
    responses: {
      200: { description: "echo", content: { "application/json": { schema: z.object({ text: z.string() }) } } },
    },
  });
  const slow = createRoute({
    method: "get",
    path: "/v1/slow",
    security: BEARER_SECURITY,
    responses: { 200: { description: "late", content: { "application/json": { schema: z.object({}) } } } },
  });
  return createRouter()
    .openapi(route, (c) => c.json({ text: c.req.valid("json").text }, 200))
    .openapi(slow, async (c) => {
      await slowHandler.release.promise;
      slowHandler.finished.resolve();
      return c.json({}, 200);
    });
}

/** The slow route's handler waits until the test releases it, and says when it has finished. */
const slowHandler = { release: Promise.withResolvers<void>(), finished: Promise.withResolvers<void>() };

function makeApp(overrides: Partial<HttpAppDeps> = {}, staticDir = "/nonexistent") {
  const lifecycle = new Lifecycle(quiet);
  return createHttpApp({
    config: {
      host: "127.0.0.1",
      allowedHosts: ["tabagent.lan"],
      allowedOrigins: ["chrome-extension://abc", "http://localhost:3000"],
      maxBodyBytes: 1024,
      requestTimeoutMs: 300,
      mode: "all",
      staticDir,
    },
    version: "test",
    log: quiet,
    lifecycle,
    metrics: new MetricsRegistry(),
    token: TOKEN,
    routers: [echoRouter()],
    serveStaticFiles: true,
    nodeModules: new URL("../../node_modules/", import.meta.url),
    ...overrides,
  });
}

async function problem(res: Response) {
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  return await res.json();
}

Deno.test("health is public and reports components", async () => {
  const app = makeApp();
  const res = await app.request("/v1/health", { headers: H });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.status, "ready");
  assert.ok(res.headers.get("x-request-id"));
});

Deno.test("a Host that is not loopback or configured is refused (DNS rebinding)", async () => {
  const app = makeApp();
  const bad = await app.request("/v1/health", { headers: { host: "attacker.example:8765" } });
  assert.equal(bad.status, 403);
  assert.equal((await problem(bad)).code, "forbidden_host");
  for (const host of ["localhost:8765", "[::1]:8765", "tabagent.lan"]) {
    assert.equal((await app.request("/v1/health", { headers: { host } })).status, 200, host);
  }
});

Deno.test("CORS is granted only to allowed origins", async () => {
  const app = makeApp();
  const preflight = await app.request("/v1/echo", {
    method: "OPTIONS",
    headers: { ...H, origin: "chrome-extension://abc", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "chrome-extension://abc");
  assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /authorization/);

  const allowed = await app.request("/v1/health", { headers: { ...H, origin: "http://localhost:3000" } });
  assert.equal(allowed.headers.get("access-control-allow-origin"), "http://localhost:3000");

  const denied = await app.request("/v1/health", { headers: { ...H, origin: "https://evil.example" } });
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get("access-control-allow-origin"), null);

  const self = await app.request("/v1/health", { headers: { ...H, origin: "http://127.0.0.1:8765" } });
  assert.equal(self.status, 200);
  assert.equal(self.headers.get("access-control-allow-origin"), null);

  // An allowed origin can read refusals (401, 413) and their request id as well.
  const refused = await app.request("/v1/echo", {
    method: "POST",
    headers: { ...H, origin: "chrome-extension://abc" },
  });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("access-control-allow-origin"), "chrome-extension://abc");
  assert.match(refused.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
  assert.equal(refused.headers.get("vary"), "origin");
  assert.ok(refused.headers.get("x-request-id"));
  await refused.body?.cancel();
});

Deno.test("the API needs the bearer token; health and docs do not", async () => {
  const app = makeApp();
  const missing = await app.request("/v1/echo", { method: "POST", headers: H });
  assert.equal(missing.status, 401);
  assert.match(missing.headers.get("www-authenticate") ?? "", /Bearer/);
  assert.equal((await problem(missing)).code, "unauthorized");
  const wrong = await app.request("/metrics", { headers: { ...H, authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  assert.equal((await app.request("/metrics", { headers: AUTH })).status, 200);
  assert.equal((await app.request("/api-doc/openapi.json", { headers: H })).status, 200);
});

Deno.test("--no-auth (null token) lets requests through", async () => {
  const app = makeApp({ token: null });
  assert.equal((await app.request("/metrics", { headers: H })).status, 200);
});

Deno.test("invalid bodies get 400 naming the field; malformed JSON gets 400", async () => {
  const app = makeApp();
  const post = (body: string) =>
    app.request("/v1/echo", { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body });
  const ok200 = await post(JSON.stringify({ text: "hi", n: 1 }));
  assert.deepEqual(await ok200.json(), { text: "hi" });
  const invalid = await problem(await post(JSON.stringify({ text: "far too long text", n: 1.5 })));
  assert.equal(invalid.status, 400);
  assert.equal(invalid.code, "validation_failed");
  assert.deepEqual(invalid.errors.map((e: { field: string }) => e.field).sort(), ["n", "text"]);
  const malformed = await problem(await post("{not json"));
  assert.equal(malformed.status, 400);
});

Deno.test("oversized bodies get 413, by header or by counting", async () => {
  const app = makeApp();
  const big = JSON.stringify({ text: "x".repeat(2000), n: 1 });
  const res = await app.request("/v1/echo", {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: big,
  });
  assert.equal(res.status, 413);
  assert.equal((await problem(res)).code, "payload_too_large");
  const chunked = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(big));
      controller.close();
    },
  });
  const res2 = await app.request("/v1/echo", {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: chunked,
    duplex: "half",
  } as RequestInit);
  assert.equal(res2.status, 413);
});

Deno.test("a route with a body limit of its own accepts more than the default and no more", async () => {
  const app = makeApp({ bodyLimits: new Map([["/v1/echo", 4096]]) });
  const post = (text: string) =>
    app.request("/v1/echo", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ text, n: 1 }),
    });
  // Over the app's 1024 bytes but within the route's 4096: the route's own validation answers.
  const within = await post("x".repeat(2000));
  assert.equal(within.status, 400);
  assert.equal((await problem(within)).code, "validation_failed");
  const over = await post("x".repeat(5000));
  assert.equal(over.status, 413);
  assert.equal((await problem(over)).code, "payload_too_large");
});

Deno.test("names inherited from Object.prototype are no documentation assets", async () => {
  const app = makeApp();
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    const res = await app.request(`/api-doc/assets/${name}`, { headers: H });
    assert.equal(res.status, 404, name);
    await res.body?.cancel();
  }
});

Deno.test("unknown routes get a 404 problem", async () => {
  const app = makeApp();
  const res = await app.request("/v1/nope", { headers: AUTH });
  assert.equal(res.status, 404);
  const body = await problem(res);
  assert.deepEqual([body.code, body.instance], ["not_found", "/v1/nope"]);
  assert.deepEqual(body.error, { message: body.detail, type: "invalid_request_error", code: "not_found" });
  assert.ok(body.request_id);
});

Deno.test("a served path asked with another method gets 405 and Allow naming the methods it has", async () => {
  const app = makeApp();
  for (
    const [method, path, allow] of [
      ["PATCH", "/v1/echo", "POST"],
      ["GET", "/v1/echo", "POST"],
      ["DELETE", "/v1/slow", "GET, HEAD"],
      ["POST", "/metrics", "GET, HEAD"],
      ["PUT", "/v1/health", "GET, HEAD"],
    ]
  ) {
    const res = await app.request(path, { method, headers: AUTH });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
    const body = await problem(res);
    assert.equal(body.code, "method_not_allowed");
    assert.deepEqual(body.allow, allow.split(", "));
  }
  // A path no route has is still a 404, with any method.
  const res = await app.request("/v1/nope", { method: "PUT", headers: AUTH });
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("allow"), null);
  await res.body?.cancel();
});

Deno.test("request ids are echoed when sane and replaced when not", async () => {
  const app = makeApp();
  const mine = await app.request("/v1/health", { headers: { ...H, "x-request-id": "abc-123" } });
  assert.equal(mine.headers.get("x-request-id"), "abc-123");
  const bad = await app.request("/v1/health", { headers: { ...H, "x-request-id": "bad id\u0001" } });
  assert.ok(bad.headers.get("x-request-id") !== "bad id\u0001");
});

Deno.test("the OpenAPI document lists every API route", async () => {
  const app = makeApp();
  const doc = await (await app.request("/api-doc/openapi.json", { headers: H })).json();
  assert.equal(doc.openapi, "3.1.0");
  assert.ok(doc.paths["/v1/health"].get);
  assert.ok(doc.paths["/v1/echo"].post);
  assert.ok(doc.paths["/metrics"].get);
  assert.deepEqual(doc.paths["/v1/health"].get.security, []);
  assert.ok(doc.components.securitySchemes.bearerAuth);
});

Deno.test("metrics count requests per route and status", async () => {
  const app = makeApp();
  await app.request("/v1/health", { headers: H });
  await app.request("/v1/health", { headers: H });
  const text = await (await app.request("/metrics", { headers: AUTH })).text();
  assert.match(text, /tabagent_http_requests_total\{method="GET",route="\/v1\/health",status="200"\} 2/);
  assert.match(text, /tabagent_http_request_duration_seconds_count\{method="GET",route="\/v1\/health"\} 2/);
});

Deno.test("static files are served with ETags and never outside their folder", async () => {
  const outer = await Deno.makeTempDir();
  const dir = `${outer}/web`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/index.html`, "<h1>hi</h1>");
  await Deno.writeTextFile(`${outer}/secret.txt`, "secret");
  const app = makeApp({}, dir);
  const res = await app.request("/", { headers: H });
  assert.equal(res.status, 200);
  assert.ok(res.headers.get("x-request-id"));
  assert.equal(await res.text(), "<h1>hi</h1>");
  assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
  const again = await app.request("/index.html", { headers: { ...H, "if-none-match": res.headers.get("etag")! } });
  assert.equal(again.status, 304);
  for (const path of ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"]) {
    const r = await app.request(path, { headers: H });
    assert.ok(r.status === 400 || r.status === 404, `${path} → ${r.status}`);
    await r.body?.cancel();
  }
  await Deno.remove(outer, { recursive: true });
});

Deno.test("a handler slower than the request timeout is answered with 504", async () => {
  const app = makeApp();
  let handlerFinished = false;
  slowHandler.finished.promise.then(() => handlerFinished = true);
  // The timeout's ticker is unref'd (it never keeps a server alive) and app.request has no socket:
  // this timer only keeps the event loop running until the 504 comes; it decides nothing.
  const keepAlive = setInterval(() => {}, 1_000);
  const res = await Promise.resolve(app.request("/v1/slow", { headers: AUTH })).finally(() => clearInterval(keepAlive));
  assert.equal(res.status, 504);
  assert.equal((await problem(res)).code, "timeout");
  assert.ok(!handlerFinished, "answered before the handler finished");
  slowHandler.release.resolve(); // let the handler end inside the test
  await slowHandler.finished.promise;
  assert.equal((await app.request("/v1/health", { headers: H })).status, 200);
});
