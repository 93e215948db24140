import assert from "node:assert/strict";
import { sharedSampling, toSampling, usageOf, UsageSchema } from "./_openai.ts";

Deno.test("sharedSampling names every shared wire field as the engine does; null and absent mean unset", () => {
  assert.deepEqual(
    sharedSampling({
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      repeat_penalty: 1.1,
      seed: 7,
    }),
    {
      temperature: 0.2,
      topP: 0.9,
      topK: 40,
      minP: 0.05,
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
      repeatPenalty: 1.1,
      seed: 7,
    },
  );
  assert.deepEqual(sharedSampling({ temperature: null, seed: 0 }), {
    temperature: undefined,
    topP: undefined,
    topK: undefined,
    minP: undefined,
    presencePenalty: undefined,
    frequencyPenalty: undefined,
    repeatPenalty: undefined,
    seed: 0,
  });
});

Deno.test("toSampling adds OpenAI's stop (one or many) and the token budget", () => {
  const options = toSampling({ stop: "END", top_k: 5 }, 32);
  assert.deepEqual([options.stop, options.topK, options.maxTokens], [["END"], 5, 32]);
  assert.deepEqual(toSampling({ stop: null }).stop, undefined);
});

Deno.test("usageOf reports the prompt tokens taken from the prompt cache as OpenAI's cached_tokens", () => {
  const usage = usageOf({ promptTokens: 94, completionTokens: 32, cachedTokens: 74 });
  assert.deepEqual(usage, {
    prompt_tokens: 94,
    completion_tokens: 32,
    total_tokens: 126,
    prompt_tokens_details: { cached_tokens: 74 },
  });
  assert.deepEqual(UsageSchema.parse(usage), usage);
  // A generation that cannot say (an ML-service model) reports no details rather than a guess.
  assert.deepEqual(usageOf({ promptTokens: 5, completionTokens: 1 }), {
    prompt_tokens: 5,
    completion_tokens: 1,
    total_tokens: 6,
  });
});
