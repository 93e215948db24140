import assert from "node:assert/strict";
import { MetricsRegistry } from "../metrics/mod.ts";
import { testHttpApp } from "./testing/http_app.ts";

const TOKEN = "t".repeat(40);

function makeApp(metrics: MetricsRegistry) {
  return testHttpApp({
    config: { maxBodyBytes: 1024, requestTimeoutMs: 1000 },
    metrics,
    token: TOKEN,
  });
}

Deno.test("invented methods and unmatched paths share one metrics label, with or without the token", async () => {
  const metrics = new MetricsRegistry();
  const app = makeApp(metrics);
  const before = metrics.render().split("\n").length;
  for (let i = 0; i < 50; i++) {
    await (await app.request(`/x${i}`, { method: `FOO${i}`, headers: { host: "127.0.0.1" } })).body?.cancel();
    await (await app.request(`/v1/x${i}`, { method: `BAR${i}`, headers: { host: "evil.example" } })).body?.cancel();
    await (await app.request(`/v1/health`, { method: `BAZ${i}`, headers: { host: "127.0.0.1" } })).body?.cancel();
    await (await app.request(`/nothing/${i}`, { headers: { host: "127.0.0.1" } })).body?.cancel();
  }
  const text = metrics.render();
  assert.ok(!/FOO|BAR|BAZ|\/x\d|\/nothing/.test(text), "no invented method or path in a label");
  assert.ok(/tabagent_http_requests_total\{method="other",route="other",status="\d+"\} \d+/.test(text));
  // A handful of series (other×statuses, GET×other×404), not one per request.
  const growth = text.split("\n").length - before;
  assert.ok(growth < 80, `metrics grew by ${growth} lines`);
  assert.equal(metrics.render().split("\n").length, text.split("\n").length);
});
