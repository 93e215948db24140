import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { fastRouteAnswerer, fastRoutesOf, offerFastRoute } from "./_fast_route.ts";
import { RequestAdmission, RequestRecorder } from "./middleware.ts";

const TOKEN = "t".repeat(40);
const HEADERS = { host: "127.0.0.1:8765", authorization: `Bearer ${TOKEN}` };
const quiet = createLogger({ level: "error", sink: () => {} });

/** An answerer over one route at `/v1/echo` that answers its query as JSON, or as `answer` says. */
function setup(options: { timeoutMs?: number; answer?: (query: Record<string, unknown>) => Promise<Response> | null }) {
  const metrics = new MetricsRegistry();
  const requests = metrics.counter("requests", "", ["method", "route", "status"]);
  const duration = metrics.histogram("duration", "", ["method", "route"]);
  const recorder = new RequestRecorder({ log: quiet, requests, duration });
  const admission = new RequestAdmission({
    allowedHosts: [],
    bindHost: "127.0.0.1",
    allowedOrigins: ["chrome-extension://abc"],
    token: TOKEN,
    maxBodyBytes: 1024,
    timeoutMs: options.timeoutMs ?? 60_000,
  });
  const seen: Record<string, unknown>[] = [];
  const router = {};
  offerFastRoute(router, {
    path: "/v1/echo",
    answer(query) {
      seen.push(query);
      return options.answer ? options.answer(query) : Promise.resolve(Response.json(query));
    },
  });
  const answer = fastRouteAnswerer({ admission, recorder, routes: fastRoutesOf([router, {}]) });
  const request = (path: string, init: RequestInit = {}) =>
    answer(new Request(`http://127.0.0.1:8765${path}`, { ...init, headers: init.headers ?? HEADERS }));
  return { request, seen, metrics };
}

Deno.test("a fast route gets the query as Hono's validator sees it, and its answer the request id and metrics", async () => {
  const { request, seen, metrics } = setup({});
  const res = await request("/v1/echo?q=a+b%20c&tag=x&tag=y&empty=", {
    headers: { ...HEADERS, "x-request-id": "req-1" },
  });
  assert.ok(res);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-request-id"), "req-1");
  assert.deepEqual(await res.json(), { q: "a b c", tag: ["x", "y"], empty: "" });
  assert.equal(Object.getPrototypeOf(seen[0]), Object.prototype);
  assert.match(metrics.render(), /requests\{method="GET",route="\/v1\/echo",status="200"\} 1/);

  const plain = await request("/v1/echo");
  assert.deepEqual(await plain?.json(), {});
  assert.ok(plain?.headers.get("x-request-id"), "a new id when none came");
});

Deno.test("a fast route leaves to the full path what it must not answer: refusals, other methods, bodies, other paths", () => {
  const { request, seen } = setup({ answer: () => null });
  assert.equal(request("/v1/echo?q=declined"), null, "the route declined");
  assert.equal(seen.length, 1);
  const untouched: [string, RequestInit][] = [
    ["/v1/echo", { headers: { host: "127.0.0.1:8765" } }], // no token: the full path answers 401
    ["/v1/echo", { headers: { ...HEADERS, authorization: "Bearer wrong" } }],
    ["/v1/echo", { headers: { ...HEADERS, host: "attacker.example" } }],
    ["/v1/echo", { headers: { ...HEADERS, origin: "https://evil.example" } }],
    ["/v1/echo", { method: "HEAD" }],
    ["/v1/echo", { method: "POST", body: "x" }],
    ["/v1/echo/more", {}],
    ["/v1/echo?q=x&__proto__=p", {}], // Hono's copy makes it an own key; a plain copy would set the prototype
    ["/v1/ech", {}],
  ];
  for (const [path, init] of untouched) assert.equal(request(path, init), null, `${init.method ?? "GET"} ${path}`);
  assert.equal(seen.length, 1, "the route never saw them");
});

Deno.test("a fast route's failure is a problem document, and its deadline the guard's 504", async () => {
  const failing = setup({ answer: () => Promise.reject(new TabAgentError("not_found", "No such thing")) });
  const res = await failing.request("/v1/echo", { headers: { ...HEADERS, origin: "chrome-extension://abc" } });
  assert.equal(res?.status, 404);
  assert.equal(res?.headers.get("content-type"), "application/problem+json");
  assert.equal(res?.headers.get("access-control-allow-origin"), "chrome-extension://abc");
  const body = await res?.json();
  assert.equal(body.code, "not_found");
  assert.equal(body.instance, "/v1/echo");
  assert.equal(body.request_id, res?.headers.get("x-request-id"));
  assert.match(failing.metrics.render(), /route="\/v1\/echo",status="404"\} 1/);

  const never = Promise.withResolvers<Response>();
  const slow = setup({ timeoutMs: 100, answer: () => never.promise });
  // The guard's deadline ticker does not keep a process alive by itself: this timer does, meanwhile.
  const alive = setTimeout(() => {}, 10_000);
  const timedOut = await slow.request("/v1/echo");
  clearTimeout(alive);
  assert.equal(timedOut?.status, 504);
  assert.equal((await timedOut?.json()).code, "timeout");
});
