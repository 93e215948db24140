/// <reference lib="dom" />
/**
 * `deno task bench browser`: the side panel in real Chromium against the real server and SmolLM2.
 *
 *   panel_ttft_overhead_ms  from pressing Send to the first token painted in the panel, minus the
 *                           API's own time to first token for the same request, measured in the same
 *                           run (goal ≤ 50 ms); median of ROUNDS paired rounds
 *   panel_ttft_ms, api_ttft_ms  the two sides
 * @module
 */
import { builtExtension, CHAT_MODEL, chatModelCache, launchExtensionBrowser } from "../_browser.ts";
import { waitForServerRecord } from "../_native.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const ROUNDS = 7;
const QUESTION = "What is the capital of France? Answer in one sentence.";
const MAX_TOKENS = 8;

async function apiTtft(url: string, auth: Record<string, string>): Promise<number> {
  const began = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({
      model: CHAT_MODEL,
      messages: [{ role: "user", content: QUESTION }],
      stream: true,
      max_tokens: MAX_TOKENS,
      temperature: 0,
    }),
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let first = 0;
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    if (!first && /"content":"[^"]/.test(text)) first = performance.now();
  }
  return first - began;
}

export default async function (ctx: BenchContext): Promise<void> {
  await using extension = await builtExtension();
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-bench-browser-" });
  await using models = await chatModelCache();
  await using server = await startServer({
    args: ["--mode", "all", "--no-ml", "--model-cache-path", models.path],
    dataDir,
  });
  await waitForServerRecord(dataDir);
  await using browser = await launchExtensionBrowser({ extensionDir: extension.dir, dataDir });
  const panel = await browser.openPanel();
  await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 60_000 });
  await panel.click("#settings-toggle");
  await panel.fill("#set-temperature", "0");
  await panel.fill("#set-max-tokens", String(MAX_TOKENS));
  await panel.click("#settings-form button[type=submit]");
  await panel.locator("#settings").waitFor({ state: "hidden" });
  await apiTtft(server.url, server.auth); // loads the model
  const panelTimes: number[] = [];
  const apiTimes: number[] = [];
  const overheads: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await panel.click("#new-chat");
    await panel.fill("#prompt", QUESTION);
    const before = await panel.locator(".message.assistant").count();
    await panel.click("#send");
    await panel.locator(".message.assistant").nth(before).and(panel.locator(":not(.streaming)")).waitFor({
      timeout: 60_000,
    });
    const panelMs = await panel.evaluate(() => {
      const send = performance.getEntriesByName("tabagent:send")[0];
      const first = performance.getEntriesByName("tabagent:first-token")[0];
      return first.startTime - send.startTime;
    });
    const apiMs = await apiTtft(server.url, server.auth);
    panelTimes.push(panelMs);
    apiTimes.push(apiMs);
    overheads.push(panelMs - apiMs);
    ctx.note(`round ${round + 1}/${ROUNDS}: panel ${panelMs.toFixed(1)} ms, api ${apiMs.toFixed(1)} ms`);
  }
  ctx.report("panel_ttft_ms", percentile(panelTimes, 50), "ms");
  ctx.report("api_ttft_ms", percentile(apiTimes, 50), "ms");
  ctx.report("panel_ttft_overhead_ms", percentile(overheads, 50), "ms");
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
