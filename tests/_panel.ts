/// <reference lib="dom" />
/**
 * Steps the browser tests take in the panel as a user would: change settings, ask and wait for
 * the streamed answer, serve a few web pages to read, and keep a screenshot when a step fails.
 *
 * @example
 * ```ts
 * await configure(panel, { temperature: "0", maxTokens: "40" });
 * const { text } = await askAndWait(panel, "What is the capital of France?");
 * ```
 * @module
 */
import type { Page } from "playwright-core";
import { ARTIFACTS_DIR } from "./_browser.ts";

/** The GGUF's own chat template (no default system prompt) makes the bare question wander on SmolLM2-135M. */
export const QUESTION = "What is the capital of France? Answer in one sentence.";

/** Opens the settings drawer, changes what is given, saves, and waits for the drawer to close. */
export async function configure(
  page: Page,
  values: { temperature?: string; maxTokens?: string; autoStart?: boolean; relayOnly?: boolean },
): Promise<void> {
  await page.click("#settings-toggle");
  if (values.temperature !== undefined) await page.fill("#set-temperature", values.temperature);
  if (values.maxTokens !== undefined) await page.fill("#set-max-tokens", values.maxTokens);
  if (values.autoStart !== undefined) await page.setChecked("#set-autostart", values.autoStart);
  if (values.relayOnly !== undefined) await page.setChecked("#set-relay", values.relayOnly);
  await page.click("#settings-form button[type=submit]");
  // The drawer closes once the settings are stored: later steps (a reload) must see them.
  await page.locator("#settings").waitFor({ state: "hidden" });
}

/**
 * Waits for the answer bubble at index `index` to finish streaming; returns its text and whether
 * it was seen while still streaming.
 */
export async function waitForAnswer(page: Page, index: number): Promise<{ text: string; sawStreaming: boolean }> {
  // The reply bubble is marked streaming while tokens arrive; it is there before the answer ends.
  const streaming = page.locator(".message.assistant.streaming");
  const sawStreaming = await streaming.waitFor({ timeout: 60_000 }).then(() => true, () => false);
  const answer = page.locator(".message.assistant").nth(index);
  await answer.and(page.locator(":not(.streaming)")).waitFor({ timeout: 120_000 });
  return { text: await answer.innerText(), sawStreaming };
}

/** Types `question`, presses Send and waits for the whole streamed answer. */
export async function askAndWait(page: Page, question: string): Promise<{ text: string; sawStreaming: boolean }> {
  await page.fill("#prompt", question);
  const before = await page.locator(".message.assistant").count();
  await page.click("#send");
  return await waitForAnswer(page, before);
}

/** Saves a screenshot of `page` as tests/artifacts/NAME.png. */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(ARTIFACTS_DIR, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS_DIR}/${name}.png` });
}

/** Runs a step's body; on failure saves a screenshot and the panel's text to tests/artifacts/ first. */
export async function diagnosed(page: Page, name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    await saveScreenshot(page, `failed-${name}`).catch(() => {});
    const text = await page.locator("body").innerText().catch(() => "");
    throw new Error(`${(error as Error).message}\n--- panel text ---\n${text.slice(0, 3000)}`, { cause: error });
  }
}

/** A loopback web site serving `pages` (path → HTML), as the pages a user reads. */
export function servePages(pages: Record<string, string>): { url: (path: string) => string } & AsyncDisposable {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new Response(pages[new URL(request.url).pathname] ?? "not found", {
        status: pages[new URL(request.url).pathname] ? 200 : 404,
        headers: { "content-type": "text/html; charset=utf-8" },
      }),
  );
  return {
    url: (path) => `http://127.0.0.1:${server.addr.port}${path}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A short article the page tests read. */
export const FRANCE_PAGE = "<html><head><title>France facts</title></head><body><article><h1>France</h1>" +
  "<p>The capital of France is Paris. It lies on the Seine.</p></article></body></html>";

/** A page far longer than SmolLM2's context, with one telling sentence in the middle. */
export function almanacPage(): string {
  const filler = Array.from(
    { length: 400 },
    (_, i) =>
      `<p>Paragraph ${i} describes the weather, the markets and the roads of a quiet coastal region in some detail, ` +
      `with nothing remarkable to report on day ${i}.</p>`,
  ).join("");
  return "<html><head><title>Coast almanac</title></head><body><article><h1>Almanac</h1>" +
    filler.slice(0, filler.length / 2) +
    "<p>The harbour master of Veldmoor is named Ottilie Brandt.</p>" + filler.slice(filler.length / 2) +
    "</article></body></html>";
}
