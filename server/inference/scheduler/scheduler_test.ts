import assert from "node:assert/strict";
import { TabAgentError } from "../../errors/mod.ts";
import { Scheduler } from "./scheduler.ts";

function gate() {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { promise, open: () => resolve() };
}

Deno.test("interactive jobs run before background jobs queued earlier", async () => {
  const scheduler = new Scheduler({ defaultConcurrency: 1 });
  const order: string[] = [];
  const first = gate();
  const blocker = scheduler.run({ model: "m" }, async () => {
    await first.promise;
    order.push("blocker");
  });
  const background = scheduler.run({ model: "m", priority: "background" }, () => {
    order.push("background");
    return Promise.resolve();
  });
  const interactive = scheduler.run({ model: "m", priority: "interactive" }, () => {
    order.push("interactive");
    return Promise.resolve();
  });
  assert.deepEqual(scheduler.stats().queued, { interactive: 1, background: 1 });
  first.open();
  await Promise.all([blocker, background, interactive]);
  assert.deepEqual(order, ["blocker", "interactive", "background"]);
});

Deno.test("per-model concurrency: two slots run two jobs at once, the third waits", async () => {
  const scheduler = new Scheduler();
  scheduler.setConcurrency("m", 2);
  const g = gate();
  let peak = 0;
  const jobs = [1, 2, 3].map(() =>
    scheduler.run({ model: "m" }, async () => {
      peak = Math.max(peak, scheduler.runningOn("m"));
      await g.promise;
    })
  );
  await Promise.resolve();
  assert.equal(scheduler.runningOn("m"), 2);
  assert.equal(scheduler.stats().queued.interactive, 1);
  g.open();
  await Promise.all(jobs);
  assert.equal(peak, 2);
  assert.equal(scheduler.runningOn("m"), 0);
});

Deno.test("a cancelled queued job is removed and rejects with cancelled", async () => {
  const scheduler = new Scheduler();
  const g = gate();
  const blocker = scheduler.run({ model: "m" }, () => g.promise);
  const controller = new AbortController();
  let ran = false;
  const queued = scheduler.run({ model: "m", signal: controller.signal }, () => {
    ran = true;
    return Promise.resolve();
  });
  controller.abort();
  await assert.rejects(queued, (e: unknown) => e instanceof TabAgentError && e.code === "cancelled");
  g.open();
  await blocker;
  assert.equal(ran, false);
});

Deno.test("a running job's signal aborts when the caller cancels", async () => {
  const scheduler = new Scheduler();
  const controller = new AbortController();
  const job = scheduler.run(
    { model: "m", signal: controller.signal },
    ({ signal }) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("stopped")))),
  );
  controller.abort();
  await assert.rejects(job, (e: unknown) => e instanceof TabAgentError && e.code === "cancelled");
  assert.equal(scheduler.runningOn("m"), 0);
});

Deno.test("a job whose deadline passes in the queue fails with timeout", async () => {
  const scheduler = new Scheduler();
  const g = gate();
  const blocker = scheduler.run({ model: "m" }, () => g.promise);
  const late = scheduler.run({ model: "m", deadline: Date.now() + 20 }, () => Promise.resolve());
  await assert.rejects(late, (e: unknown) => e instanceof TabAgentError && e.code === "timeout");
  g.open();
  await blocker;
});

Deno.test("close refuses queued jobs and aborts running ones", async () => {
  const scheduler = new Scheduler();
  const running = scheduler.run(
    { model: "m" },
    ({ signal }) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
  );
  const queued = scheduler.run({ model: "m" }, () => Promise.resolve());
  scheduler.close();
  await assert.rejects(queued, (e: unknown) => e instanceof TabAgentError && e.code === "unavailable");
  await assert.rejects(running, (e: unknown) => e instanceof TabAgentError && e.code === "cancelled");
  await assert.rejects(scheduler.run({ model: "m" }, () => Promise.resolve()));
});
