import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { type Component, Lifecycle } from "./mod.ts";

const quiet = createLogger({ level: "error", sink: () => {} });

function recorder(events: string[], name: string, options: Partial<Component> & { failStart?: boolean } = {}) {
  return {
    name,
    critical: options.critical ?? true,
    start: () => {
      events.push(`start ${name}`);
      return options.failStart ? Promise.reject(new Error(`${name} broke`)) : Promise.resolve();
    },
    stop: () => {
      events.push(`stop ${name}`);
      return Promise.resolve();
    },
    health: options.health,
  } satisfies Component;
}

Deno.test("components start in order and stop in reverse", async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(quiet);
  lifecycle.add(recorder(events, "a"));
  lifecycle.add(recorder(events, "b"));
  assert.deepEqual(lifecycle.overall(), "starting");
  await lifecycle.startAll();
  assert.deepEqual(lifecycle.overall(), "ready");
  await lifecycle.stopAll(1000);
  assert.deepEqual(events, ["start a", "start b", "stop b", "stop a"]);
  assert.deepEqual(lifecycle.statuses().map((s) => s.state), ["stopped", "stopped"]);
});

Deno.test("a critical failure stops what started and rethrows", async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(quiet);
  lifecycle.add(recorder(events, "a"));
  lifecycle.add(recorder(events, "b", { failStart: true }));
  lifecycle.add(recorder(events, "c"));
  await assert.rejects(lifecycle.startAll(), /b broke/);
  assert.deepEqual(events, ["start a", "start b", "stop a"]);
});

Deno.test("a non-critical failure leaves the server degraded", async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(quiet);
  lifecycle.add(recorder(events, "a"));
  lifecycle.add(recorder(events, "ml", { critical: false, failStart: true }));
  await lifecycle.startAll();
  assert.deepEqual(lifecycle.overall(), "degraded");
  const ml = lifecycle.statuses().find((s) => s.name === "ml");
  assert.deepEqual([ml?.state, ml?.detail], ["failed", "ml broke"]);
});

Deno.test("a component's own health is reported once started", async () => {
  const lifecycle = new Lifecycle(quiet);
  lifecycle.add(recorder([], "ml", { critical: false, health: () => ({ state: "starting", detail: "loading" }) }));
  await lifecycle.startAll();
  assert.deepEqual(lifecycle.overall(), "starting");
  assert.deepEqual(lifecycle.statuses()[0].detail, "loading");
});

Deno.test("a component that hangs in stop is given up on after the grace period", async () => {
  const lifecycle = new Lifecycle(quiet);
  lifecycle.add({ name: "slow", critical: true, start: () => Promise.resolve(), stop: () => new Promise(() => {}) });
  await lifecycle.startAll();
  await lifecycle.stopAll(50);
  assert.deepEqual(lifecycle.statuses()[0].state, "failed");
});
