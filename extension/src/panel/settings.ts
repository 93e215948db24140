/** Settings: server URL and token (when not paired through the host), auto-start, model, sampling, theme. */
import type { Model } from "../lib/api.ts";
import { h } from "../lib/dom.ts";
import { chatModels } from "../lib/models.ts";
import type { Settings } from "../lib/native.ts";
import type { PanelContext, PanelSection } from "./context.ts";

/** Applies the theme to the document (`system` follows the OS). */
export function applyTheme(theme: Settings["theme"]): void {
  if (theme === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

function field(label: string, control: HTMLElement, help?: string): HTMLElement {
  const id = control.id;
  return h(
    "div",
    { className: "field" },
    h("label", { for: id }, label),
    control,
    help ? h("p", { className: "help", id: `${id}-help` }, help) : null,
  );
}

/** The settings section (a drawer). */
export const settingsSection: PanelSection = {
  id: "settings",
  mount(context: PanelContext) {
    const extension = context.env.kind === "extension";
    const toggle = h("button", {
      type: "button",
      id: "settings-toggle",
      "aria-expanded": "false",
      "aria-controls": "settings",
    }, "Settings");
    context.regions.toolbar.append(toggle);
    const url = h("input", { id: "set-url", type: "url", placeholder: "http://127.0.0.1:8765" }) as HTMLInputElement;
    const token = h("input", { id: "set-token", type: "password", autocomplete: "off" }) as HTMLInputElement;
    const autoStart = h("input", { id: "set-autostart", type: "checkbox" }) as HTMLInputElement;
    const relayOnly = h("input", { id: "set-relay", type: "checkbox" }) as HTMLInputElement;
    const temperature = h("input", {
      id: "set-temperature",
      type: "number",
      min: 0,
      max: 2,
      step: 0.1,
    }) as HTMLInputElement;
    const maxTokens = h("input", {
      id: "set-max-tokens",
      type: "number",
      min: 1,
      max: 32768,
      step: 1,
    }) as HTMLInputElement;
    const model = h("select", { id: "set-model" }) as HTMLSelectElement;
    const theme = h(
      "select",
      { id: "set-theme" },
      h("option", { value: "system" }, "System"),
      h("option", { value: "light" }, "Light"),
      h("option", { value: "dark" }, "Dark"),
    ) as HTMLSelectElement;
    const form = h(
      "form",
      { id: "settings-form" },
      extension
        ? field(
          "Server URL",
          url,
          "Only needed when the native host is not installed; leave empty to pair automatically.",
        )
        : null,
      extension
        ? field("API token", token, "Printed by 'tabagent token'. Not needed when paired through the host.")
        : null,
      extension ? h("label", { className: "toggle" }, autoStart, " Start the server when it is not running") : null,
      extension
        ? h(
          "label",
          { className: "toggle" },
          relayOnly,
          " Send requests through the native host (when fetch is blocked)",
        )
        : null,
      field("Default model", model, "Used for new chats. Download models from the picker above the chat."),
      field("Temperature", temperature),
      field("Max reply tokens", maxTokens),
      field("Theme", theme),
      h("button", { type: "submit", className: "primary" }, "Save"),
    );
    const panel = h(
      "section",
      { id: "settings", className: "drawer", hidden: true, "aria-label": "Settings" },
      h("h2", {}, "Settings"),
      form,
    );
    context.regions.drawer.append(panel);

    /** Downloaded chat models, as the default-model choices. */
    const fillModels = (models: Model[]) => {
      const downloaded = chatModels(models).filter((m) => m.downloaded);
      model.replaceChildren(
        h("option", { value: "" }, downloaded.length ? "The first downloaded model" : "No model downloaded yet"),
        ...downloaded.map((m) => h("option", { value: m.id }, m.name ?? m.id)),
      );
      model.value = downloaded.some((m) => m.id === context.settings.defaultModel) ? context.settings.defaultModel : "";
    };
    context.on("models", fillModels);
    // The options page has no picker: it asks for the list itself.
    context.on("connection", (connection) => {
      if (connection.state !== "connected" || document.getElementById("model")) return;
      context.api?.models().then(fillModels, (error) => console.warn("TabAgent: could not list models", error));
    });
    const fill = (s: Settings) => {
      url.value = s.serverUrl;
      token.value = s.serverToken;
      autoStart.checked = s.autoStart;
      relayOnly.checked = s.relayOnly;
      temperature.value = String(s.temperature);
      maxTokens.value = String(s.maxTokens);
      if ([...model.options].some((o) => o.value === s.defaultModel)) model.value = s.defaultModel;
      theme.value = s.theme;
      applyTheme(s.theme);
    };
    fill(context.settings);
    context.on("settings", fill);
    toggle.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      toggle.setAttribute("aria-expanded", String(!panel.hidden));
    });
    theme.addEventListener("change", () => applyTheme(theme.value as Settings["theme"]));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const before = context.settings;
      await context.updateSettings({
        serverUrl: url.value.trim(),
        serverToken: token.value.trim(),
        autoStart: autoStart.checked,
        relayOnly: relayOnly.checked,
        temperature: Math.min(2, Math.max(0, Number(temperature.value) || 0)),
        maxTokens: Math.min(32768, Math.max(1, Math.round(Number(maxTokens.value) || 512))),
        theme: theme.value as Settings["theme"],
        defaultModel: model.value || before.defaultModel,
      });
      panel.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      if (
        before.serverUrl !== context.settings.serverUrl || before.serverToken !== context.settings.serverToken ||
        before.relayOnly !== context.settings.relayOnly
      ) {
        context.setConnection({ state: "starting", detail: "Connecting again with the new settings…" });
        context.setConnection(await context.env.connect(true));
      }
    });
  },
};
