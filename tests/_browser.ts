/// <reference lib="dom" />
/**
 * Real Chromium with the real extension, for end-to-end tests and the browser bench: builds the
 * extension, registers the native host into a fresh profile with `tabagent install-host` (as a user
 * would), and launches Debian's chromium headless through playwright-core.
 *
 * @example
 * ```ts
 * await using browser = await launchExtensionBrowser({ dataDir });
 * const panel = await browser.openPanel();
 * ```
 * @module
 */
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { buildExtension } from "../extension/build.ts";
import { EXTENSION_ID } from "../server/config/mod.ts";
import { runCli } from "./_server.ts";

/** Where Debian installs chromium (scripts/setup.ts installs it for tests). */
export const CHROMIUM = "/usr/bin/chromium";
/** The real chat model the browser tests use (placed by scripts/setup.ts). */
export const CHAT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
/** The model cache holding it. */
export const CHAT_MODEL_CACHE = Deno.env.get("TABAGENT_TEST_MODEL_CACHE") ||
  decodeURIComponent(new URL("./.fixtures/models", import.meta.url).pathname);
/** Screenshots land here. */
export const ARTIFACTS_DIR = decodeURIComponent(new URL("./artifacts", import.meta.url).pathname);

/** Fails with the command to run when Chromium or the model are missing (setup installs both). */
export async function requireBrowserFixtures(): Promise<void> {
  const missing: string[] = [];
  for (
    const [path, what] of [[CHROMIUM, "chromium"], [`${CHAT_MODEL_CACHE}/${CHAT_MODEL.replace("/", "--")}`, CHAT_MODEL]]
  ) {
    try {
      await Deno.stat(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      missing.push(what);
    }
  }
  if (missing.length) {
    throw new Error(`missing ${missing.join(" and ")}: run 'npx -y deno@2.9.6 task setup --for test' first`);
  }
}

/**
 * A model cache of its own for one test, holding SmolLM2 hard-linked from the fixture cache (a copy
 * where links are impossible), so other suites sharing tests/.fixtures cannot change it mid-run.
 */
export async function chatModelCache(): Promise<{ path: string } & AsyncDisposable> {
  await requireBrowserFixtures();
  const path = await Deno.makeTempDir({ prefix: "tabagent-chat-models-" });
  const folder = CHAT_MODEL.replace("/", "--");
  await Deno.mkdir(`${path}/${folder}`);
  for await (const entry of Deno.readDir(`${CHAT_MODEL_CACHE}/${folder}`)) {
    if (!entry.isFile || !entry.name.endsWith(".gguf")) continue;
    const from = `${CHAT_MODEL_CACHE}/${folder}/${entry.name}`;
    await Deno.link(from, `${path}/${folder}/${entry.name}`).catch(() =>
      Deno.copyFile(from, `${path}/${folder}/${entry.name}`)
    );
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** The flags that work headless on this kind of machine. */
export function chromiumArgs(extensionDir: string): string[] {
  return [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    `--disable-extensions-except=${extensionDir}`,
    `--load-extension=${extensionDir}`,
  ];
}

/** A built extension in a temp folder (also a web app root for `--static-dir`). */
export async function builtExtension(): Promise<{ dir: string } & AsyncDisposable> {
  await requireBrowserFixtures();
  const dir = await Deno.makeTempDir({ prefix: "tabagent-ext-" });
  await buildExtension({ outDir: `${dir}/dist`, zip: false });
  return {
    dir: `${dir}/dist`,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Chromium with the extension loaded and the host registered for `dataDir`. */
export interface ExtensionBrowser extends AsyncDisposable {
  context: BrowserContext;
  extensionId: string;
  /** Opens the side panel's page in a tab and waits until its sections are mounted. */
  openPanel(): Promise<Page>;
  /** Registers (or with `uninstall`, removes) the native host in this profile. */
  installHost(uninstall?: boolean): Promise<void>;
}

/** Launches Chromium for `extensionDir`, with the host installed for the server's `dataDir`. */
export async function launchExtensionBrowser(
  options: { extensionDir: string; dataDir: string; extraArgs?: string[] },
): Promise<ExtensionBrowser> {
  const home = await Deno.makeTempDir({ prefix: "tabagent-chromium-" });
  // install-host writes to $XDG_CONFIG_HOME/chromium/NativeMessagingHosts: make that the profile.
  const profileDir = `${home}/config/chromium`;
  const installHost = async (uninstall = false) => {
    const result = await runCli(
      ["install-host", "--browser", "chromium", "--data-dir", options.dataDir, ...(uninstall ? ["--uninstall"] : [])],
      { HOME: home, XDG_CONFIG_HOME: `${home}/config` },
    );
    if (result.code !== 0) throw new Error(`install-host failed: ${result.stderr}`);
  };
  await installHost();
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...chromiumArgs(options.extensionDir), ...(options.extraArgs ?? [])],
    viewport: { width: 420, height: 720 },
  });
  try {
    const worker = context.serviceWorkers()[0] ?? await context.waitForEvent("serviceworker", { timeout: 30_000 });
    const extensionId = new URL(worker.url()).host;
    if (extensionId !== EXTENSION_ID) throw new Error(`extension id ${extensionId}, expected ${EXTENSION_ID}`);
    // The onboarding tab opens on install; tests drive their own pages.
    for (const page of context.pages()) if (page.url().includes("onboarding")) await page.close();
    return {
      context,
      extensionId,
      installHost,
      async openPanel() {
        const page = await context.newPage();
        await page.goto(`chrome-extension://${extensionId}/panel.html`);
        await page.waitForFunction(() => (globalThis as { tabagentReady?: unknown }).tabagentReady !== undefined);
        await page.evaluate(() => (globalThis as unknown as { tabagentReady: Promise<unknown> }).tabagentReady);
        return page;
      },
      async [Symbol.asyncDispose]() {
        await context.close().catch(() => {});
        await Deno.remove(home, { recursive: true }).catch(() => {});
      },
    };
  } catch (error) {
    await context.close().catch(() => {});
    throw error;
  }
}

/** Runs axe-core in `page` and returns the serious and critical violations. */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; nodes: string[] }[]> {
  const source = await Deno.readTextFile(new URL("../node_modules/axe-core/axe.min.js", import.meta.url));
  // evaluate() goes through the debugger, so the extension page's CSP does not block it.
  await page.evaluate(source);
  const results = await page.evaluate(async () => {
    const axe = (globalThis as unknown as {
      axe: { run: (context: unknown, options: unknown) => Promise<{ violations: unknown[] }> };
    }).axe;
    const run = await axe.run(document, { resultTypes: ["violations"] });
    return run.violations as { id: string; impact: string; nodes: { target: string[] }[] }[];
  });
  return results.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => ({
    id: v.id,
    impact: v.impact,
    nodes: v.nodes.map((n) => n.target.join(" ")),
  }));
}
