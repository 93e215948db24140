/**
 * Prompt-cache reuse and batched sequences on the real SmolLM2: greedy replies are the same whether
 * the prefix comes from the cache or is processed again, whether requests decode together or one
 * by one, after an eviction, and after a cancelled request.
 */
import assert from "node:assert/strict";
import { smollm2Path } from "../../../tests/_models.ts";
import { LlamaTextModel } from "./model.ts";
import { findNativeBinding } from "./native_binding.ts";
import { createLlamaRuntime } from "./runtime.ts";
import type { ChatMessage } from "./types.ts";

const TOKENS = 12;

async function withSmolLM2(
  options: { sequences: number; promptCacheSequences: number; addon?: string },
  fn: (model: LlamaTextModel) => Promise<void>,
) {
  const llama = await createLlamaRuntime({ threads: 1, gpu: false, addon: options.addon });
  const model = await LlamaTextModel.load(llama, await smollm2Path(), { ...options, threads: 1, contextSize: 1024 });
  try {
    await fn(model);
  } finally {
    await model.close();
    await llama.dispose();
  }
}

async function greedy(model: LlamaTextModel, messages: ChatMessage[], signal?: AbortSignal, onText?: () => void) {
  const prepared = await model.prepareChat({ messages, maxTokens: TOKENS, temperature: 0 });
  return await model.generateChat(prepared, { signal, onText });
}

// A long first message, so that the next turn has much to reuse.
const first: ChatMessage[] = [{
  role: "user",
  content: "Hi! My name is Ada. I live by the sea in a small town with a harbour, a lighthouse and a market " +
    "where fishermen sell what they caught in the morning. I like to walk along the beach at sunset.",
}];
const next = (reply: string): ChatMessage[] => [
  ...first,
  { role: "assistant", content: reply },
  { role: "user", content: "Tell me one fact about it." },
];

/**
 * Greedy replies are the same with the prefix from the cache and processed again, on the prebuilt
 * binding (flash attention off, replies evaluated again before they are kept) and on the local build
 * (flash attention on, computed row by row, so replies are kept as generated).
 */
async function nextTurnIsExact(model: LlamaTextModel) {
  const turn1 = await greedy(model, first);
  const before = model.promptCache;
  // Sent at once: with the prebuilt binding the reply is not evaluated again yet, so it goes through
  // the model with the new turn; the local build kept it as generated.
  const cached = await greedy(model, next(turn1.text));
  const after = model.promptCache;
  assert.equal(after.hits, before.hits + 1);
  // The first turn's whole prompt (and, where kept, its reply) was not processed again, and the usage says so.
  const reused = model.keepsReplyState ? cached.cachedTokens! - turn1.promptTokens : 0;
  if (model.keepsReplyState) assert.ok(reused >= turn1.completionTokens - 1, `${cached.cachedTokens}`);
  assert.equal(cached.cachedTokens, turn1.promptTokens + reused);
  assert.equal(after.reusedTokens - before.reusedTokens, cached.cachedTokens, JSON.stringify(after));

  // Sent once the model had time to evaluate the reply again: only the new message is processed.
  await model.clearPromptCache();
  const turn1Again = await greedy(model, first);
  await model.refillPromptCache();
  const refilled = await greedy(model, next(turn1Again.text));
  assert.ok(refilled.cachedTokens! > turn1.promptTokens + 1, `${refilled.cachedTokens}`);

  await model.clearPromptCache();
  const fresh = await greedy(model, next(turn1.text));
  assert.equal(fresh.cachedTokens, 0);
  assert.equal(model.promptCache.hits, after.hits + 1, "a cleared cache cannot hit");
  assert.equal(cached.text, fresh.text);
  assert.equal(refilled.text, fresh.text);
  assert.ok(fresh.text.length > 0);

  // A conversation where keeping the reply's generated tokens as they were would change the reply.
  const short: ChatMessage[] = [{ role: "user", content: "Hi! My name is Ada. I like the sea." }];
  const again = (reply: string): ChatMessage[] => [
    ...short,
    { role: "assistant", content: reply },
    { role: "user", content: "Tell me one fact about it." },
  ];
  const shortReply = (await greedy(model, short)).text;
  const shortCached = await greedy(model, again(shortReply));
  await model.clearPromptCache();
  await greedy(model, short);
  await model.refillPromptCache();
  const shortRefilled = await greedy(model, again(shortReply));
  await model.clearPromptCache();
  const shortFresh = (await greedy(model, again(shortReply))).text;
  assert.equal(shortCached.text, shortFresh);
  assert.equal(shortRefilled.text, shortFresh);
}

for (const binding of ["prebuilt", "local build"] as const) {
  Deno.test({
    name: `prompt cache (${binding}): a next turn reuses the prefix and answers exactly as without the cache`,
    ignore: binding === "local build" && !await findNativeBinding(),
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const addon = binding === "local build" ? await findNativeBinding() : undefined;
      await withSmolLM2({ sequences: 2, promptCacheSequences: 1, addon }, nextTurnIsExact);
    },
  });
}

Deno.test({
  name: "prompt cache: an evicted conversation still answers correctly; a cancelled request frees its sequence",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withSmolLM2({ sequences: 1, promptCacheSequences: 0 }, async (model) => {
      const turn1 = await greedy(model, first);
      const expected = await greedy(model, next(turn1.text));
      // Another conversation takes the only sequence: the first one's state is gone.
      await greedy(model, [{ role: "system", content: "Answer in French." }, { role: "user", content: "Bonjour" }]);
      assert.equal(model.promptCache.evictions, 1);
      assert.equal((await greedy(model, next(turn1.text))).text, expected.text);

      const controller = new AbortController();
      let chunks = 0;
      const cancelled = await greedy(
        model,
        [{ role: "user", content: "Count from one to fifty." }],
        controller.signal,
        () => {
          if (++chunks === 2) controller.abort();
        },
      );
      assert.equal(cancelled.aborted, true);
      assert.equal(model.busySequences, 0);
      // The one sequence serves the next request, which answers as it did before.
      assert.equal((await greedy(model, next(turn1.text))).text, expected.text);
    }),
});

Deno.test({
  name: "prompt cache (prebuilt): when every sequence holds a conversation, a prompt takes the one it shares most with",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withSmolLM2({ sequences: 2, promptCacheSequences: 0 }, async (model) => {
      const system: ChatMessage = {
        role: "system",
        content: "You are a ship's cook on a long voyage. You answer every question about food in two short " +
          "sentences, you mention the weather at sea, and you never use lists or headings.",
      };
      await greedy(model, [{ role: "user", content: "Name a color." }]); // the least recently used
      const long = await greedy(model, [system, {
        role: "user",
        content: "We sailed from Lisbon three weeks ago, the hold is full of flour, salted fish, onions, dried " +
          "beans and a barrel of olives, and the crew is tired of porridge. What is for breakfast tomorrow?",
      }]);
      const asked: ChatMessage[] = [system, { role: "user", content: "Is there any fruit left?" }];
      const before = model.promptCache;
      const reply = await greedy(model, asked);
      const after = model.promptCache;
      // Less than half of that conversation is shared, but both sequences hold one: the cook's gives its
      // place and its instruction is not evaluated again; the other conversation stays.
      assert.equal(after.hits, before.hits + 1, JSON.stringify(after));
      assert.equal(after.evictions, before.evictions);
      assert.ok(reply.cachedTokens! >= 40 && reply.cachedTokens! < long.promptTokens, `${reply.cachedTokens}`);
      await model.clearPromptCache();
      const fresh = await greedy(model, asked);
      assert.equal(fresh.cachedTokens, 0);
      assert.equal(reply.text, fresh.text);
    }),
});

Deno.test({
  name: "prompt cache (local build): a new conversation starts from a copy of a shared prefix, exactly",
  ignore: !await findNativeBinding(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () =>
    await withSmolLM2({ sequences: 2, promptCacheSequences: 2, addon: await findNativeBinding() }, async (model) => {
      // Conversations with one long instruction in common, as an app's system prompt is.
      const system: ChatMessage = {
        role: "system",
        content: "You are a ship's cook on a long voyage. You answer every question about food in two short " +
          "sentences, you mention the weather at sea, and you never use lists or headings.",
      };
      const asking = (question: string): ChatMessage[] => [system, { role: "user", content: question }];
      const questions = ["What do we eat tonight?", "How do you keep bread fresh?", "Is there any fruit left?"];
      const breakfast = asking(
        "We sailed from Lisbon three weeks ago, the hold is full of flour, salted fish, onions, dried beans " +
          "and a barrel of olives, and the crew is tired of porridge. What is for breakfast tomorrow?",
      );
      const breakfastReply = await greedy(model, breakfast);
      const copied = [];
      for (const question of questions) copied.push(await greedy(model, asking(question)));
      const stats = model.promptCache;
      assert.equal(stats.prefixCopies, questions.length, JSON.stringify(stats));
      // Each started after the shared instruction: only its own question was evaluated.
      for (const reply of copied) assert.ok(reply.cachedTokens! >= 40, `${reply.cachedTokens}`);
      // The conversation copied from still continues where it was (its state was not touched).
      const hits = model.promptCache.hits;
      const later = await greedy(model, [
        ...breakfast,
        { role: "assistant", content: breakfastReply.text },
        { role: "user", content: "And for lunch?" },
      ]);
      assert.equal(model.promptCache.hits, hits + 1);
      assert.ok(later.cachedTokens! > breakfastReply.promptTokens, `${later.cachedTokens}`);
      const before = model.promptCache.hits;
      for (const [i, question] of questions.entries()) {
        await model.clearPromptCache();
        const fresh = await greedy(model, asking(question));
        assert.equal(fresh.cachedTokens, 0);
        assert.equal(copied[i].text, fresh.text, question);
      }
      assert.equal(model.promptCache.hits, before);
    }),
});

/** The bindings here: node-llama-cpp's prebuilt, and the local build when setup made one (the server's choice). */
const bindings = [{ name: "prebuilt", addon: undefined as string | undefined }];
{
  const local = await findNativeBinding();
  if (local) bindings.push({ name: "local build", addon: local });
}

for (const binding of bindings) {
  Deno.test({
    // In lockstep, 3 sequences sample from every batch at once: this caught replies taking tokens from
    // another sequence's logits while llama.cpp put the batch's outputs in order (orderOutputsOnce).
    name: `batched sequences (${binding.name}): replies decoded together equal replies decoded one by one`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () =>
      withSmolLM2({ sequences: 3, promptCacheSequences: 0, addon: binding.addon }, async (model) => {
        const prompts: ChatMessage[][] = [
          [{ role: "user", content: "What is the capital of France?" }],
          [{ role: "user", content: "Name a color." }],
          [{ role: "system", content: "You are a poet." }, { role: "user", content: "Write about rain." }],
        ];
        const stepsBefore = model.nativeDecode?.steps ?? 0;
        const together = await Promise.all(prompts.map((p) => greedy(model, p)));
        const sharedSteps = (model.nativeDecode?.steps ?? 0) - stepsBefore;
        assert.equal(model.busySequences, 0);
        const alone: string[] = [];
        for (const p of prompts) {
          await model.clearPromptCache();
          alone.push((await greedy(model, p)).text);
        }
        assert.deepEqual(together.map((r) => r.text), alone);
        assert.ok(alone.every((text) => text.length > 0));
        if (model.nativeDecode) {
          // The local build's native loop: one step samples for every running reply.
          const sampled = together.reduce((n, r) => n + r.completionTokens, 0);
          assert.ok(sharedSteps > 0 && sharedSteps < sampled, `${sharedSteps} steps for ${sampled} tokens`);
        } else assert.ok(model.lockstepBatches > 0, "concurrent replies decode in lockstep");
        assert.deepEqual(
          model.batchingHooks,
          { lockstep: true, orderedOutputs: true },
          "node-llama-cpp 3.21.1 has what they wrap",
        );
      }),
  });
}
