/**
 * The native decode loop (decode_loop.ts, native_reply.ts) on the real SmolLM2 and the local build:
 * its replies are node-llama-cpp's chat generator's, token for token (text, usage, finish reason),
 * greedy and seeded, with stop sequences and max tokens, one at a time and four at once; a cancelled
 * reply frees its sequence; the next turn reuses what the loop left in the cache.
 */
import assert from "node:assert/strict";
import { smollm2Path } from "../../../tests/_models.ts";
import { LlamaTextModel } from "./model.ts";
import { findNativeBinding } from "./native_binding.ts";
import { createLlamaRuntime, nativeDecodeSteps } from "./runtime.ts";
import type { ChatRequest, GenerationResult } from "./types.ts";

const addon = await findNativeBinding();

async function withModel(nativeDecode: boolean, fn: (model: LlamaTextModel) => Promise<void>) {
  const llama = await createLlamaRuntime({ threads: 2, gpu: false, addon });
  const model = await LlamaTextModel.load(llama, await smollm2Path(), {
    sequences: 4,
    promptCacheSequences: 0,
    threads: 2,
    contextSize: 1024,
    nativeDecode,
  });
  try {
    await fn(model);
  } finally {
    await model.close();
    await llama.dispose();
  }
}

const requests: ChatRequest[] = [
  { messages: [{ role: "user", content: "What is 2+2?" }], maxTokens: 40, temperature: 0 },
  { messages: [{ role: "user", content: "Write a haiku about the sea." }], maxTokens: 24, temperature: 0 },
  {
    messages: [{ role: "system", content: "You answer in French." }, { role: "user", content: "Name three colours." }],
    maxTokens: 48,
    temperature: 0,
    stop: [","],
  },
  {
    messages: [{ role: "user", content: "Tell me a story about a fox." }],
    maxTokens: 32,
    temperature: 0.9,
    topK: 50,
    topP: 0.9,
    seed: 7,
  },
  { messages: [{ role: "user", content: "List the days of the week." }], maxTokens: 64, temperature: 0, stop: ["Wed"] },
];

type Reply = Pick<GenerationResult, "text" | "finishReason" | "completionTokens" | "promptTokens"> & {
  streamed: string;
};

async function reply(model: LlamaTextModel, request: ChatRequest): Promise<Reply> {
  const prepared = await model.prepareChat(request);
  let streamed = "";
  const result = await model.generateChat(prepared, { onText: (text) => streamed += text });
  const { text, finishReason, completionTokens, promptTokens } = result;
  return { text, finishReason, completionTokens, promptTokens, streamed };
}

Deno.test({
  name: "native decode loop: replies equal node-llama-cpp's, alone and four at once; cancel frees the sequence",
  ignore: !addon,
  sanitizeResources: false,
  async fn() {
    const expected: Reply[] = [];
    await withModel(false, async (model) => {
      for (const request of requests) expected.push(await reply(model, request));
      assert.equal(model.nativeDecode, undefined);
    });
    assert.ok(expected.some((r) => r.finishReason === "length") && expected.some((r) => r.finishReason === "stop"));
    await withModel(true, async (model) => {
      for (const [i, request] of requests.entries()) {
        const got = await reply(model, request);
        assert.deepEqual(got, expected[i], `request ${i}`);
        assert.equal(got.streamed, got.text);
      }
      const before = model.nativeDecode!;
      assert.ok(before.steps > 0, JSON.stringify(before));
      // Four at once share the loop's steps; each reply is the same as alone.
      await model.clearPromptCache();
      const together = await Promise.all(requests.slice(0, 4).map((request) => reply(model, request)));
      together.forEach((got, i) => assert.deepEqual(got, expected[i], `together ${i}`));
      const after = model.nativeDecode!;
      assert.ok(after.steps - before.steps < together.reduce((n, r) => n + r.completionTokens, 0));

      // A JSON-schema reply (node-llama-cpp's generator, the loop paused meanwhile) beside plain ones.
      const schema = { type: "object", properties: { answer: { type: "number" } }, required: ["answer"] };
      const [json, plainA, plainB] = await Promise.all([
        model.generateChat(
          await model.prepareChat({ ...requests[0], maxTokens: 24, jsonSchema: schema }),
        ),
        reply(model, requests[1]),
        reply(model, requests[4]),
      ]);
      assert.equal(typeof JSON.parse(json.text).answer, "number");
      assert.deepEqual(plainA, expected[1]);
      assert.deepEqual(plainB, expected[4]);

      // A cancelled reply ends, frees its sequence, and the model answers the next request as before.
      const controller = new AbortController();
      const prepared = await model.prepareChat({ ...requests[0], maxTokens: 200 });
      const cancelled = await model.generateChat(prepared, {
        signal: controller.signal,
        onText: () => controller.abort(),
      });
      assert.equal(cancelled.aborted, true);
      assert.equal(model.busySequences, 0);
      assert.deepEqual(await reply(model, requests[1]), expected[1]);

      // The next turn of a conversation reuses the prompt and the reply the loop left in the sequence.
      const turn2: ChatRequest = {
        messages: [
          ...requests[0].messages,
          { role: "assistant", content: expected[0].text },
          { role: "user", content: "And 3+3?" },
        ],
        maxTokens: 16,
        temperature: 0,
      };
      const cachedTurn = await model.generateChat(await model.prepareChat(turn2));
      assert.ok(cachedTurn.cachedTokens! >= expected[0].promptTokens, `${cachedTurn.cachedTokens}`);
      await model.clearPromptCache();
      const freshTurn = await model.generateChat(await model.prepareChat(turn2));
      assert.equal(freshTurn.cachedTokens, 0);
      assert.equal(cachedTurn.text, freshTurn.text);
    });
  },
});

Deno.test({
  name: "native decode loop: the binding refuses malformed runs with a TypeError, and the context still serves",
  ignore: !addon,
  sanitizeResources: false,
  async fn() {
    await withModel(true, async (model) => {
      const llama = (model as unknown as { model: { _llama: Parameters<typeof nativeDecodeSteps>[0] } }).model._llama;
      const steps = nativeDecodeSteps(llama)!;
      const native = (model.context as unknown as { _ctx: unknown })._ctx;
      const ints = (...values: number[]) => Int32Array.from(values);
      const call = (overrides: Partial<Record<"positions" | "offsets" | "maxNew" | "control", Int32Array>>) =>
        steps(
          native,
          ints(0),
          overrides.positions ?? ints(0),
          Uint32Array.from([1, 2]),
          overrides.offsets ?? ints(0, 2),
          [{}],
          overrides.maxNew ?? ints(4),
          () => {},
          overrides.control ?? ints(0, 1, 0),
        );
      assert.throws(() => call({ offsets: ints(0, 3) }), TypeError); // past the inputs
      assert.throws(() => call({ offsets: ints(0) }), TypeError); // lengths differ
      assert.throws(() => call({ maxNew: ints(0) }), TypeError); // nothing to sample
      assert.throws(() => call({ control: ints(0, 0, 0) }), TypeError); // no thread count
      assert.throws(() => call({}), TypeError); // {} is no sampler
      assert.deepEqual(await reply(model, requests[0]), await reply(model, requests[0]));
    });
  },
});
