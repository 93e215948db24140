import { z } from "@hono/zod-openapi";
import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { addFastRoute, type FastRoute, fastRouteAnswerer, fastRoutesOf } from "./_fast_routes.ts";
import { RequestAdmission, RequestRecorder } from "./middleware.ts";

const TOKEN = "t".repeat(40);
const H = { host: "127.0.0.1:8765", authorization: `Bearer ${TOKEN}` };
const quiet = createLogger({ level: "error", sink: () => {} });
const Query = z.object({ q: z.string().min(1), limit: z.coerce.number().int().min(1).optional() });

/** An answerer over one route, `/v1/things`, whose `serve` is `serve` (by default: echo the query). */
function setup(
  options: { serve?: FastRoute<z.infer<typeof Query>>["serve"]; timeoutMs?: number } = {},
) {
  const metrics = new MetricsRegistry();
  const served: z.infer<typeof Query>[] = [];
  const route: FastRoute<z.infer<typeof Query>> = {
    path: "/v1/things",
    query: Query,
    serve: options.serve ?? ((query) => {
      served.push(query);
      return Promise.resolve(Response.json(query));
    }),
  };
  const answer = fastRouteAnswerer({
    admission: new RequestAdmission({
      allowedHosts: [],
      bindHost: "127.0.0.1",
      allowedOrigins: ["chrome-extension://abc"],
      token: TOKEN,
      maxBodyBytes: 10,
      timeoutMs: options.timeoutMs ?? 60_000,
    }),
    recorder: new RequestRecorder({
      log: quiet,
      requests: metrics.counter("tabagent_http_requests_total", "r", ["method", "route", "status"]),
      duration: metrics.histogram("tabagent_http_request_duration_seconds", "d", ["method", "route"]),
    }),
    routes: [route as FastRoute],
  });
  const request = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    answer(new Request(`http://127.0.0.1:8765${path}`, { ...init, headers: { ...H, ...init.headers } }));
  return { request, served, metrics };
}

Deno.test("a fast route takes only admitted GETs of its exact path with a valid query; Hono gets the rest", async () => {
  const { request, served } = setup();
  const taken = request("/v1/things?q=train%20lyon&limit=3");
  assert.ok(taken instanceof Promise);
  assert.deepEqual(await (await taken).json(), { q: "train lyon", limit: 3 });
  assert.deepEqual(served, [{ q: "train lyon", limit: 3 }], "the query as the route's schema parsed it");

  const declined: [string, RequestInit & { headers?: Record<string, string> }][] = [
    ["/v1/things?q=x", { method: "POST", body: "{}" }],
    ["/v1/things?q=x", { method: "HEAD" }],
    ["/v1/things?q=x", { method: "OPTIONS" }],
    ["/v1/things/?q=x", {}],
    ["/v1/thingsx?q=x", {}],
    ["/v1/%74hings?q=x", {}], // Hono decodes the path; the fast path leaves it to Hono
    ["/v1/things?q=x", { headers: { authorization: "" } }],
    ["/v1/things?q=x", { headers: { authorization: `Bearer ${"x".repeat(40)}` } }],
    ["/v1/things?q=x", { headers: { host: "evil.example" } }],
    ["/v1/things?q=x", { headers: { origin: "https://evil.example" } }],
    ["/v1/things", {}], // q missing: Hono answers the validation problem
    ["/v1/things?q=x&limit=0", {}],
    ["/v1/things?q=x&q=y", {}], // a repeated key is an array, as Hono's validator reads it
  ];
  for (const [path, init] of declined) assert.equal(request(path, init), null, `${init.method ?? "GET"} ${path}`);
  assert.equal(served.length, 1);
});

Deno.test("a fast route's answer gets the request id, CORS headers and metrics that Hono's path gives", async () => {
  const { request, metrics } = setup();
  const mine = await request("/v1/things?q=a", { headers: { "x-request-id": "abc-123" } })!;
  assert.equal(mine.headers.get("x-request-id"), "abc-123");
  assert.equal(mine.headers.get("access-control-allow-origin"), null);
  await mine.body?.cancel();
  const fresh = await request("/v1/things?q=a")!;
  assert.match(fresh.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-[0-9a-z]+$/);
  await fresh.body?.cancel();
  const cors = await request("/v1/things?q=a", { headers: { origin: "chrome-extension://abc" } })!;
  assert.equal(cors.headers.get("access-control-allow-origin"), "chrome-extension://abc");
  assert.match(cors.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
  assert.equal(cors.headers.get("vary"), "origin");
  await cors.body?.cancel();
  const text = metrics.render();
  assert.match(text, /tabagent_http_requests_total\{method="GET",route="\/v1\/things",status="200"\} 3/);
  assert.match(text, /tabagent_http_request_duration_seconds_count\{method="GET",route="\/v1\/things"\} 3/);
});

Deno.test("a fast route's failure is the app's problem document; past the request timeout it is a 504", async () => {
  const failing = setup({ serve: () => Promise.reject(new TabAgentError("not_found", "No such thing")) });
  const res = await failing.request("/v1/things?q=a", { headers: { "x-request-id": "req-1" } })!;
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal(res.headers.get("x-request-id"), "req-1");
  const body = await res.json();
  assert.deepEqual([body.code, body.detail, body.instance, body.request_id], [
    "not_found",
    "No such thing",
    "/v1/things",
    "req-1",
  ]);
  assert.match(
    failing.metrics.render(),
    /tabagent_http_requests_total\{method="GET",route="\/v1\/things",status="404"\} 1/,
  );

  const throwing = setup({
    serve: () => {
      throw new Error("boom");
    },
  });
  const internal = await throwing.request("/v1/things?q=a")!;
  assert.equal(internal.status, 500);
  assert.equal((await internal.json()).detail.includes("boom"), false, "internals are logged, not sent");

  // The deadline's ticker never holds the process open, so the slow answer holds it with a timer.
  let slow: ReturnType<typeof setTimeout> | undefined;
  const stuck = setup({
    serve: () => new Promise<Response>((resolve) => slow = setTimeout(() => resolve(new Response()), 60_000)),
    timeoutMs: 20,
  });
  const late = await stuck.request("/v1/things?q=a")!;
  clearTimeout(slow);
  assert.equal(late.status, 504);
  assert.equal((await late.json()).code, "timeout");
});

Deno.test("fast routes are registered on their router and collected when the app mounts it", () => {
  const router = {}, other = {};
  const route: FastRoute<z.infer<typeof Query>> = {
    path: "/v1/things",
    query: Query,
    serve: () => Promise.resolve(new Response()),
  };
  addFastRoute(router, route);
  assert.deepEqual(fastRoutesOf([other, router]), [route]);
  assert.deepEqual(fastRoutesOf([other]), []);
});
