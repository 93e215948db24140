import assert from "node:assert/strict";
import { Lifecycle } from "../lifecycle/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { healthAnswerer } from "./_fast_health.ts";
import { HealthBody, HealthSchema } from "./health.ts";
import { RequestAdmission, RequestRecorder } from "./middleware.ts";
import { testHttpApp } from "./testing/http_app.ts";

const TOKEN = "t".repeat(40);
const H = { host: "127.0.0.1:8765" };
const quiet = createLogger({ level: "error", sink: () => {} });

function setup() {
  const metrics = new MetricsRegistry();
  const lifecycle = new Lifecycle(quiet);
  lifecycle.add({ name: "memory", critical: true, start: async () => {}, stop: async () => {} });
  const app = testHttpApp({
    config: { allowedOrigins: ["chrome-extension://abc"], allowedHosts: ["tabagent.lan"] },
    metrics,
    lifecycle,
    token: TOKEN,
  });
  /** A request the fast path leaves to Hono (a query string), to compare the two paths. */
  const viaHono = (init: RequestInit = {}) => app.request("/v1/health?full", { ...init, headers: H });
  return { app, metrics, lifecycle, viaHono };
}

function headerNames(res: Response): string {
  return [...res.headers.keys()].filter((name) => name !== "date").sort().join(", ");
}

Deno.test("the fast path answers health synchronously, with the same status, headers and body as Hono", async () => {
  const { app, lifecycle, viaHono } = setup();
  const starting = app.request("/v1/health", { headers: H });
  assert.ok(starting instanceof Response, "answered without a promise: the fast path served it");
  assert.equal(starting.status, 503);
  assert.equal((await starting.json()).status, "starting");

  await lifecycle.startAll();
  const fast = app.request("/v1/health", { headers: H }) as Response;
  assert.ok(fast instanceof Response);
  const full = await viaHono();
  assert.deepEqual([fast.status, full.status], [200, 200]);
  assert.equal(headerNames(fast), headerNames(full));
  assert.equal(fast.headers.get("content-type"), "application/json");
  const [fastBody, fullBody] = [HealthSchema.parse(await fast.json()), HealthSchema.parse(await full.json())];
  assert.deepEqual({ ...fastBody, uptime_s: 0 }, { ...fullBody, uptime_s: 0 });
  assert.deepEqual(Object.keys(fastBody), ["status", "version", "mode", "uptime_s", "components"]);

  const head = app.request("/v1/health", { method: "HEAD", headers: H }) as Response;
  assert.ok(head instanceof Response);
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  assert.equal(head.headers.get("content-type"), "application/json");
  assert.ok(head.headers.get("x-request-id"));
  await lifecycle.stopAll(1000);
});

Deno.test("the fast path keeps the Host and Origin guards: refusals are answered as on every route", async () => {
  const { app } = setup();
  const rebinding = await app.request("/v1/health", { headers: { host: "attacker.example:8765" } });
  assert.equal(rebinding.status, 403);
  assert.equal(rebinding.headers.get("content-type"), "application/problem+json");
  assert.equal((await rebinding.json()).code, "forbidden_host");
  const noHost = await app.request(new Request("http://127.0.0.1/v1/health"));
  assert.equal(noHost.status, 403);
  await noHost.body?.cancel();

  const evil = await app.request("/v1/health", { headers: { ...H, origin: "https://evil.example" } });
  assert.equal(evil.status, 403);
  assert.equal((await evil.json()).code, "forbidden");
  assert.equal(evil.headers.get("access-control-allow-origin"), null);

  const allowed = app.request("/v1/health", { headers: { ...H, origin: "chrome-extension://abc" } }) as Response;
  assert.ok(allowed instanceof Response, "an allowed origin is served on the fast path");
  assert.equal(allowed.headers.get("access-control-allow-origin"), "chrome-extension://abc");
  assert.match(allowed.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
  assert.equal(allowed.headers.get("vary"), "origin");
  await allowed.body?.cancel();
  const configured = await app.request("/v1/health", { headers: { host: "tabagent.lan" } });
  assert.equal(configured.status, 503, "an allowed Host gets health (not started yet: 503)");
  await configured.body?.cancel();
});

Deno.test("the fast path's checks are the guard's: it declines what it must not answer", () => {
  const lifecycle = new Lifecycle(quiet);
  const metrics = new MetricsRegistry();
  const answer = healthAnswerer({
    admission: new RequestAdmission({
      allowedHosts: [],
      bindHost: "127.0.0.1",
      allowedOrigins: [],
      token: TOKEN,
      maxBodyBytes: 10,
      timeoutMs: 1000,
    }),
    recorder: new RequestRecorder({
      log: quiet,
      requests: metrics.counter("requests", "r", ["method", "route", "status"]),
      duration: metrics.histogram("duration", "d", ["method", "route"]),
    }),
    health: new HealthBody({ lifecycle, version: "v", mode: "http" }),
  });
  const request = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    answer(new Request(`http://127.0.0.1:8765${path}`, { ...init, headers: { ...H, ...init.headers } }));
  assert.ok(request("/v1/health") instanceof Response);
  assert.equal(request("/v1/health", { headers: { host: "evil.example" } }), null);
  assert.equal(request("/v1/health", { headers: { origin: "https://evil.example" } }), null);
  assert.equal(request("/v1/health", { method: "POST" }), null);
  assert.equal(request("/v1/health", { method: "OPTIONS" }), null);
  assert.equal(request("/v1/healthz"), null);
  assert.equal(request("/v1/health/"), null);
  assert.equal(request("/v1/health?x=1"), null);
  assert.equal(request("/x/v1/health"), null);
  assert.equal(request("/v1/models"), null, "a path needing the token is never answered here");
});

Deno.test("fast-path health requests are counted, logged and given request ids like any other", async () => {
  const { app, metrics, viaHono } = setup();
  const lines: string[] = [];
  const logged = testHttpApp({ log: createLogger({ level: "debug", sink: (line) => lines.push(line) }) });
  await (logged.request("/v1/health", { headers: H }) as Response).body?.cancel();
  assert.ok(
    lines.some((line) => line.includes('"msg":"request"') && line.includes('"path":"/v1/health"')),
    "access log",
  );

  for (let i = 0; i < 3; i++) await (app.request("/v1/health", { headers: H }) as Response).body?.cancel();
  await (app.request("/v1/health", { method: "HEAD", headers: H }) as Response).body?.cancel();
  await (await viaHono()).body?.cancel();
  await (await app.request("/v1/health", { headers: { host: "evil.example" } })).body?.cancel();
  const text = metrics.render();
  // Three fast ones and the one through Hono share one series.
  assert.match(text, /tabagent_http_requests_total\{method="GET",route="\/v1\/health",status="503"\} 4/);
  assert.match(text, /tabagent_http_requests_total\{method="HEAD",route="\/v1\/health",status="503"\} 1/);
  assert.match(text, /tabagent_http_request_duration_seconds_count\{method="GET",route="\/v1\/health"\} 4/);
  assert.match(text, /tabagent_http_requests_total\{method="GET",route="other",status="403"\} 1/);

  const mine = app.request("/v1/health", { headers: { ...H, "x-request-id": "abc-123" } }) as Response;
  assert.equal(mine.headers.get("x-request-id"), "abc-123");
  const bad = app.request("/v1/health", { headers: { ...H, "x-request-id": "bad id!" } }) as Response;
  const a = app.request("/v1/health", { headers: H }) as Response;
  assert.match(bad.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-[0-9a-z]+$/);
  assert.notEqual(a.headers.get("x-request-id"), bad.headers.get("x-request-id"));
  for (const res of [mine, bad, a]) await res.body?.cancel();
});
