/// <reference lib="dom" />
/// <reference types="@types/chrome" />
/**
 * The panel's own actions in real Chromium, against the real server and SmolLM2: the keyboard
 * shortcuts and the manifest's command, downloading a catalog model with progress (from the
 * loopback Hub-protocol stub, through `HF_ENDPOINT`), the right-click actions on selected text
 * through the service worker's real `contextMenus.onClicked` handler, the default model in the
 * settings and the options page, the Copy button of code blocks, and "ask about this page" keeping
 * the page in memory once, cited by title and URL in later answers.
 */
import assert from "node:assert/strict";
import type { Page, Worker } from "playwright-core";
import {
  axeViolations,
  builtExtension,
  CHAT_MODEL,
  chatModelCache,
  type ExtensionBrowser,
  launchExtensionBrowser,
} from "./_browser.ts";
import { waitForServerRecord } from "./_native.ts";
import { askAndWait, configure, diagnosed, FRANCE_PAGE, QUESTION, servePages, waitForAnswer } from "./_panel.ts";
import { startServer } from "./_server.ts";
import { pseudoRandomBytes, startHubStub } from "./hub_stub/mod.ts";

/** A catalog model (server/models/catalog/catalog.json) the stub Hub serves and the cache lacks. */
const CATALOG_MODEL = "ngxson/SmolLM2-360M-Instruct-Q8_0-GGUF";
const CATALOG_FILE = "smollm2-360m-instruct-q8_0.gguf";
const CATALOG_BYTES = 4 * 1024 * 1024 + 321;
/** A page that fits SmolLM2's context whole, with a fact no other memory holds. */
const HARBOUR_PAGE = "<html><head><title>Veldmoor harbour</title></head><body><article><h1>Veldmoor</h1>" +
  "<p>The harbour master of Veldmoor is named Ottilie Brandt.</p>" +
  "<p>The harbour has two stone piers and a lighthouse painted red.</p></article></body></html>";
/** The actions the service worker registers on selected text. */
const MENU_IDS = ["tabagent-explain", "tabagent-summarise", "tabagent-translate", "tabagent-ask"];

/** The extension's service worker, woken first (Chrome stops an idle one). */
async function serviceWorker(browser: ExtensionBrowser, panel: Page): Promise<Worker> {
  await panel.evaluate(() => chrome.runtime.sendMessage({ type: "connect" }));
  const worker = browser.context.serviceWorkers().find((w) => w.url().includes(browser.extensionId));
  assert.ok(worker, "the service worker runs");
  return worker;
}

/** Selects the first paragraph of `page`'s article as a user would, returning the selected text. */
async function selectParagraph(page: Page): Promise<string> {
  await page.locator("article p").first().selectText();
  return await page.evaluate(() => getSelection()!.toString());
}

Deno.test({
  name: "extension panel: shortcuts, model download with progress, right-click actions, pages kept and cited",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using extension = await builtExtension();
    await using hub = await startHubStub({
      repos: [{
        id: CATALOG_MODEL,
        pipelineTag: "text-generation",
        files: [{ path: CATALOG_FILE, content: pseudoRandomBytes(CATALOG_BYTES, 7), lfs: true }],
      }],
    });
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-panel-e2e-" });
    await using models = await chatModelCache();
    const server = await startServer({
      args: ["--mode", "all", "--no-ml", "--model-cache-path", models.path, "--static-dir", extension.dir],
      dataDir,
      env: { HF_ENDPOINT: hub.hubUrl },
    });
    await waitForServerRecord(dataDir);
    await using browser = await launchExtensionBrowser({ extensionDir: extension.dir, dataDir });
    await using site = servePages({ "/france": FRANCE_PAGE, "/harbour": HARBOUR_PAGE });
    const api = async (path: string) => {
      const response = await fetch(`${server.url}${path}`, { headers: server.auth });
      assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
      return await response.json();
    };
    const conversationTitled = async (title: string | RegExp) => {
      const list = await api("/v1/memory/conversations") as { items: { id: string; title: string }[] };
      const found = list.items.find((c) => typeof title === "string" ? c.title === title : title.test(c.title));
      assert.ok(found, `a conversation titled ${title}`);
      return found.id;
    };
    try {
      const panel = await browser.openPanel();
      await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 60_000 });
      await panel.locator(`#model option[value="${CHAT_MODEL}"]`).waitFor({ state: "attached" });
      await configure(panel, { temperature: "0", maxTokens: "40" });

      await t.step(
        "keyboard: Alt+H history, Esc closes it, Alt+N new chat, Shift+Enter, Esc stops; the command",
        () =>
          diagnosed(panel, "keys", async () => {
            const { text } = await askAndWait(panel, QUESTION);
            assert.match(text, /Paris/);

            await panel.locator("#prompt").focus();
            await panel.keyboard.press("Alt+KeyH");
            await panel.locator("#history").waitFor({ state: "visible" });
            assert.equal(await panel.getAttribute("#history-toggle", "aria-expanded"), "true");
            await panel.locator("#history-list li", { hasText: QUESTION }).waitFor();
            assert.equal(await panel.evaluate(() => document.activeElement?.id), "history-search");
            await panel.keyboard.press("Escape");
            await panel.locator("#history").waitFor({ state: "hidden" });
            assert.equal(await panel.evaluate(() => document.activeElement?.id), "history-toggle");

            await panel.keyboard.press("Alt+KeyN");
            await panel.locator("#messages .message").first().waitFor({ state: "detached" });
            await panel.locator("#empty").waitFor();
            assert.equal(await panel.evaluate(() => document.activeElement?.id), "prompt");

            // Shift+Enter is a new line, not a send.
            await panel.locator("#prompt").pressSequentially("first line");
            await panel.keyboard.press("Shift+Enter");
            await panel.locator("#prompt").pressSequentially("second line");
            assert.equal(await panel.inputValue("#prompt"), "first line\nsecond line");
            assert.equal(await panel.locator("#messages .message").count(), 0);

            // Esc stops a streaming answer: pressed from inside the page at the first token, so it lands mid-stream.
            await configure(panel, { maxTokens: "400" });
            await panel.fill("#prompt", "Count from 1 to 500, one number per line.");
            const escaped = panel.evaluate(() =>
              new Promise<void>((resolve) => {
                new MutationObserver((_, observer) => {
                  if (!document.querySelector(".message.assistant.streaming .body")?.textContent) return;
                  observer.disconnect();
                  document.activeElement!.dispatchEvent(
                    new KeyboardEvent("keydown", { key: "Escape", code: "Escape", bubbles: true }),
                  );
                  resolve();
                }).observe(document.body, { subtree: true, childList: true, characterData: true });
              })
            );
            await panel.press("#prompt", "Enter");
            await escaped;
            await panel.locator(".message.assistant .stopped").waitFor({ timeout: 30_000 });
            await configure(panel, { maxTokens: "40" });

            // Each shortcut is announced to assistive technology.
            assert.equal(await panel.getAttribute("#new-chat", "aria-keyshortcuts"), "Alt+N");
            assert.equal(await panel.getAttribute("#history-toggle", "aria-keyshortcuts"), "Alt+H");
            assert.equal(await panel.getAttribute("#stop", "aria-keyshortcuts"), "Escape");

            // The manifest's command opens the side panel: Chrome bound its key (a key Chrome keeps for
            // itself, as Alt+Shift+T is, would be left unbound) and the toolbar action opens the panel.
            const worker = await serviceWorker(browser, panel);
            const bound = await worker.evaluate(async () => {
              const commands = await chrome.commands.getAll();
              const behavior = await chrome.sidePanel.getPanelBehavior();
              return {
                shortcut: commands.find((c) => c.name === "_execute_action")?.shortcut,
                opensPanel: behavior.openPanelOnActionClick,
              };
            });
            const manifest = JSON.parse(await Deno.readTextFile(`${extension.dir}/manifest.json`));
            assert.deepEqual(bound, {
              shortcut: manifest.commands._execute_action.suggested_key.default,
              opensPanel: true,
            });
          }),
      );

      await t.step(
        "the model picker downloads a catalog model with progress, then it is selectable",
        () =>
          diagnosed(panel, "download", async () => {
            const option = panel.locator(`#model option[value="${CATALOG_MODEL}"]`);
            assert.match(await option.innerText(), /download/);
            await panel.selectOption("#model", CATALOG_MODEL);
            await panel.locator("#download").waitFor({ state: "visible" });
            // The stub Hub holds every response after 64 kB until released (pieces are 256 kB or more): the
            // download is seen in progress.
            const release = hub.holdAfter(64 * 1024);
            try {
              await panel.click("#download");
              const partial = await panel.waitForFunction(() => {
                const bar = document.querySelector<HTMLProgressElement>("#download-progress")!;
                const note = document.querySelector("#model-note")!.textContent ?? "";
                return !bar.hidden && bar.value > 0 && bar.value < bar.max && /downloading \d+%/.test(note) &&
                  { value: bar.value, max: bar.max, note };
              });
              const seen = await partial.jsonValue() as { value: number; max: number; note: string };
              assert.equal(seen.max, CATALOG_BYTES);
              assert.match(seen.note, /downloading \d+% \(\d+ kB of 4\.2 MB\)/);
              assert.equal(await panel.isDisabled("#download"), true);
            } finally {
              release();
            }
            await panel.locator("#model-note", { hasText: "Downloaded" }).waitFor({ timeout: 60_000 });
            assert.equal(await panel.isHidden("#download-progress"), true);
            assert.equal(await panel.isHidden("#download"), true);
            assert.equal(await panel.inputValue("#model"), CATALOG_MODEL, "the downloaded model is the one in use");
            assert.doesNotMatch(await option.innerText(), /download/);
            const listed = await api("/v1/models") as { data: { id: string; downloaded?: boolean }[] };
            assert.equal(listed.data.find((m) => m.id === CATALOG_MODEL)?.downloaded, true);
            assert.equal(hub.served.get(CATALOG_FILE), CATALOG_BYTES);
            // Both downloaded models can be picked; SmolLM2 answers the rest of the test.
            await panel.selectOption("#model", CHAT_MODEL);
            assert.equal(await panel.isHidden("#download"), true);
            await panel.reload();
            await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
            await panel.locator(`#model option[value="${CATALOG_MODEL}"]`).waitFor({ state: "attached" });
            assert.equal(await panel.inputValue("#model"), CHAT_MODEL, "the choice is kept as the default");
          }),
      );

      await t.step(
        "settings choose the default model; the options page holds the same settings",
        () =>
          diagnosed(panel, "settings", async () => {
            await panel.click("#settings-toggle");
            await panel.locator(`#set-model option[value="${CATALOG_MODEL}"]`).waitFor({ state: "attached" });
            assert.equal(await panel.inputValue("#set-model"), CHAT_MODEL);
            await panel.selectOption("#set-model", CATALOG_MODEL);
            await panel.click("#settings-form button[type=submit]");
            await panel.locator("#settings").waitFor({ state: "hidden" });
            assert.equal(await panel.inputValue("#model"), CATALOG_MODEL, "the picker follows the default");

            const options = await browser.context.newPage();
            await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
            await options.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
            await options.locator(`#set-model option[value="${CHAT_MODEL}"]`).waitFor({ state: "attached" });
            assert.equal(await options.inputValue("#set-model"), CATALOG_MODEL);
            assert.equal(await options.inputValue("#set-max-tokens"), "40");
            assert.deepEqual(await axeViolations(options), []);
            await options.selectOption("#set-model", CHAT_MODEL);
            await options.selectOption("#set-theme", "dark");
            await options.click("#settings-form button[type=submit]");
            await options.waitForFunction(() => document.documentElement.dataset.theme === "dark");
            await options.close();
            await panel.reload();
            await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
            await panel.locator(`#model option[value="${CATALOG_MODEL}"]`).waitFor({ state: "attached" });
            assert.equal(await panel.inputValue("#model"), CHAT_MODEL, "the options page's choice is the panel's");
            assert.equal(await panel.evaluate(() => document.documentElement.dataset.theme), "dark");
            await panel.click("#settings-toggle");
            await panel.selectOption("#set-theme", "system");
            await panel.click("#settings-form button[type=submit]");
            await panel.locator("#settings").waitFor({ state: "hidden" });
          }),
      );

      await t.step(
        "a code block in an answer has a Copy button that copies the code",
        () =>
          diagnosed(panel, "copy", async () => {
            const code = 'const answer = 42;\nconsole.log("answer", answer);';
            const created = await (await fetch(`${server.url}/v1/memory/conversations`, {
              method: "POST",
              headers: { ...server.auth, "content-type": "application/json" },
              body: JSON.stringify({ title: "code sample" }),
            })).json() as { id: string };
            await fetch(`${server.url}/v1/memory/conversations/${created.id}/messages`, {
              method: "POST",
              headers: { ...server.auth, "content-type": "application/json" },
              body: JSON.stringify({
                messages: [
                  { role: "user", content: "Show me some code" },
                  { role: "assistant", content: "Here it is:\n\n```js\n" + code + "\n```\n" },
                ],
              }),
            }).then((r) => r.body?.cancel());
            await panel.keyboard.press("Alt+KeyH");
            await panel.locator("#history-list .history-open", { hasText: "code sample" }).click();
            const block = panel.locator(".message.assistant .code-block");
            await block.waitFor();
            assert.equal((await block.locator("pre").innerText()).trimEnd(), code);
            // Watch what reaches the real clipboard call (extension origins cannot be granted clipboard-read).
            await panel.evaluate(() => {
              const clipboard = navigator.clipboard;
              const write = clipboard.writeText.bind(clipboard);
              clipboard.writeText = (text: string) => {
                (globalThis as unknown as { copied: string }).copied = text;
                return write(text);
              };
            });
            await block.locator("button.copy-code").click();
            // "Copied" shows once the browser's clipboard took the text.
            await block.locator("button.copy-code", { hasText: "Copied" }).waitFor();
            assert.equal(await panel.evaluate(() => (globalThis as unknown as { copied: string }).copied), code);
            await panel.click("#new-chat");
          }),
      );

      await t.step(
        "right-click on selected text: the real menu handler sends the action to the panel",
        () =>
          diagnosed(panel, "menu", async () => {
            const article = await browser.context.newPage();
            await article.goto(site.url("/france"));
            const selected = await selectParagraph(article);
            assert.match(selected, /The capital of France is Paris/);
            await panel.bringToFront();
            const worker = await serviceWorker(browser, panel);
            // The four entries exist (update fails for an id that was never created).
            await worker.evaluate(async (ids) => {
              for (const id of ids) await chrome.contextMenus.update(id, {});
            }, MENU_IDS);
            // What Chrome passes the handler when the user picks an entry on that selection.
            const click = (menuItemId: string) =>
              worker.evaluate(async ({ menuItemId, selectionText, pageUrl }) => {
                const tab = (await chrome.tabs.query({})).find((t) => t.url === pageUrl);
                if (!tab) throw new Error(`no tab at ${pageUrl}`);
                const info: chrome.contextMenus.OnClickData = {
                  menuItemId,
                  selectionText,
                  pageUrl,
                  frameId: 0,
                  editable: false,
                };
                (chrome.contextMenus.onClicked as unknown as {
                  dispatch(info: chrome.contextMenus.OnClickData, tab: chrome.tabs.Tab): void;
                }).dispatch(info, tab);
              }, { menuItemId, selectionText: selected, pageUrl: article.url() });

            await panel.click("#new-chat");
            await click("tabagent-explain");
            const question = panel.locator(".message.user").last();
            await question.waitFor();
            assert.equal(await question.textContent(), `Explain this:\n\n${selected}`.trim());
            const { text } = await waitForAnswer(panel, 0);
            // The panel marks the first token it paints, before the answer ends (however short it is).
            const marks = await panel.evaluate(() => performance.getEntriesByType("mark").map((m) => m.name));
            assert.ok(marks.includes("tabagent:first-token"), "the answer streamed in");
            assert.ok(text.trim().length > 0, "an answer was written");
            const stored = await api(
              `/v1/memory/conversations/${await conversationTitled(/^Explain this:/)}/messages`,
            ) as { items: { role: string; content: string }[] };
            assert.deepEqual(stored.items.map((m) => m.role), ["user", "assistant"]);

            // "Ask…" puts the selection in the message box for the user to finish, and sends nothing.
            await click("tabagent-ask");
            await panel.waitForFunction(
              (text) => (document.querySelector("#prompt") as HTMLTextAreaElement).value.includes(text),
              selected,
            );
            assert.equal(await panel.inputValue("#prompt"), `About this text:\n\n${selected}\n\n`);
            assert.equal(await panel.locator(".message.user").count(), 1);
            await panel.fill("#prompt", "");
            await article.close();
          }),
      );

      await t.step(
        "a page asked about is kept once in memory, and later answers cite it by title and URL",
        () =>
          diagnosed(panel, "documents", async () => {
            const article = await browser.context.newPage();
            await article.goto(site.url("/harbour"));
            await panel.bringToFront();
            await panel.click("#new-chat");
            await panel.click("#ask-page");
            await panel.locator("#page-status", { hasText: "Veldmoor harbour" }).waitFor();
            const first = "Who is the harbour master of Veldmoor?";
            await askAndWait(panel, first);
            const kept = panel.locator("#page-kept[data-document-id]");
            await kept.waitFor();
            assert.match(await kept.innerText(), /Kept “Veldmoor harbour” in this chat's memory \(1 passage\)/);
            const documentId = await kept.getAttribute("data-document-id");
            const document = await api(`/v1/memory/documents/${documentId}`) as {
              url: string;
              title: string;
              conversation_id: string;
              chunks: number;
            };
            assert.deepEqual(document, {
              ...document,
              url: site.url("/harbour"),
              title: "Veldmoor harbour",
              conversation_id: await conversationTitled(first),
              chunks: 1,
            });

            // A second question about the same page keeps no second copy.
            await askAndWait(panel, "What colour is the lighthouse?");
            assert.equal(await kept.getAttribute("data-document-id"), documentId);
            const found = await (await fetch(`${server.url}/v1/memory/query`, {
              method: "POST",
              headers: { ...server.auth, "content-type": "application/json" },
              body: JSON.stringify({ query: "harbour master Veldmoor", stores: ["documents"], k: 20 }),
            })).json() as { hits: { document?: { id: string; url: string } }[] };
            const documents = new Set(found.hits.map((h) => h.document?.id));
            assert.deepEqual([...documents], [documentId], "one document holds the page");

            // In a new chat with memory on, an answer drawing on the page cites it by title, linked to its URL.
            await panel.click("#ask-page"); // off: the page comes back from memory alone
            await panel.click("#new-chat");
            await panel.setChecked("#use-memory", true);
            await askAndWait(panel, "Who is the harbour master of Veldmoor?");
            const citations = panel.locator(".message.assistant").last().locator(".citations");
            const source = citations.locator(".cited-pages a.cited-page");
            await source.waitFor();
            assert.equal(await source.innerText(), "Veldmoor harbour");
            assert.equal(await source.getAttribute("href"), site.url("/harbour"));
            await citations.locator("summary").click();
            const listed = citations.locator("li", { has: panel.locator("a.cited-page") }).first();
            // The page's paragraphs stay apart in what was kept.
            assert.match(await listed.innerText(), /^Veldmoor harbour: .*Ottilie Brandt\. The harbour has two/);
            await panel.setChecked("#use-memory", false);
            await article.close();
          }),
      );

      await t.step(
        "without the native host, the server URL and token from the settings pair the panel",
        () =>
          diagnosed(panel, "configured", async () => {
            await browser.installHost(true);
            // As after a browser restart: the service worker pairs afresh and finds no host.
            await panel.evaluate(() => chrome.runtime.sendMessage({ type: "connect", force: true }));
            await panel.reload();
            await panel.locator('#status[data-state="host_missing"]').waitFor({ timeout: 30_000 });
            await panel.click("#settings-toggle");
            await panel.fill("#set-url", server.url);
            await panel.fill("#set-token", server.token);
            await panel.click("#settings-form button[type=submit]");
            await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
            await panel.click("#new-chat");
            const { text } = await askAndWait(panel, QUESTION);
            assert.match(text, /Paris/);
            // The token the user typed stays in the extension's own storage, out of pages' reach.
            const stored = await (await serviceWorker(browser, panel)).evaluate(async () =>
              (await chrome.storage.local.get("settings")).settings as { serverUrl: string }
            );
            assert.equal(stored.serverUrl, server.url);

            // Back to zero configuration: the host again, and nothing typed in.
            await browser.installHost();
            await panel.click("#settings-toggle");
            await panel.fill("#set-url", "");
            await panel.fill("#set-token", "");
            await panel.click("#settings-form button[type=submit]");
            await panel.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
          }),
      );
    } finally {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
