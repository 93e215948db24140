import assert from "node:assert/strict";
import { type ComponentHealth, Lifecycle } from "../lifecycle/mod.ts";
import { createLogger } from "../log/mod.ts";
import { healthRoutes } from "./health.ts";

Deno.test("health follows every change of a component, though its JSON is cached between changes", async () => {
  const quiet = createLogger({ level: "error", sink: () => {} });
  const lifecycle = new Lifecycle(quiet);
  let own: ComponentHealth = { state: "ready" };
  lifecycle.add({ name: "memory", critical: false, start: async () => {}, stop: async () => {}, health: () => own });
  lifecycle.add({ name: "http", critical: true, start: async () => {}, stop: async () => {} });
  const app = healthRoutes({ lifecycle, version: "1.2.3", mode: "http" });
  const get = async () => {
    const res = await app.request("/v1/health");
    const body = await res.json();
    return { status: res.status, overall: body.status, memory: body.components[0], body };
  };

  assert.equal((await get()).status, 503, "nothing started yet");
  await lifecycle.startAll();
  const ready = await get();
  assert.deepEqual([ready.status, ready.overall, ready.memory.state], [200, "ready", "ready"]);
  assert.deepEqual(Object.keys(ready.body), ["status", "version", "mode", "uptime_s", "components"]);
  assert.deepEqual([ready.body.version, ready.body.mode], ["1.2.3", "http"]);

  own = { state: "failed", detail: "could not reopen the stores" };
  const failed = await get();
  assert.deepEqual([failed.status, failed.overall, failed.memory.state, failed.memory.detail], [
    200,
    "degraded",
    "failed",
    "could not reopen the stores",
  ]);
  own = { state: "failed", detail: "still broken" };
  assert.equal((await get()).memory.detail, "still broken", "a new detail alone is noticed");
  own = { state: "ready" };
  assert.equal((await get()).overall, "ready");

  await lifecycle.stopAll(1000);
  const stopped = await get();
  assert.deepEqual([stopped.status, stopped.overall], [503, "stopping"]);
});
