/**
 * End to end through the extension's own code path: real Chromium with the built extension, the
 * real server (`--mode webrtc`) with the real Python ML service. A tab shows
 * `skimage.data.astronaut()`; the panel's "Watch this tab" asks the service worker for a
 * tab-capture stream, the offscreen document streams it over WebRTC, MediaPipe finds the face, and
 * the panel draws it over its preview.
 */
import assert from "node:assert/strict";
import { ARTIFACTS_DIR, builtExtension, launchExtensionBrowser } from "./_browser.ts";
import { astronautJpeg720p } from "./_astronaut.ts";
import { startServer } from "./_server.ts";
import { EXTENSION_ID } from "../server/config/mod.ts";

Deno.test({
  name: "the panel watches a tab showing the astronaut: one face comes back and is drawn",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const jpeg = await Deno.readFile(await astronautJpeg720p());
    const pages = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/astronaut.jpg") return new Response(jpeg, { headers: { "content-type": "image/jpeg" } });
      return new Response(
        `<!doctype html><html lang="en"><head><title>Astronaut</title><link rel="icon" href="data:,">` +
          `<style>body{margin:0;background:#000}img{position:absolute;left:50%;top:50%;height:150vh;transform:translate(-50%,-50%)}</style>` +
          `</head><body><img src="/astronaut.jpg" alt="Eileen Collins"></body></html>`,
        { headers: { "content-type": "text/html" } },
      );
    });
    await using server = await startServer({ args: ["--mode", "webrtc"] });
    await using extension = await builtExtension();
    await using browser = await launchExtensionBrowser({
      extensionDir: extension.dir,
      dataDir: server.dataDir,
      // A user grants tab capture by clicking the toolbar button, which headless Chromium has not:
      // allowlisting the extension stands in for that click. mDNS candidates stay on.
      extraArgs: [`--allowlisted-extension-id=${EXTENSION_ID}`],
    });
    // The service worker's console and every state the panel showed, printed if the test fails.
    const trail: string[] = [];
    const began = performance.now();
    const note = (line: string) => trail.push(`${Math.round(performance.now() - began)} ms ${line}`);
    for (const worker of browser.context.serviceWorkers()) {
      worker.on("console", (message) => note(`service worker: ${message.text()}`));
    }
    try {
      const panel = await browser.openPanel();
      await panel.exposeFunction("tabagentTestNote", note);
      await panel.evaluate(() => {
        const status = document.querySelector("#video-status")!;
        const report = (globalThis as unknown as { tabagentTestNote: (line: string) => void }).tabagentTestNote;
        new MutationObserver(() => report(`panel: ${status.textContent}`)).observe(status, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });
      const tab = await browser.context.newPage();
      await tab.setViewportSize({ width: 1280, height: 720 });
      await tab.goto(`http://127.0.0.1:${pages.addr.port}/`);
      await tab.locator("img").evaluate((img: HTMLImageElement) => img.decode());
      // The panel captures the active tab of the focused window, and headless Chromium paints only the
      // tab in front: keep the astronaut there and press the panel's button from its own page.
      await tab.bringToFront();
      await panel.evaluate(() => document.querySelector<HTMLButtonElement>("#video-toggle")!.click());
      const preview = panel.locator("#video-preview");
      // The first captured frames may come before the tab has painted: wait for a drawn result with
      // a face, or stop at the first error the panel shows.
      await panel.waitForFunction(
        () => {
          const status = document.querySelector("#video-status")?.textContent ?? "";
          const drawn = document.querySelector<HTMLElement>("#video-preview")?.dataset.detections;
          return (drawn !== undefined && drawn !== "0") || /failed|error|stopped|:/.test(status);
        },
        undefined,
        { timeout: 30_000 },
      ).catch(async (error) => {
        const sessions = await fetch(`${server.url}/v1/webrtc/sessions`, { headers: server.auth }).then((r) =>
          r.text()
        );
        console.error([...trail, `server sessions: ${sessions}`].join("\n"));
        await Deno.mkdir(ARTIFACTS_DIR, { recursive: true });
        await panel.screenshot({ path: `${ARTIFACTS_DIR}/webrtc_extension_panel_failed.png`, fullPage: true });
        throw error;
      });
      const status = await panel.locator("#video-status").textContent();
      assert.equal(await preview.getAttribute("data-detections"), "1", `panel says: ${status}`);
      const stats = await panel.locator("#video-stats").textContent();
      assert.ok(/fps/.test(stats ?? ""), stats ?? "");
      const sessions = await (await fetch(`${server.url}/v1/webrtc/sessions`, { headers: server.auth })).json();
      assert.equal(sessions.data.length, 1);
      assert.ok(sessions.data[0].frames.detected >= 1);
      await Deno.mkdir(ARTIFACTS_DIR, { recursive: true });
      await panel.bringToFront();
      // This server has no model routes: the picker says why, in the user's terms, not with a 404.
      await panel.locator("#model-note", { hasText: "runs tab video only" }).waitFor({ timeout: 10_000 });
      await panel.screenshot({ path: `${ARTIFACTS_DIR}/webrtc_extension_panel.png`, fullPage: true });
      // Still watching: the button offers to stop, and stopping closes the server's session.
      assert.equal(await panel.locator("#video-toggle").getAttribute("aria-pressed"), "true");
      await panel.evaluate(() => document.querySelector<HTMLButtonElement>("#video-toggle")!.click());
      await panel.locator("#video-toggle[aria-pressed=false]").waitFor({ timeout: 30_000 });
      const after = await (await fetch(`${server.url}/v1/webrtc/sessions`, { headers: server.auth })).json();
      assert.equal(after.data.length, 0, JSON.stringify(after));
    } finally {
      await pages.shutdown();
    }
  },
});
