// The HTTP side first: it extends zod with `.openapi()` before the models module builds its schemas.
import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { testHttpApp } from "./testing/http_app.ts";
import { ModelsComponent } from "../models/mod.ts";
import { modelRoutes } from "./models.ts";

const quiet = createLogger({ level: "error", sink: () => {} });
const H = { host: "127.0.0.1" };

async function withModels(
  run: (
    app: ReturnType<typeof testHttpApp>,
    models: ModelsComponent,
    unloading: PromiseWithResolvers<void>,
    unloadStarted: Promise<void>,
  ) => Promise<void>,
  hubUrl = "http://127.0.0.1:9",
) {
  const root = await Deno.makeTempDir({ prefix: "tabagent-models-http-" });
  const models = new ModelsComponent({
    modelCachePath: `${root}/models`,
    dataDir: root,
    // Nothing answers here: a pull that does start fails at once, without the internet.
    env: { HF_ENDPOINT: hubUrl },
    log: quiet,
  });
  await models.start();
  const unloading = Promise.withResolvers<void>();
  const unloadStarted = Promise.withResolvers<void>();
  const app = testHttpApp({
    log: quiet,
    routers: [modelRoutes({
      models,
      unload: () => {
        unloadStarted.resolve();
        return unloading.promise;
      },
    })],
  });
  try {
    await run(app, models, unloading, unloadStarted.promise);
  } finally {
    await models.stop();
    await Deno.remove(root, { recursive: true });
  }
}

const pull = (app: ReturnType<typeof testHttpApp>, model: string) =>
  app.request("/v1/models/pull", {
    method: "POST",
    headers: { ...H, "content-type": "application/json" },
    body: JSON.stringify({ model }),
  });

Deno.test("a pull cannot start while a delete of the same model (any case) waits for its unload", async () => {
  await withModels(async (app, models, unloading, unloadStarted) => {
    await Deno.mkdir(`${models.cache.root}/org--tiny`, { recursive: true });
    await Deno.writeTextFile(`${models.cache.root}/org--tiny/weights.gguf`, "x");
    const deleting = app.request("/v1/models/org/tiny", { method: "DELETE", headers: H });
    // The delete has checked and now awaits the unload: the gap a pull used to slip into.
    await unloadStarted;
    for (const id of ["org/tiny", "ORG/Tiny"]) {
      const refused = await pull(app, id);
      assert.equal(refused.status, 409, id);
      await refused.body?.cancel();
    }
    assert.equal(models.jobs.isPulling("org/tiny"), false);
    unloading.resolve();
    const deleted = await deleting;
    assert.equal(deleted.status, 200);
    assert.deepEqual(await deleted.json(), { id: "org/tiny", deleted: true });
    // Released: pulls start again.
    const started = await pull(app, "org/tiny");
    assert.equal(started.status, 202);
    await started.body?.cancel();
    await models.jobs.cancelAll();
  });
});

Deno.test("a delete or verify is refused while a model that differs only in case is being pulled", async () => {
  // A Hub that accepts connections and never answers keeps the pull running until it is cancelled.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    await withModels(async (app, models, unloading) => {
      unloading.resolve();
      const started = await pull(app, "org/tiny");
      assert.equal(started.status, 202);
      await started.body?.cancel();
      for (const [method, path] of [["DELETE", "/v1/models/Org/Tiny"], ["POST", "/v1/models/ORG/tiny/verify"]]) {
        const refused = await app.request(path, { method, headers: H });
        assert.equal(refused.status, 409, path);
        await refused.body?.cancel();
      }
      const twin = await pull(app, "Org/Tiny");
      assert.equal(twin.status, 409);
      await twin.body?.cancel();
      await models.jobs.cancelAll();
    }, `http://127.0.0.1:${silent.addr.port}`);
  } finally {
    silent.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("an id differing only in case from a cached model is refused, and never reads or deletes its folder", async () => {
  await withModels(async (app, models, unloading) => {
    unloading.resolve();
    await Deno.mkdir(`${models.cache.root}/Org--Tiny`, { recursive: true });
    await Deno.writeTextFile(`${models.cache.root}/Org--Tiny/weights.gguf`, "x");
    const job = models.jobs.start({ id: "org/tiny" });
    await job.done;
    assert.equal(job.progress().state, "failed");
    assert.equal((job.progress().error as { code: string }).code, "conflict");
    assert.equal(await models.cache.get("org/tiny"), null);
    const deleted = await app.request("/v1/models/org/tiny", { method: "DELETE", headers: H });
    assert.equal(deleted.status, 404);
    await deleted.body?.cancel();
    assert.ok((await Deno.stat(`${models.cache.root}/Org--Tiny/weights.gguf`)).isFile);
  });
});
