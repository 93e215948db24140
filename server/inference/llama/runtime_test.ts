import assert from "node:assert/strict";
import { createLogger } from "../../log/mod.ts";
import { LlamaTextModel } from "./model.ts";
import { createLlamaRuntime, llamaBinding } from "./runtime.ts";
import { findNativeBinding } from "./native_binding.ts";

const FIXTURES = decodeURIComponent(new URL("../../../tests/.fixtures", import.meta.url).pathname);

async function greedy(addon?: string): Promise<{ binding: string; text: string }> {
  const llama = await createLlamaRuntime({ threads: 1, gpu: false, addon });
  const model = await LlamaTextModel.load(llama, `${FIXTURES}/tiny-chat.gguf`, {
    sequences: 1,
    threads: 1,
    contextSize: 512,
    // The same attention on both (the server turns it on for the local build only): flash attention
    // rounds differently, and this model's random weights are full of near-ties.
    flashAttention: false,
  });
  try {
    const prepared = await model.prepareChat({
      messages: [{ role: "user", content: "Hello there" }],
      maxTokens: 24,
      temperature: 0,
    });
    return { binding: llamaBinding(llama), text: (await model.generateChat(prepared)).text };
  } finally {
    await model.close();
    await llama.dispose();
  }
}

Deno.test({
  name: "llama runtime: a local build that cannot load falls back to the prebuilt binding, with a warning",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "warn", sink: (line) => lines.push(line) });
    const missing = `${await Deno.makeTempDir()}/llama-addon.node`;
    const llama = await createLlamaRuntime({ threads: 1, gpu: false, addon: missing, log });
    try {
      assert.equal(llamaBinding(llama), "prebuilt");
      assert.equal(llama.gpu, false);
      const warning = lines.map((line) => JSON.parse(line)).find((r) => r.msg.includes("local llama.cpp build"));
      assert.ok(warning, lines.join("\n"));
      assert.equal(warning.addon, missing);
    } finally {
      await llama.dispose();
    }
  },
});

// Runs where setup (scripts/llama_native.ts) has built the binding: Linux with cmake, ninja and g++.
const native = await findNativeBinding();

Deno.test({
  name: "llama runtime: the binding built from the sdist loads and replies as the prebuilt one does (greedy)",
  ignore: !native,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const local = await greedy(native);
    const prebuilt = await greedy();
    assert.equal(local.binding, native);
    assert.equal(prebuilt.binding, "prebuilt");
    assert.ok(local.text.length > 0);
    assert.equal(local.text, prebuilt.text);
  },
});
