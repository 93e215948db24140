/** `POST /v1/tokenize` against the real server and the real SmolLM2 model: the model's own token counts. */
import assert from "node:assert/strict";
import { CHAT_MODEL, chatModelCache } from "./_browser.ts";
import { startServer } from "./_server.ts";

Deno.test({
  name: "tokenize counts with the model's tokenizer and reports its context size",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using models = await chatModelCache();
    await using server = await startServer({
      args: ["--mode", "http", "--no-ml", "--model-cache-path", models.path],
    });
    const post = (body: unknown) =>
      fetch(`${server.url}/v1/tokenize`, {
        method: "POST",
        headers: { ...server.auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const response = await post({ model: CHAT_MODEL, input: ["Hello", "Hello world, how are you today?", ""] });
    assert.equal(response.status, 200);
    const result = await response.json() as { counts: number[]; context_size: number };
    assert.equal(result.counts.length, 3);
    assert.ok(result.counts[0] >= 1 && result.counts[1] > result.counts[0]);
    assert.equal(result.counts[2], 0);
    assert.ok(result.context_size >= 2048);
    const missing = await post({ model: "nobody/nothing", input: "x" });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const bad = await post({ model: CHAT_MODEL });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  },
});
