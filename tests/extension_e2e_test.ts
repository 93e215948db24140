/// <reference lib="dom" />
/**
 * The extension in real Chromium against the real server and the real SmolLM2 model: zero-config
 * pairing through native messaging, a streamed answer, memory, inert model output, the "server not
 * running" and "host not installed" states, the web app from the printed pairing link, axe-core,
 * and screenshots in tests/artifacts/.
 */
import assert from "node:assert/strict";
import type { Dialog, Page } from "playwright-core";
import {
  ARTIFACTS_DIR,
  axeViolations,
  builtExtension,
  CHAT_MODEL,
  chatModelCache,
  launchExtensionBrowser,
} from "./_browser.ts";
import { waitForServerRecord } from "./_native.ts";
import { startServer } from "./_server.ts";

// The GGUF's own chat template (no default system prompt) makes the bare question wander on SmolLM2-135M.
const QUESTION = "What is the capital of France? Answer in one sentence.";

async function configure(
  page: Page,
  values: { temperature?: string; maxTokens?: string; autoStart?: boolean; relayOnly?: boolean },
) {
  await page.click("#settings-toggle");
  if (values.temperature !== undefined) await page.fill("#set-temperature", values.temperature);
  if (values.maxTokens !== undefined) await page.fill("#set-max-tokens", values.maxTokens);
  if (values.autoStart !== undefined) await page.setChecked("#set-autostart", values.autoStart);
  if (values.relayOnly !== undefined) await page.setChecked("#set-relay", values.relayOnly);
  await page.click("#settings-form button[type=submit]");
  // The drawer closes once the settings are stored: later steps (a reload) must see them.
  await page.locator("#settings").waitFor({ state: "hidden" });
}

async function askAndWait(page: Page, question: string): Promise<{ text: string; sawStreaming: boolean }> {
  await page.fill("#prompt", question);
  const before = await page.locator(".message.assistant").count();
  await page.click("#send");
  // The reply bubble is marked streaming while tokens arrive; it is there before the answer ends.
  const streaming = page.locator(".message.assistant.streaming");
  const sawStreaming = await streaming.waitFor({ timeout: 60_000 }).then(() => true, () => false);
  await page.locator(".message.assistant").nth(before).and(page.locator(":not(.streaming)")).waitFor({
    timeout: 120_000,
  });
  const text = await page.locator(".message.assistant").nth(before).innerText();
  return { text, sawStreaming };
}

/** Runs a step's body; on failure saves a screenshot and the panel's text to tests/artifacts/ first. */
async function diagnosed(page: Page, name: string, body: () => Promise<void>) {
  try {
    await body();
  } catch (error) {
    await saveScreenshot(page, `failed-${name}`).catch(() => {});
    const text = await page.locator("body").innerText().catch(() => "");
    throw new Error(`${(error as Error).message}\n--- panel text ---\n${text.slice(0, 3000)}`, { cause: error });
  }
}

async function saveScreenshot(page: Page, name: string) {
  await Deno.mkdir(ARTIFACTS_DIR, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS_DIR}/${name}.png` });
}

Deno.test({
  name: "extension: pairs with no manual step, streams a real answer, keeps it in memory, renders output inert",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using extension = await builtExtension();
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-e2e-" });
    await using models = await chatModelCache();
    const server = await startServer({
      args: ["--mode", "all", "--no-ml", "--model-cache-path", models.path, "--static-dir", extension.dir],
      dataDir,
    });
    await waitForServerRecord(dataDir);
    await using browser = await launchExtensionBrowser({ extensionDir: extension.dir, dataDir });
    const api = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${server.url}${path}`, {
        ...init,
        headers: { ...server.auth, "content-type": "application/json", ...init.headers },
      });
      assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
      return await response.json();
    };
    try {
      let panel!: Page;
      await t.step("the panel pairs through the native host with no manual step", async () => {
        panel = await browser.openPanel();
        await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 60_000 });
        await panel.locator(`#model option[value="${CHAT_MODEL}"]`).waitFor({ state: "attached" });
        assert.equal(await panel.inputValue("#model"), CHAT_MODEL);
      });

      await t.step("a question gets a streamed answer containing Paris", async () => {
        await configure(panel, { temperature: "0", maxTokens: "40" });
        const { text, sawStreaming } = await askAndWait(panel, QUESTION);
        assert.ok(sawStreaming, "the reply was shown while streaming");
        assert.match(text, /Paris/);
        const marks = await panel.evaluate(() => performance.getEntriesByType("mark").map((m) => m.name));
        assert.ok(marks.includes("tabagent:first-token"), "a first token was painted before the end");
      });

      await t.step("the conversation is in memory and still listed after a reload", async () => {
        const list = await api("/v1/memory/conversations") as { items: { id: string; title: string }[] };
        assert.equal(list.items.length, 1);
        assert.equal(list.items[0].title, QUESTION);
        const messages = await api(`/v1/memory/conversations/${list.items[0].id}/messages`) as {
          items: { role: string; content: string }[];
        };
        assert.deepEqual(messages.items.map((m) => m.role), ["user", "assistant"]);
        assert.match(messages.items[1].content, /Paris/);
        await panel.reload();
        await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
        await panel.click("#history-toggle");
        await panel.locator("#history-list li", { hasText: QUESTION }).waitFor({ timeout: 10_000 });
        await panel.locator("#history-list .history-open", { hasText: QUESTION }).click();
        await panel.locator(".message.assistant", { hasText: "Paris" }).waitFor();
      });

      await t.step("stored HTML and script in messages render inert", async () => {
        const conversation = await api("/v1/memory/conversations", {
          method: "POST",
          body: JSON.stringify({ title: "xss probe" }),
        }) as { id: string };
        const payload = '<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=2;alert(2)</script>' +
          '<a href="javascript:alert(3)">link</a>';
        await api(`/v1/memory/conversations/${conversation.id}/messages`, {
          method: "POST",
          body: JSON.stringify({
            messages: [{ role: "user", content: payload }, { role: "assistant", content: `Here: ${payload}` }],
          }),
        });
        let dialogs = 0;
        const onDialog = (dialog: Dialog) => {
          dialogs++;
          dialog.dismiss();
        };
        panel.on("dialog", onDialog);
        await panel.click("#new-chat");
        await panel.click("#history-toggle");
        await panel.locator("#history-list .history-open", { hasText: "xss probe" }).click();
        await panel.locator(".message.assistant", { hasText: "Here:" }).waitFor();
        const found = await panel.evaluate(() => ({
          xss: (globalThis as { __xss?: unknown }).__xss ?? null,
          images: document.querySelectorAll("#messages img").length,
          scripts: document.querySelectorAll("#messages script").length,
          handlers: [...document.querySelectorAll("#messages *")].filter((e) =>
            [...e.attributes].some((a) =>
              a.name.startsWith("on")
            )
          ).length,
          jsLinks: [...document.querySelectorAll("#messages a")].filter((a) =>
            (a.getAttribute("href") ?? "").startsWith("javascript:")
          ).length,
          userText: document.querySelector(".message.user")?.textContent ?? "",
        }));
        assert.deepEqual(
          { xss: found.xss, images: found.images, scripts: found.scripts, handlers: found.handlers, js: found.jsLinks },
          { xss: null, images: 0, scripts: 0, handlers: 0, js: 0 },
        );
        assert.ok(found.userText.includes("<img src=x"), "the user's text is shown as text");
        assert.equal(dialogs, 0);
        panel.off("dialog", onDialog);
      });

      await t.step(
        "ask about this page: the whole page when it fits, the relevant passages when it does not",
        () =>
          diagnosed(panel, "page", async () => {
            const filler = Array.from(
              { length: 400 },
              (_, i) =>
                `<p>Paragraph ${i} describes the weather, the markets and the roads of a quiet coastal region in some detail, ` +
                `with nothing remarkable to report on day ${i}.</p>`,
            ).join("");
            const pages: Record<string, string> = {
              "/short": "<html><head><title>France facts</title></head><body><article><h1>France</h1>" +
                "<p>The capital of France is Paris. It lies on the Seine.</p></article></body></html>",
              "/long": "<html><head><title>Coast almanac</title></head><body><article><h1>Almanac</h1>" +
                filler.slice(0, filler.length / 2) +
                "<p>The harbour master of Veldmoor is named Ottilie Brandt.</p>" + filler.slice(filler.length / 2) +
                "</article></body></html>",
            };
            await using site = Deno.serve(
              { hostname: "127.0.0.1", port: 0, onListen: () => {} },
              (request) =>
                new Response(pages[new URL(request.url).pathname] ?? "not found", {
                  headers: { "content-type": "text/html; charset=utf-8" },
                }),
            );
            const article = await browser.context.newPage();
            await article.goto(`http://127.0.0.1:${site.addr.port}/short`);
            await panel.bringToFront();
            await panel.click("#new-chat");
            await panel.click("#ask-page");
            await panel.locator("#page-status", { hasText: "France facts" }).waitFor();
            const short = await askAndWait(panel, "What is the capital of France according to this page?");
            assert.match(short.text, /Paris/);
            assert.match(await panel.locator("#included").innerText(), /whole page \(\d+ tokens\)/);

            await article.goto(`http://127.0.0.1:${site.addr.port}/long`);
            await panel.bringToFront();
            await panel.click("#ask-page"); // off
            await panel.click("#ask-page"); // on again, for the new page
            await panel.locator("#page-status", { hasText: "Coast almanac" }).waitFor();
            await askAndWait(panel, "Who is the harbour master of Veldmoor?");
            assert.match(await panel.locator("#included").innerText(), /too long for this model .* passages chosen/);
            assert.match(await panel.locator("#page-included").textContent() ?? "", /Ottilie Brandt/);
            await panel.click("#ask-page"); // off for the rest
            await article.close();
          }),
      );

      await t.step(
        "axe-core finds no serious or critical violations in the panel; light and dark screenshots",
        async () => {
          await panel.click("#new-chat");
          const { text } = await askAndWait(panel, QUESTION);
          assert.match(text, /Paris/);
          await panel.emulateMedia({ colorScheme: "light" });
          assert.deepEqual(await axeViolations(panel), []);
          await saveScreenshot(panel, "panel-light");
          await panel.emulateMedia({ colorScheme: "dark" });
          assert.deepEqual(await axeViolations(panel), []);
          await saveScreenshot(panel, "panel-dark");
          await panel.emulateMedia({ colorScheme: "light" });
        },
      );

      await t.step("the web app at / works from the printed pairing link", async () => {
        const ready = server.logs.map((line) => {
          try {
            return JSON.parse(line);
          } catch {
            return {};
          }
        }).find((record) => record.msg === "ready");
        assert.ok(ready?.pairing_url, "serve printed a pairing link");
        assert.match(ready.pairing_url, /\/#token=/);
        const web = await browser.context.newPage();
        await web.setViewportSize({ width: 1000, height: 720 });
        await web.goto(ready.pairing_url);
        await web.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
        assert.ok(!web.url().includes("token"), "the token is stripped from the address bar");
        assert.equal(await web.evaluate(() => sessionStorage.getItem("tabagent.token")), server.token);
        await configure(web, { temperature: "0", maxTokens: "40" });
        const { text } = await askAndWait(web, QUESTION);
        assert.match(text, /Paris/);
        assert.deepEqual(await axeViolations(web), []);
        await saveScreenshot(web, "web-app");
        // Without the fragment and a fresh tab, there is no token: the page says how to pair.
        const bare = await browser.context.newPage();
        await bare.goto(`${server.url}/`);
        await bare.locator('#status[data-state="unpaired"]').waitFor({ timeout: 30_000 });
        await bare.close();
        await web.close();
      });

      await t.step(
        "stop, Enter to send, Markdown export, context-menu prompts, rename, search and delete",
        async () => {
          await diagnosed(panel, "controls", async () => {
            await panel.click("#new-chat");
            await configure(panel, { maxTokens: "400" });
            await panel.fill("#prompt", "Write a long story about a lighthouse keeper.");
            await panel.press("#prompt", "Enter");
            await panel.locator(".message.assistant.streaming .body p").first().waitFor({ timeout: 60_000 });
            await panel.click("#stop");
            await panel.locator(".message.assistant .stopped").waitFor();
            assert.equal(await panel.isDisabled("#send"), false);
            await configure(panel, { maxTokens: "40" });

            const [download] = await Promise.all([panel.waitForEvent("download"), panel.click("#export")]);
            assert.match(download.suggestedFilename(), /^write-a-long-story.*\.md$/);
            const markdown = await Deno.readTextFile(await download.path());
            assert.match(markdown, /^# Write a long story about a lighthouse keeper\./);
            assert.match(markdown, /## You\n\nWrite a long story/);

            // What a right-click on selected text queues for the panel (the service worker writes it).
            await panel.evaluate(() =>
              (globalThis as unknown as { chrome: { storage: { session: { set(v: unknown): Promise<void> } } } }).chrome
                .storage.session.set({ pendingPrompt: { text: "Explain this:\n\nphotosynthesis", send: false } })
            );
            await panel.waitForFunction(() =>
              (document.querySelector("#prompt") as HTMLTextAreaElement).value.includes("photosynthesis")
            );
            await panel.fill("#prompt", "");

            await panel.click("#history-toggle");
            panel.once("dialog", (dialog) => dialog.accept("Renamed chat"));
            await panel.locator("#history-list li", { hasText: QUESTION }).first().locator("button", {
              hasText: "Rename",
            })
              .click();
            await panel.locator("#history-list li", { hasText: "Renamed chat" }).waitFor();
            await panel.fill("#history-search", "Paris");
            await panel.locator("#history-list .history-open", { hasText: "Paris" }).first().waitFor();
            await panel.fill("#history-search", "");
            await panel.locator("#history-list li", { hasText: "xss probe" }).waitFor();
            panel.once("dialog", (dialog) => dialog.accept());
            await panel.locator("#history-list li", { hasText: "xss probe" }).locator("button", { hasText: "Delete" })
              .click();
            await panel.locator("#history-list li", { hasText: "xss probe" }).waitFor({ state: "detached" });
            const list = await api("/v1/memory/conversations") as { items: { title: string }[] };
            assert.ok(!list.items.some((c) => c.title === "xss probe"));
            assert.ok(list.items.some((c) => c.title === "Renamed chat"));
            await panel.keyboard.press("Escape");
          });
        },
      );

      await t.step("where fetch to loopback is blocked, chat streams through the native relay", async () => {
        await configure(panel, { relayOnly: true });
        await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
        await panel.click("#new-chat");
        const { text, sawStreaming } = await askAndWait(panel, QUESTION);
        assert.ok(sawStreaming);
        assert.match(text, /Paris/);
        await configure(panel, { relayOnly: false });
        // Reconnecting starts a new host; let it finish before the server goes away.
        await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
      });

      await t.step("with the server stopped, the panel says so and gives the command", async () => {
        await diagnosed(panel, "stopped", async () => {
          await configure(panel, { autoStart: false });
          assert.equal(await server.stop(), 0);
          await panel.click("#new-chat");
          await panel.reload();
          await panel.locator('#status[data-state="server_down"]').waitFor({ timeout: 30_000 });
          assert.match(await panel.locator("#status").innerText(), /not running[\s\S]*tabagent serve/);
        });
      });

      await t.step("with the host not installed, the panel shows the install command", async () => {
        await diagnosed(panel, "no-host", async () => {
          await browser.installHost(true);
          await panel.click("#status .retry");
          await panel.locator('#status[data-state="host_missing"]').waitFor({ timeout: 30_000 });
          assert.match(await panel.locator("#status").innerText(), /tabagent install-host/);
        });
      });

      await t.step("onboarding shows the install command, then notices the host by itself", async () => {
        const onboarding = await browser.context.newPage();
        await onboarding.goto(`chrome-extension://${browser.extensionId}/onboarding.html`);
        await onboarding.locator('#pairing[data-state="host_missing"]').waitFor({ timeout: 30_000 });
        assert.match(await onboarding.locator("#pairing").innerText(), /tabagent install-host/);
        assert.deepEqual(await axeViolations(onboarding), []);
        await browser.installHost();
        // The server is still stopped and auto-start is off: the page moves on to saying so.
        await onboarding.locator('#pairing[data-state="server_down"]').waitFor({ timeout: 30_000 });
        assert.match(await onboarding.locator("#pairing").innerText(), /tabagent serve/);
        await onboarding.close();
      });
    } finally {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
