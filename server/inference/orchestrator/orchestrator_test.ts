import assert from "node:assert/strict";
import { FIXTURE_MODELS, fixtureModelCache } from "../../../tests/_models.ts";
import { TabAgentError } from "../../errors/mod.ts";
import { detectHardware } from "../../hardware/mod.ts";
import { createLogger } from "../../log/mod.ts";
import { Scheduler } from "../scheduler/mod.ts";
import { parseKeepAlive } from "./keep_alive.ts";
import { ModelCache } from "../../models/mod.ts";
import { ModelOrchestrator } from "./orchestrator.ts";

/** Settles when the orchestrator logs that it unloaded a model, by model id: tests wait on it, not on time. */
const unloads = new Map<string, PromiseWithResolvers<void>>();
const unloaded = (id: string) => {
  if (!unloads.has(id)) unloads.set(id, Promise.withResolvers<void>());
  return unloads.get(id)!;
};
const log = createLogger({
  level: "info",
  sink: (line) => {
    const record = JSON.parse(line);
    if (record.msg === "model unloaded") unloaded(record.model).resolve();
    if (record.level === "error") console.error(line);
  },
});

/** An orchestrator over the fixture cache with a small context; `options` override the rest. */
function orchestratorFor(
  cachePath: string,
  hardware: Awaited<ReturnType<typeof detectHardware>>,
  options: { sequencesPerModel: number; memoryBudgetBytes?: number },
): ModelOrchestrator {
  return new ModelOrchestrator({
    models: new ModelCache(cachePath),
    hardware,
    scheduler: new Scheduler(),
    log,
    contextSize: 512,
    ...options,
  });
}

Deno.test("parseKeepAlive reads Ollama's forms", () => {
  assert.equal(parseKeepAlive(undefined), 5 * 60_000);
  assert.equal(parseKeepAlive("10m"), 600_000);
  assert.equal(parseKeepAlive("1h30m"), 5_400_000);
  assert.equal(parseKeepAlive("500ms"), 500);
  assert.equal(parseKeepAlive(30), 30_000);
  assert.equal(parseKeepAlive("0"), 0);
  assert.equal(parseKeepAlive(-1), Infinity);
  assert.equal(parseKeepAlive("-1m"), Infinity);
  assert.throws(
    () => parseKeepAlive("soon"),
    (e: unknown) => e instanceof TabAgentError && e.code === "validation_failed",
  );
});

Deno.test({
  name: "orchestrator: load → ready, keep_alive 0 unloads, LRU eviction under a small budget, status",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using cache = await fixtureModelCache();
    const hardware = await detectHardware();
    const orchestrator = orchestratorFor(cache.path, hardware, { sequencesPerModel: 2 });
    await orchestrator.start();
    try {
      const chat = await orchestrator.acquire(FIXTURE_MODELS.chat);
      assert.equal(orchestrator.isLoaded(FIXTURE_MODELS.chat), true);
      const status = orchestrator.status().models[0];
      assert.equal(status.state, "ready");
      assert.equal(status.active_requests, 1);
      assert.deepEqual(status.sequences, { total: 2, busy: 0 });
      const prepared = await chat.llama!.prepareChat({ messages: [{ role: "user", content: "hi" }], maxTokens: 4 });
      const result = await chat.run({}, (lease) => chat.llama!.generateChat(prepared, { signal: lease.signal }));
      assert.equal(result.completionTokens, 4);
      chat.release();
      assert.ok(orchestrator.status().models[0].expires_at);

      // keep_alive 0: unloaded right after release.
      const onnx = await orchestrator.acquire(FIXTURE_MODELS.embedOnnx, { keepAliveMs: 0 });
      assert.equal(onnx.format, "onnx");
      const { vectors } = await onnx.run({}, () => onnx.onnx!.embed(["hello"]));
      assert.equal(vectors[0].length, 32);
      onnx.release();
      await unloaded(FIXTURE_MODELS.embedOnnx).promise;
      assert.equal(orchestrator.isLoaded(FIXTURE_MODELS.embedOnnx), false);

      await assert.rejects(
        orchestrator.acquire("nobody/nothing"),
        (e: unknown) => e instanceof TabAgentError && e.code === "not_found",
      );
    } finally {
      await orchestrator.stop();
    }

    // A budget that holds one model: loading the second evicts the least recently used.
    const used = orchestrator.status().memory_in_use_bytes;
    assert.equal(used, 0);
    const small = orchestratorFor(cache.path, hardware, { sequencesPerModel: 1 });
    await small.start();
    try {
      const first = await small.acquire(FIXTURE_MODELS.chat);
      first.release();
      const one = small.status().memory_in_use_bytes;
      const tight = orchestratorFor(cache.path, hardware, {
        sequencesPerModel: 1,
        memoryBudgetBytes: Math.floor(one * 1.5),
      });
      await tight.start();
      try {
        (await tight.acquire(FIXTURE_MODELS.chat)).release();
        (await tight.acquire(FIXTURE_MODELS.embedGguf)).release();
        assert.equal(tight.isLoaded(FIXTURE_MODELS.chat), false);
        assert.equal(tight.isLoaded(FIXTURE_MODELS.embedGguf), true);
        // A busy model is never evicted: the new load is refused instead.
        const busy = await tight.acquire(FIXTURE_MODELS.embedGguf);
        await assert.rejects(
          tight.acquire(FIXTURE_MODELS.chat),
          (e: unknown) => e instanceof TabAgentError && e.code === "unavailable",
        );
        busy.release();
      } finally {
        await tight.stop();
      }
    } finally {
      await small.stop();
    }
  },
});

Deno.test({
  name: "orchestrator: a model in use is not unloaded for deletion; an idle one is",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using cache = await fixtureModelCache();
    const orchestrator = orchestratorFor(cache.path, await detectHardware(), { sequencesPerModel: 1 });
    await orchestrator.start();
    try {
      const handle = await orchestrator.acquire(FIXTURE_MODELS.chat);
      await assert.rejects(
        orchestrator.unloadForDelete(FIXTURE_MODELS.chat),
        (e: unknown) => e instanceof TabAgentError && e.code === "conflict",
      );
      assert.equal(orchestrator.isLoaded(FIXTURE_MODELS.chat), true);
      handle.release();
      await orchestrator.unloadForDelete(FIXTURE_MODELS.chat);
      assert.equal(orchestrator.isLoaded(FIXTURE_MODELS.chat), false);
      await orchestrator.unloadForDelete(FIXTURE_MODELS.embedGguf); // never loaded: nothing to do
    } finally {
      await orchestrator.stop();
    }
  },
});

Deno.test({
  name: "orchestrator: llama.cpp's threads follow the machine's load per request; replies stay the same",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using cache = await fixtureModelCache();
    const hardware = await detectHardware();
    const machine = { load: 0, cpu: 0, now: 0 };
    const orchestrator = new ModelOrchestrator({
      models: new ModelCache(cache.path),
      hardware,
      scheduler: new Scheduler(),
      log,
      contextSize: 512,
      sequencesPerModel: 1,
      loadProbe: { load: () => machine.load, cpuSeconds: () => machine.cpu, now: () => machine.now },
    });
    await orchestrator.start();
    const reply = async () => {
      machine.now += 10;
      const chat = await orchestrator.acquire(FIXTURE_MODELS.chat);
      try {
        const prepared = await chat.llama!.prepareChat({
          messages: [{ role: "user", content: "hi" }],
          maxTokens: 6,
          temperature: 0,
        });
        const result = await chat.run({}, (lease) => chat.llama!.generateChat(prepared, { signal: lease.signal }));
        return { text: result.text, threads: chat.llama!.context.currentThreads };
      } finally {
        chat.release();
      }
    };
    try {
      // A lone decode step may run on fewer threads than the cap when that measured faster
      // (decode_threads.ts); the prompt and everything else run on the cap.
      const idle = await reply();
      const most = orchestrator.status().backend.threads;
      const tuned = new Set([most, Math.ceil(most / 2)]);
      assert.ok(tuned.has(idle.threads), `${idle.threads} of ${most}`);
      machine.load = 10_000; // other work arrives, more than any machine has cores
      const busy = await reply();
      assert.deepEqual([busy.threads, busy.text], [1, idle.text]);
      assert.match(orchestrator.status().backend.threads_reason, /busy/);
      assert.equal(orchestrator.status().backend.threads_source, "policy");
      machine.load = 0; // and goes away: the loaded model gets its threads back
      const again = await reply();
      assert.equal(again.text, idle.text);
      assert.ok(tuned.has(again.threads), `${again.threads} of ${most}`);
      assert.equal(orchestrator.status().backend.threads, most);
      assert.match(orchestrator.health().detail!, new RegExp(`llama.cpp ${most} thread\\(s\\), by policy`));
    } finally {
      await orchestrator.stop();
    }

    const fixed = new ModelOrchestrator({
      models: new ModelCache(cache.path),
      hardware,
      scheduler: new Scheduler(),
      log,
      llamaThreads: 1,
    });
    await fixed.start();
    try {
      assert.deepEqual([fixed.status().backend.threads, fixed.status().backend.threads_source], [1, "flag"]);
      assert.match(fixed.health().detail!, /llama\.cpp 1 thread\(s\), set by flag/);
    } finally {
      await fixed.stop();
    }
  },
});
