import assert from "node:assert/strict";
import type { Llama } from "node-llama-cpp";
import { TabAgentError } from "../../errors/mod.ts";
import { LlamaTextModel } from "./model.ts";
import { findNativeBinding } from "./native_binding.ts";
import { DecodePlacement } from "./placement.ts";
import { createLlamaRuntime } from "./runtime.ts";
import type { ChatMessage } from "./types.ts";

const FIXTURES = decodeURIComponent(new URL("../../../tests/.fixtures", import.meta.url).pathname);
const hello: ChatMessage[] = [{ role: "user", content: "Hello there" }];

async function withModel(fn: (model: LlamaTextModel, llama: Llama) => Promise<void>) {
  const llama = await createLlamaRuntime({ threads: 1, gpu: false });
  const model = await LlamaTextModel.load(llama, `${FIXTURES}/tiny-chat.gguf`, {
    sequences: 2,
    threads: 1,
    contextSize: 2048,
  });
  try {
    await fn(model, llama);
  } finally {
    await model.close();
    await llama.dispose();
  }
}

/** The steps of the test below, each against the same loaded model. */
const STEPS: Record<string, (model: LlamaTextModel) => Promise<void>> = {
  "streams up to max_tokens": async (model) => {
    const pieces: string[] = [];
    const prepared = await model.prepareChat({ messages: hello, maxTokens: 12, temperature: 0 });
    const result = await model.generateChat(prepared, { onText: (t) => pieces.push(t) });
    assert.equal(result.finishReason, "length");
    assert.equal(result.completionTokens, 12);
    assert.equal(pieces.join(""), result.text);
    assert.ok(result.promptTokens > 5);
  },
  "seed is deterministic": async (model) => {
    const run = async (seed: number) =>
      (await model.generateChat(await model.prepareChat({ messages: hello, maxTokens: 20, temperature: 1, seed })))
        .text;
    assert.equal(await run(7), await run(7));
    assert.notEqual(await run(7), await run(8));
  },
  "stop sequence ends the reply": async (model) => {
    const greedy = await model.generateChat(
      await model.prepareChat({ messages: hello, maxTokens: 30, temperature: 0 }),
    );
    // A letter not right after an incomplete UTF-8 sequence (U+FFFD), which a stop check holds back.
    const chars = [...greedy.text];
    const stop = chars.find((ch, i) => i >= 8 && /[a-z]/i.test(ch) && chars[i - 1] !== "\uFFFD");
    assert.ok(stop, `no letter in ${JSON.stringify(greedy.text)}`);
    const cut = await model.generateChat(
      await model.prepareChat({ messages: hello, maxTokens: 30, temperature: 0, stop: [stop] }),
    );
    assert.equal(cut.finishReason, "stop");
    assert.equal(cut.text, greedy.text.slice(0, greedy.text.indexOf(stop)));
  },
  "JSON schema output parses": async (model) => {
    const schema = {
      type: "object",
      properties: { ok: { type: "boolean" }, n: { type: "integer" } },
      required: ["ok", "n"],
    };
    const result = await model.generateChat(
      await model.prepareChat({ messages: hello, maxTokens: 200, jsonSchema: schema, seed: 1 }),
    );
    const parsed = JSON.parse(result.text);
    assert.equal(typeof parsed.ok, "boolean");
    assert.equal(Number.isInteger(parsed.n), true);
  },
  "forced tool call": async (model) => {
    const tools = [{
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"] },
    }];
    const result = await model.generateChat(
      await model.prepareChat({ messages: hello, tools, toolChoice: "required", maxTokens: 300, seed: 2 }),
    );
    assert.equal(result.finishReason, "tool_calls");
    assert.equal(result.toolCalls[0].function.name, "get_weather");
    assert.equal(typeof JSON.parse(result.toolCalls[0].function.arguments).city, "string");
  },
  "abort stops and frees the sequence": async (model) => {
    const controller = new AbortController();
    let chunks = 0;
    const result = await model.generateChat(await model.prepareChat({ messages: hello, maxTokens: 1500 }), {
      signal: controller.signal,
      onText: () => {
        if (++chunks === 5) controller.abort();
      },
    });
    assert.equal(result.aborted, true);
    assert.ok(result.completionTokens < 100);
    assert.equal(model.busySequences, 0);
  },
  "an overlong prompt or reply budget is context_overflow": async (model) => {
    await assert.rejects(
      model.prepareChat({ messages: [{ role: "user", content: "x".repeat(3000) }] }),
      (e: unknown) => e instanceof TabAgentError && e.code === "context_overflow",
    );
    await assert.rejects(
      model.prepareChat({ messages: hello, maxTokens: 5000 }),
      (e: unknown) => e instanceof TabAgentError && e.code === "context_overflow",
    );
  },
  "a plain completion stops at max_tokens": async (model) => {
    const completion = await model.generateCompletion(model.prepareCompletion("Once upon a time", { maxTokens: 8 }));
    assert.equal(completion.completionTokens, 8);
    assert.equal(completion.finishReason, "length");
  },
  "embeddings are unit vectors": async (model) => {
    const { vectors } = await model.embed(["hello", "world"]);
    assert.equal(vectors.length, 2);
    assert.ok(Math.abs(Math.hypot(...vectors[0]) - 1) < 1e-4);
  },
};

Deno.test({
  name: "llama: chat template, streaming, max_tokens, seed, stop, JSON schema, forced tool call, overflow, abort",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    withModel(async (model) => {
      assert.equal(model.chatWrapper.wrapperName, "JinjaTemplate");
      assert.equal(model.countTokens("the"), 1);
      for (const [name, step] of Object.entries(STEPS)) await t.step(name, () => step(model));
    }),
});

Deno.test({
  name: "llama: a reply places the threads while it generates: apart in the decode loop, beside in node-llama-cpp's",
  // Placement needs Linux and a second core; the decode loop, the local build.
  ignore: Deno.build.os !== "linux" || navigator.hardwareConcurrency < 2 || !await findNativeBinding(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const llama = await createLlamaRuntime({ threads: 1, gpu: false, addon: await findNativeBinding() });
    using placement = new DecodePlacement(() => 1);
    const load = (nativeDecode: boolean) =>
      LlamaTextModel.load(llama, `${FIXTURES}/tiny-chat.gguf`, { sequences: 1, threads: 1, placement, nativeDecode });
    try {
      for (const [nativeDecode, wanted] of [[true, "apart"], [false, "beside"]] as const) {
        const model = await load(nativeDecode);
        try {
          const seen = new Set<string | undefined>();
          const prepared = await model.prepareChat({ messages: hello, maxTokens: 8, temperature: 0 });
          await model.generateChat(prepared, { onText: () => seen.add(placement.pinned) });
          assert.deepEqual([...seen], [wanted]);
          assert.equal(placement.pinned, undefined, "the threads' own cores are back");
        } finally {
          await model.close();
        }
      }
    } finally {
      await llama.dispose();
    }
  },
});
