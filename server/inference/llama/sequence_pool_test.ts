/**
 * Why the pool evaluates a reply again and never evaluates a lone token on a cached prefix, measured
 * on the real SmolLM2: llama.cpp gives bit-identical next-token probabilities for every split of a
 * text into batches of two or more tokens, and, at some positions (which ones depends on the CPU),
 * different ones for a token evaluated alone (how generated tokens are evaluated).
 */
import assert from "node:assert/strict";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { smollm2Path } from "../../../tests/_models.ts";
import { createLlamaRuntime } from "./runtime.ts";
import { findNativeBinding } from "./native_binding.ts";
import { LlamaTextModel } from "./model.ts";
import {
  evaluatesLoneTokensAsBatches,
  MIN_EVALUATED_TOKENS,
  REFILL_BATCH_TOKENS,
  refillBatchSize,
} from "./sequence_pool.ts";
import type { ChatMessage } from "./types.ts";

Deno.test("refill batches never evaluate a lone token nor leave one over", () => {
  assert.equal(refillBatchSize(0), 0);
  assert.equal(refillBatchSize(1), 0);
  assert.equal(refillBatchSize(2), 2);
  assert.equal(refillBatchSize(REFILL_BATCH_TOKENS), REFILL_BATCH_TOKENS);
  assert.equal(refillBatchSize(REFILL_BATCH_TOKENS + 1), REFILL_BATCH_TOKENS - 1);
  assert.equal(refillBatchSize(REFILL_BATCH_TOKENS + 2), REFILL_BATCH_TOKENS);
  for (let pending = 2; pending < 100; pending++) {
    let left = pending;
    while (left > 0) {
      const batch = refillBatchSize(left);
      assert.ok(batch >= MIN_EVALUATED_TOKENS && batch <= REFILL_BATCH_TOKENS, `${pending}: ${batch}`);
      left -= batch;
    }
  }
});

/** The top next-token probabilities after evaluating `chunks` one after the other on a cleared sequence. */
async function topAfter(sequence: LlamaContextSequence, chunks: Token[][]): Promise<[Token, number][]> {
  await sequence.clearHistory();
  let probabilities: Map<Token, number> | undefined;
  for (const chunk of chunks) {
    const out = await sequence.controlledEvaluate(
      chunk.map((token, i) => i === chunk.length - 1 ? [token, { generateNext: { probabilities: true } }] : token),
    );
    probabilities = out[chunk.length - 1]?.next?.probabilities;
  }
  return [...probabilities!.entries()].slice(0, 5);
}

Deno.test({
  name: "llama.cpp: batches of two or more tokens evaluate alike, whatever the split",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const llama = await createLlamaRuntime({ threads: 1, gpu: false });
    const model = await llama.loadModel({ modelPath: await smollm2Path() });
    const context = await model.createContext({ contextSize: 256, threads: 1, flashAttention: false });
    try {
      const sequence = context.getSequence();
      const prompt = model.tokenize(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
          "<|im_start|>user\nHi! My name is Ada. I like the sea.<|im_end|>\n<|im_start|>assistant\n",
        true,
      );
      // The model's greedy reply to it, as generated one token at a time.
      const reply = model.tokenize("Hello, I'm Ada, and welcome to the world of the sea.", false);
      const text = [...prompt, ...reply];
      const whole = await topAfter(sequence, [text]);
      const pairs = Array.from({ length: Math.ceil(text.length / 2) }, (_, i) => text.slice(2 * i, 2 * i + 2));
      if (pairs.at(-1)!.length === 1) pairs.splice(-2, 2, text.slice(-3));
      assert.deepEqual(await topAfter(sequence, pairs), whole, "in pairs");
      for (const end of [prompt.length + 2, prompt.length + 9]) {
        const tokens = text.slice(0, end);
        const all = await topAfter(sequence, [tokens]);
        assert.deepEqual(await topAfter(sequence, [tokens.slice(0, -2), tokens.slice(-2)]), all, `last two, ${end}`);
      }
      // A lone token is not compared here: whether it differs at a given position depends on the
      // CPU's kernels (on an AVX2 EPYC it matched at both of these). The probe test below asserts
      // that one differs on its text, which is what makes the refill necessary.
    } finally {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    }
  },
});

Deno.test({
  name: "prompt cache: a repeated prompt evaluates its last two tokens again, and answers as a fresh one",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const llama = await createLlamaRuntime({ threads: 1, gpu: false });
    const model = await LlamaTextModel.load(llama, await smollm2Path(), {
      sequences: 1,
      threads: 1,
      contextSize: 512,
    });
    try {
      const prepared = await model.prepareChat({
        messages: [{ role: "user", content: "Why is the sky blue?" }],
        maxTokens: 12,
        temperature: 0,
      });
      const fresh = await model.generateChat(prepared);
      const again = await model.generateChat(prepared);
      assert.equal(again.cachedTokens, prepared.promptTokens - MIN_EVALUATED_TOKENS);
      assert.equal(again.text, fresh.text);
      assert.ok(fresh.text.length > 0);
    } finally {
      await model.close();
      await llama.dispose();
    }
  },
});

Deno.test({
  name: "the probe finds that the prebuilt binding evaluates a lone token unlike a batch, and frees its sequence",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const llama = await createLlamaRuntime({ threads: 1, gpu: false });
    const model = await LlamaTextModel.load(llama, await smollm2Path(), { sequences: 1, threads: 1, contextSize: 256 });
    try {
      // Prebuilt: not probed, known to differ on some CPUs' kernels; the probe finds it here.
      assert.equal(model.keepsReplyState, false);
      const tokens = model.model.tokenize(
        "The harbour was quiet that morning. Fishermen sold what they caught, gulls circled the lighthouse, " +
          "and a girl named Ada walked along the beach, counting the boats: one, two, three.",
        false,
      );
      const sequence = model.context.getSequence();
      assert.equal(await evaluatesLoneTokensAsBatches(sequence, tokens), false);
      assert.equal(sequence.nextTokenIndex, 0);
    } finally {
      await model.close();
      await llama.dispose();
    }
  },
});

// The local build setup makes (scripts/llama_native.ts, GGML_LLAMAFILE=OFF) evaluates a lone token as
// a batch; TABAGENT_LLAMA_ADDON names another build.
const addon = Deno.env.get("TABAGENT_LLAMA_ADDON") ?? await findNativeBinding();

Deno.test({
  name: "prompt cache with a local build: a next turn on the kept reply answers exactly as a fresh evaluation",
  ignore: !addon,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const llama = await createLlamaRuntime({ threads: 1, gpu: false, addon });
    const model = await LlamaTextModel.load(llama, await smollm2Path(), {
      sequences: 1,
      threads: 1,
      contextSize: 1024,
    });
    try {
      const ask = async (messages: ChatMessage[]) =>
        await model.generateChat(await model.prepareChat({ messages, maxTokens: 24, temperature: 0 }));
      const first: ChatMessage[] = [{ role: "user", content: "Hi! My name is Ada. I like the sea." }];
      const turn1 = await ask(first);
      const conversation: ChatMessage[] = [
        ...first,
        { role: "assistant", content: turn1.text },
        { role: "user", content: "Tell me one fact about it." },
      ];
      const kept = await ask(conversation);
      await model.clearPromptCache();
      const fresh = await ask(conversation);
      assert.equal(fresh.cachedTokens, 0);
      assert.equal(kept.text, fresh.text);
      assert.ok(fresh.text.length > 0);
      // setup's own build (not one named by TABAGENT_LLAMA_ADDON) is made to keep replies
      if (!Deno.env.get("TABAGENT_LLAMA_ADDON") || Deno.env.get("TABAGENT_EXPECT_KEPT_REPLIES")) {
        assert.equal(model.keepsReplyState, true);
      }
      if (model.keepsReplyState) {
        // Only the new message (and the reply's last, never evaluated, token) went through the model.
        assert.ok(kept.cachedTokens! >= turn1.promptTokens + turn1.completionTokens - 1, `${kept.cachedTokens}`);
      }
    } finally {
      await model.close();
      await llama.dispose();
    }
  },
});
