/**
 * The `chat` suite's baseline in a process of its own, started like the server (same Deno, V8
 * flags and niceness): node-llama-cpp called directly, with the server's binding (the local build
 * when setup made one), model, context, sequence pool and thread count. Reads one JSON request a line on stdin (`{"messages","maxTokens"}`) and
 * answers each with one JSON line on stdout: time to first token and decode rate, timed here.
 *
 *   deno run -A tests/bench/_direct_chat.ts <model.gguf> <threads> <sequences> <prompt-cache sequences>
 * @module
 */
import { z } from "zod";
import { chooseLlamaBinding, createLlamaRuntime, LlamaTextModel } from "../../server/inference/llama/mod.ts";

const [path, threads, sequences, promptCacheSequences] = Deno.args;
const requestSchema = z.object({
  messages: z.array(z.object({ role: z.literal("user"), content: z.string() })),
  maxTokens: z.number().int().min(2),
});

const { addon } = await chooseLlamaBinding(Deno.env.get("TABAGENT_LLAMA_ADDON"));
const llama = await createLlamaRuntime({ threads: Number(threads), gpu: false, addon });
const model = await LlamaTextModel.load(llama, path, {
  sequences: Number(sequences),
  promptCacheSequences: Number(promptCacheSequences),
  threads: Number(threads),
});
const encoder = new TextEncoder();
const write = (value: unknown) => Deno.stdout.write(encoder.encode(JSON.stringify(value) + "\n"));
await write({ ready: true });

let buffer = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buffer += chunk;
  let end: number;
  while ((end = buffer.indexOf("\n")) !== -1) {
    const request = requestSchema.parse(JSON.parse(buffer.slice(0, end)));
    buffer = buffer.slice(end + 1);
    const began = performance.now();
    let first = 0;
    // The streamed pieces, as an HTTP client sees them (the final text can differ in whitespace).
    let text = "";
    const prepared = await model.prepareChat({ ...request, temperature: 0 });
    const result = await model.generateChat(prepared, {
      onText: (piece) => {
        first ||= performance.now();
        text += piece;
      },
    });
    const done = performance.now();
    await write({
      ttftMs: first - began,
      tokensPerS: (result.completionTokens - 1) / ((done - first) / 1000),
      tokens: result.completionTokens,
      text,
    });
  }
}
await model.close();
await llama.dispose();
