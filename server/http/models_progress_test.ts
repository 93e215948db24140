/** The pull-progress SSE stream against a real pull from the loopback Hub stub. */
import assert from "node:assert/strict";
import { pseudoRandomBytes, startHubStub } from "../../tests/hub_stub/mod.ts";
import { createLogger } from "../log/mod.ts";
import { ModelsComponent } from "../models/mod.ts";
import { modelRoutes } from "./models.ts";

const SIZE = 2 * 1024 * 1024;

Deno.test("a client that stops reading pull progress is owed only the latest snapshot, not every update", async () => {
  await using hub = await startHubStub({
    repos: [{
      id: "org/slow-GGUF",
      files: [{ path: "slow-q4_k_m.gguf", content: pseudoRandomBytes(SIZE, 7), lfs: true }],
    }],
  });
  hub.faults.bytesPerSecond = 1024 * 1024; // one connection: about two seconds, several progress updates
  const dir = await Deno.makeTempDir({ prefix: "tabagent-progress-" });
  const models = new ModelsComponent({
    modelCachePath: `${dir}/models`,
    dataDir: dir,
    env: { HF_ENDPOINT: hub.hubUrl },
    log: createLogger({ level: "error", sink: () => {} }),
  });
  try {
    await models.start();
    const router = modelRoutes({ models });
    const job = models.jobs.start({ id: "org/slow-GGUF", connections: 1 });
    let updates = 0;
    job.subscribe(() => updates++);
    const response = await router.request(`/v1/models/pull/${job.id}`, { headers: { accept: "text/event-stream" } });
    assert.equal(response.status, 200);
    await job.done; // the client reads nothing while the pull runs
    assert.ok(updates >= 3, `the pull reported ${updates} times`);
    const events = (await response.text()).split("\n\n").filter((block) => block.trim());
    assert.ok(events.length <= 2, `${events.length} events were queued for a client that read none`);
    assert.ok(events.at(-1)!.startsWith("event: done"), events.at(-1));
    // Reading the progress twice changes nothing.
    assert.deepEqual(job.progress(), job.progress());
  } finally {
    await models.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
