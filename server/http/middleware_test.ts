import { equal, ok } from "node:assert/strict";
import { Lifecycle } from "../lifecycle/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { createHttpApp } from "./mod.ts";

const TOKEN = "t".repeat(40);
const quiet = createLogger({ level: "error", sink: () => {} });

function makeApp(metrics: MetricsRegistry) {
  return createHttpApp({
    config: {
      host: "127.0.0.1",
      allowedHosts: [],
      allowedOrigins: [],
      maxBodyBytes: 1024,
      requestTimeoutMs: 1000,
      mode: "http",
      staticDir: "/nonexistent",
    },
    version: "test",
    log: quiet,
    lifecycle: new Lifecycle(quiet),
    metrics,
    token: TOKEN,
    nodeModules: new URL("../../node_modules/", import.meta.url),
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
  ok(!/FOO|BAR|BAZ|\/x\d|\/nothing/.test(text), "no invented method or path in a label");
  ok(/tabagent_http_requests_total\{method="other",route="other",status="\d+"\} \d+/.test(text));
  // A handful of series (other×statuses, GET×other×404), not one per request.
  const growth = text.split("\n").length - before;
  ok(growth < 80, `metrics grew by ${growth} lines`);
  equal(metrics.render().split("\n").length, text.split("\n").length);
});
