import { deepEqual as assertEquals, equal, ok } from "node:assert/strict";
// The HTTP side first: it extends zod with `.openapi()` before the models module builds its schemas.
import { createHttpApp } from "./mod.ts";
import { Lifecycle } from "../lifecycle/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { ModelsComponent } from "../models/mod.ts";
import { modelRoutes } from "./models.ts";

const quiet = createLogger({ level: "error", sink: () => {} });
const H = { host: "127.0.0.1" };

async function withModels(
  run: (
    app: ReturnType<typeof createHttpApp>,
    models: ModelsComponent,
    unloading: PromiseWithResolvers<void>,
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
  const app = createHttpApp({
    config: {
      host: "127.0.0.1",
      allowedHosts: [],
      allowedOrigins: [],
      maxBodyBytes: 1 << 20,
      requestTimeoutMs: 60_000,
      mode: "http",
      staticDir: "/nonexistent",
    },
    version: "test",
    log: quiet,
    lifecycle: new Lifecycle(quiet),
    metrics: new MetricsRegistry(),
    token: null,
    routers: [modelRoutes({ models, unload: () => unloading.promise })],
    nodeModules: new URL("../../node_modules/", import.meta.url),
  });
  try {
    await run(app, models, unloading);
  } finally {
    await models.stop();
    await Deno.remove(root, { recursive: true });
  }
}

const pull = (app: ReturnType<typeof createHttpApp>, model: string) =>
  app.request("/v1/models/pull", {
    method: "POST",
    headers: { ...H, "content-type": "application/json" },
    body: JSON.stringify({ model }),
  });

Deno.test("a pull cannot start while a delete of the same model (any case) waits for its unload", async () => {
  await withModels(async (app, models, unloading) => {
    await Deno.mkdir(`${models.cache.root}/org--tiny`, { recursive: true });
    await Deno.writeTextFile(`${models.cache.root}/org--tiny/weights.gguf`, "x");
    const deleting = app.request("/v1/models/org/tiny", { method: "DELETE", headers: H });
    // The delete has checked and now awaits the unload: the gap a pull used to slip into.
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (const id of ["org/tiny", "ORG/Tiny"]) {
      const refused = await pull(app, id);
      equal(refused.status, 409, id);
      await refused.body?.cancel();
    }
    equal(models.jobs.isPulling("org/tiny"), false);
    unloading.resolve();
    const deleted = await deleting;
    equal(deleted.status, 200);
    assertEquals(await deleted.json(), { id: "org/tiny", deleted: true });
    // Released: pulls start again.
    const started = await pull(app, "org/tiny");
    equal(started.status, 202);
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
      equal(started.status, 202);
      await started.body?.cancel();
      for (const [method, path] of [["DELETE", "/v1/models/Org/Tiny"], ["POST", "/v1/models/ORG/tiny/verify"]]) {
        const refused = await app.request(path, { method, headers: H });
        equal(refused.status, 409, path);
        await refused.body?.cancel();
      }
      const twin = await pull(app, "Org/Tiny");
      equal(twin.status, 409);
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
    equal(job.progress().state, "failed");
    equal((job.progress().error as { code: string }).code, "conflict");
    equal(await models.cache.get("org/tiny"), null);
    const deleted = await app.request("/v1/models/org/tiny", { method: "DELETE", headers: H });
    equal(deleted.status, 404);
    await deleted.body?.cancel();
    ok((await Deno.stat(`${models.cache.root}/Org--Tiny/weights.gguf`)).isFile);
  });
});
