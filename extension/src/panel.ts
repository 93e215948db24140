/**
 * The panel's entry, shared by the extension's side panel (`panel.html`) and the web app the
 * server serves at `/` (`index.html`): same bundle, the environment decides pairing and transport.
 */
import { PanelContext, type PanelContext as Context, type PanelEnvironment, type Region } from "./panel/context.ts";
import { SECTIONS } from "./panel/sections.ts";
import { applyTheme } from "./panel/settings.ts";

const REGIONS: Region[] = ["status", "toolbar", "drawer", "main", "context", "composer"];

async function environment(): Promise<PanelEnvironment> {
  const inExtension = typeof chrome !== "undefined" && Boolean(chrome.runtime?.id);
  // The polyfill refuses to load outside an extension, so the web app never imports it.
  if (inExtension) return (await import("./panel/env_extension.ts")).extensionEnvironment();
  return (await import("./panel/env_web.ts")).webEnvironment();
}

async function main(): Promise<Context> {
  const env = await environment();
  document.documentElement.dataset.env = env.kind;
  const settings = await env.loadSettings();
  applyTheme(settings.theme);
  const regions = Object.fromEntries(REGIONS.map((name) => {
    const element = document.querySelector<HTMLElement>(`[data-region="${name}"]`);
    if (!element) throw new Error(`panel.html lacks the ${name} region`);
    return [name, element];
  })) as Record<Region, HTMLElement>;
  const context = new PanelContext(env, settings, regions);
  for (const section of SECTIONS) section.mount(context);
  env.onConnection((connection) => context.setConnection(connection));
  env.onPendingPrompt?.((prompt) => context.emit("compose", prompt));
  context.setConnection({ state: "starting" });
  context.setConnection(await env.connect(false));
  return context;
}

const ready = main();
// Tests and the bench wait on this.
(globalThis as unknown as { tabagentReady: Promise<unknown> }).tabagentReady = ready.then(() => true);
ready.catch((error) => {
  console.error(error);
  document.body.prepend(Object.assign(document.createElement("p"), {
    className: "error",
    role: "alert",
    textContent: `TabAgent could not start: ${(error as Error).message}`,
  }));
});
