/**
 * Real Chromium against the real server (`--mode webrtc` in its own process), with Chromium's mDNS
 * protection left on: its host candidates arrive as `.local` names the server cannot resolve, and
 * the connection must still come up through the server's own candidates and peer-reflexive
 * discovery. The page streams `skimage.data.astronaut()` with the extension's own streamer module.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { astronautJpeg720p } from "./_astronaut.ts";
import { startServer } from "./_server.ts";

const CHROMIUM = "/usr/bin/chromium";

/** What `tests/webrtc_page/page.ts` puts on the page's global object. */
interface PageState {
  results: unknown[];
  errors: unknown[];
  start(url: string, token: string): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = new URL("../", import.meta.url);
const ARTIFACTS = new URL("./artifacts/", import.meta.url);

async function bundlePage(dir: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(new URL("node_modules/.bin/esbuild", ROOT).pathname, {
    args: [
      new URL("tests/webrtc_page/page.ts", ROOT).pathname,
      "--bundle",
      "--format=esm",
      "--target=chrome120",
      `--outfile=${dir}/page.js`,
      "--log-level=warning",
    ],
    cwd: ROOT.pathname,
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`bundling the test page failed: ${new TextDecoder().decode(stderr)}`);
  await Deno.copyFile(new URL("tests/webrtc_page/index.html", ROOT).pathname, `${dir}/index.html`);
  await Deno.copyFile(await astronautJpeg720p(), `${dir}/astronaut.jpg`);
}

Deno.test("Chromium (mDNS candidates on) streams a canvas of the astronaut to the server over WebRTC", async () => {
  await Deno.stat(CHROMIUM); // scripts/setup.ts installs it for tests
  const dir = await Deno.makeTempDir({ prefix: "tabagent-webrtc-page-" });
  await bundlePage(dir);
  const pages = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const name = new URL(request.url).pathname.slice(1) || "index.html";
    if (!["index.html", "page.js", "astronaut.jpg"].includes(name)) return new Response("not found", { status: 404 });
    const type = { html: "text/html", js: "text/javascript", jpg: "image/jpeg" }[name.split(".").pop()!]!;
    return new Response(await Deno.readFile(`${dir}/${name}`), { headers: { "content-type": type } });
  });
  const origin = `http://127.0.0.1:${pages.addr.port}`;
  await using server = await startServer({ args: ["--mode", "webrtc", "--no-ml", "--origin", origin] });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(origin);
    await page.evaluate(
      ([url, token]) => (globalThis as unknown as { webrtcPage: PageState }).webrtcPage.start(url, token),
      [server.url, server.token],
    );
    // Every frame is answered: with detections once a vision model is wired in, else with an error.
    await page.waitForFunction(
      () => {
        const state = (globalThis as unknown as { webrtcPage: PageState }).webrtcPage;
        return state.results.length + state.errors.length >= 5;
      },
      undefined,
      { timeout: 60_000 },
    );
    const listed = await (await fetch(`${server.url}/v1/webrtc/sessions`, { headers: server.auth })).json();
    assert.equal(listed.data.length, 1);
    const session = listed.data[0];
    assert.equal(session.state, "connected");
    assert.ok(session.frames.received >= 5, `the server completed ${session.frames.received} frames`);
    // Chromium's host candidates were hidden behind mDNS; the server ignored them and still connected.
    assert.ok(session.mdns_candidates_ignored >= 1, "Chromium sent mDNS candidates");
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL("webrtc_chromium.png", ARTIFACTS).pathname });
    await page.evaluate(() => (globalThis as unknown as { webrtcPage: PageState }).webrtcPage.stop());
    const after = await (await fetch(`${server.url}/v1/webrtc/sessions`, { headers: server.auth })).json();
    assert.equal(after.data.length, 0);
  } finally {
    await browser.close();
    await pages.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
