/** `--llama-threads`: the server and `tabagent doctor` use the count given and say it was set by flag. */
import assert from "node:assert/strict";
import { runCli, startServer } from "./_server.ts";

Deno.test("--llama-threads fixes llama.cpp's threads: /v1/health, /v1/system and doctor say so", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--llama-threads", "1"] });
  const health = await (await fetch(`${server.url}/v1/health`)).json();
  const inference = health.components.find((c: { name: string }) => c.name === "inference");
  assert.match(inference.detail, /llama\.cpp 1 thread\(s\), set by flag/);
  const system = await (await fetch(`${server.url}/v1/system`, { headers: server.auth })).json();
  assert.deepEqual([system.inference.backend.threads, system.inference.backend.threads_source], [1, "flag"]);

  const doctor = await runCli(["doctor", "--no-ml", "--data-dir", server.dataDir, "--llama-threads", "1"]);
  assert.match(doctor.stdout, /1 thread\(s\) for decode and prompt processing: set by flag/);
  const bad = await runCli(["doctor", "--no-ml", "--data-dir", server.dataDir, "--llama-threads", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /llamaThreads/);
});
