/** The kept tokenizer answers as SmolLM2's own does, piece by piece and for a whole chat prompt. */
import assert from "node:assert/strict";
import { LlamaText, SpecialTokensText, type Tokenizer } from "node-llama-cpp";
import { smollm2Path } from "../../../tests/_models.ts";
import { createLlamaRuntime } from "./runtime.ts";
import { CACHED_PIECE_MAX_CHARS, cachedTokenizer } from "./tokenizer_cache.ts";

Deno.test("tokenizer cache: the same tokens as the model's tokenizer, each answer a copy, the least recent piece evicted", async () => {
  const llama = await createLlamaRuntime({ threads: 1, gpu: false });
  const model = await llama.loadModel({ modelPath: await smollm2Path(), vocabOnly: true });
  try {
    const pieces: string[] = [];
    const counted = Object.assign((text: string, special?: boolean, options?: "trimLeadingSpace") => {
      pieces.push(text);
      return model.tokenizer(text, special, options);
    }, {
      detokenize: model.tokenizer.detokenize,
      isSpecialToken: model.tokenizer.isSpecialToken,
      isEogToken: model.tokenizer.isEogToken,
    }) as Tokenizer;
    const tokenize = cachedTokenizer(counted, 2);
    const cases: [string, boolean, "trimLeadingSpace" | undefined][] = [
      ["<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n", true, undefined],
      ["<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n", false, undefined],
      [" What is 2+2?", false, "trimLeadingSpace"],
      [" What is 2+2?", false, undefined],
      ["héllo wörld 🙂", true, "trimLeadingSpace"],
    ];
    for (const [text, special, options] of cases) {
      assert.deepEqual(tokenize(text, special, options), model.tokenizer(text, special, options), text);
    }
    assert.equal(pieces.length, cases.length, "each distinct piece went to the tokenizer once");

    // a kept answer: no call, and the caller's changes to its copy do not reach the next caller
    const first = tokenize(" What is 2+2?", false, undefined);
    first.length = 0;
    assert.deepEqual(tokenize(" What is 2+2?", false, undefined), model.tokenizer(" What is 2+2?"));
    assert.equal(pieces.length, cases.length);
    // capacity 2: the least recently used of the five is gone, the two latest are kept
    tokenize(cases[0][0], cases[0][1], cases[0][2]);
    assert.equal(pieces.length, cases.length + 1);
    // a piece over the limit is never kept
    const long = "word ".repeat(CACHED_PIECE_MAX_CHARS / 5 + 1);
    tokenize(long);
    tokenize(long);
    assert.equal(pieces.length, cases.length + 3);

    // a whole chat prompt, special-token pieces and text between them, as the chat wrappers tokenize it
    const prompt = LlamaText([
      new SpecialTokensText("<|im_start|>user\n"),
      "What is 3+2?",
      new SpecialTokensText("<|im_end|>\n<|im_start|>assistant\n"),
    ]);
    const fresh = cachedTokenizer(model.tokenizer, 8);
    assert.deepEqual(prompt.tokenize(fresh), prompt.tokenize(model.tokenizer));
    assert.deepEqual(prompt.tokenize(fresh), prompt.tokenize(model.tokenizer), "again, from the kept pieces");
  } finally {
    await model.dispose();
    await llama.dispose();
  }
});
