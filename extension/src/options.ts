/** The options page: the panel's status and settings sections on their own. */
import { PanelContext, type Region } from "./panel/context.ts";
import { extensionEnvironment } from "./panel/env_extension.ts";
import { settingsSection } from "./panel/settings.ts";
import { statusSection } from "./panel/status.ts";

const env = extensionEnvironment();
const regions = Object.fromEntries(
  ["status", "toolbar", "drawer", "main", "context", "composer"].map((name) => [
    name,
    document.querySelector<HTMLElement>(`[data-region="${name}"]`) ?? document.createElement("div"),
  ]),
) as Record<Region, HTMLElement>;
const context = new PanelContext(env, await env.loadSettings(), regions);
statusSection.mount(context);
settingsSection.mount(context);
document.getElementById("settings")!.hidden = false;
document.getElementById("settings-toggle")!.hidden = true;
env.onConnection((connection) => context.setConnection(connection));
context.setConnection(await env.connect(false));
