/// <reference lib="dom" />
/**
 * The extension in real Chromium against the real server and the real SmolLM2 model: zero-config
 * pairing through native messaging, a streamed answer, memory, inert model output, the "server not
 * running" and "host not installed" states, the web app from the printed pairing link, axe-core,
 * and screenshots in tests/artifacts/.
 */
import assert from "node:assert/strict";
import type { Dialog, Page } from "playwright-core";
import { axeViolations, builtExtension, CHAT_MODEL, chatModelCache, launchExtensionBrowser } from "./_browser.ts";
import { waitForServerRecord } from "./_native.ts";
import {
  almanacPage,
  askAndWait,
  configure,
  diagnosed,
  FRANCE_PAGE,
  QUESTION,
  saveScreenshot,
  servePages,
} from "./_panel.ts";
import { startServer } from "./_server.ts";

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
            await using site = servePages({ "/short": FRANCE_PAGE, "/long": almanacPage() });
            const article = await browser.context.newPage();
            await article.goto(site.url("/short"));
            await panel.bringToFront();
            await panel.click("#new-chat");
            await panel.click("#ask-page");
            await panel.locator("#page-status", { hasText: "France facts" }).waitFor();
            const short = await askAndWait(panel, "What is the capital of France according to this page?");
            assert.match(short.text, /Paris/);
            assert.match(await panel.locator("#included").innerText(), /whole page \(\d+ tokens\)/);

            await article.goto(site.url("/long"));
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
        "stop, Enter to send, Markdown export, rename, search and delete",
        async () => {
          await diagnosed(panel, "controls", async () => {
            await panel.click("#new-chat");
            await configure(panel, { maxTokens: "400" });
            // A long, steady reply, so Stop always lands mid-stream.
            await panel.fill("#prompt", "Count from 1 to 500, one number per line.");
            // Stop is pressed from inside the page the moment the first token shows, so it lands mid-stream
            // however fast or slow the model is.
            const stopped = panel.evaluate(() =>
              new Promise<void>((resolve) => {
                const tryStop = () => {
                  const body = document.querySelector(".message.assistant.streaming .body");
                  if (!body?.textContent) return false;
                  (document.querySelector("#stop") as HTMLButtonElement).click();
                  resolve();
                  return true;
                };
                if (!tryStop()) {
                  new MutationObserver((_, observer) => {
                    if (tryStop()) observer.disconnect();
                  }).observe(document.body, { subtree: true, childList: true, characterData: true });
                }
              })
            );
            await panel.press("#prompt", "Enter");
            await stopped;
            await panel.locator(".message.assistant .stopped").waitFor({ timeout: 30_000 });
            assert.equal(await panel.isDisabled("#send"), false);
            await configure(panel, { maxTokens: "40" });

            const [download] = await Promise.all([panel.waitForEvent("download"), panel.click("#export")]);
            assert.match(download.suggestedFilename(), /^count-from-1-to-500.*\.md$/);
            const markdown = await Deno.readTextFile(await download.path());
            assert.match(markdown, /^# Count from 1 to 500, one number per line\./);
            assert.match(markdown, /## You\n\nCount from 1 to 500/);

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
