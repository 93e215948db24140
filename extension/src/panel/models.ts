/** The model picker: downloaded chat models, and catalog models with download and progress. */
import { ApiError, type Model } from "../lib/api.ts";
import { h } from "../lib/dom.ts";
import { chatModels, formatBytes, pullNote } from "../lib/models.ts";
import type { PanelContext, PanelSection } from "./context.ts";

/** The models section. */
export const modelsSection: PanelSection = {
  id: "models",
  mount(context: PanelContext) {
    const select = h("select", { id: "model", "aria-label": "Model" }) as HTMLSelectElement;
    const download = h("button", { type: "button", id: "download", hidden: true }, "Download");
    const progress = h("progress", {
      id: "download-progress",
      max: 1,
      value: 0,
      hidden: true,
      "aria-label": "Download",
    });
    const note = h("span", { className: "model-note", id: "model-note", "aria-live": "polite" });
    context.regions.toolbar.append(h("div", { className: "models" }, select, download, progress, note));
    let models: Model[] = [];

    const selected = () => models.find((m) => m.id === select.value);
    const update = () => {
      const model = selected();
      download.hidden = !model || model.downloaded === true;
      if (model?.downloaded) {
        context.model = model.id;
        context.emit("model", model.id);
      }
    };

    const refresh = async () => {
      if (!context.api) return;
      try {
        models = chatModels(await context.api.models());
      } catch (error) {
        const why = await modelsUnavailable(context, error as Error);
        note.textContent = why.text;
        note.title = why.hint ?? "";
        select.hidden = why.hint !== undefined; // nothing to pick from on this server
        return;
      }
      const want = context.model || context.settings.defaultModel;
      select.replaceChildren(
        ...models.map((m) =>
          h(
            "option",
            { value: m.id },
            m.downloaded
              ? (m.name ?? m.id)
              : `${m.name ?? m.id} — download${m.size ? ` (${formatBytes(m.size)})` : ""}`,
          )
        ),
      );
      const pick = models.find((m) => m.id === want && m.downloaded) ?? models.find((m) => m.downloaded) ?? models[0];
      if (pick) select.value = pick.id;
      note.textContent = models.some((m) => m.downloaded) ? "" : "No model downloaded yet: pick one and download it.";
      update();
      context.emit("models", models);
    };

    select.addEventListener("change", () => {
      update();
      if (selected()?.downloaded) context.updateSettings({ defaultModel: select.value });
    });
    download.addEventListener("click", async () => {
      const model = selected();
      if (!model || !context.api) return;
      download.disabled = true;
      progress.hidden = false;
      try {
        for await (const step of context.api.pull(model.id)) {
          progress.max = Math.max(step.total, 1);
          progress.value = step.bytes;
          note.textContent = pullNote(step);
          if (step.state === "failed" || step.state === "cancelled") {
            throw new Error(String(step.error?.detail ?? `download ${step.state}`));
          }
        }
        // The model the user chose to download becomes the one in use.
        context.model = model.id;
        await refresh();
        if (selected()?.id === model.id && model.id !== context.settings.defaultModel) {
          await context.updateSettings({ defaultModel: model.id });
        }
        note.textContent = `Downloaded ${model.name ?? model.id}.`;
      } catch (error) {
        note.textContent = `Download failed: ${(error as Error).message}`;
      } finally {
        download.disabled = false;
        progress.hidden = true;
      }
    });
    // The default model chosen in the settings becomes the one in use.
    context.on("settings", (settings) => {
      const wanted = models.find((m) => m.id === settings.defaultModel && m.downloaded);
      if (wanted && select.value !== wanted.id) {
        select.value = wanted.id;
        update();
      }
    });
    context.on("connection", (connection) => {
      select.disabled = connection.state !== "connected";
      if (connection.state === "connected") refresh();
    });
  },
};

/**
 * Why the model list is unavailable, in the user's terms. A server started with `--mode webrtc`
 * serves tab video only and has no model routes: say so rather than showing its 404.
 */
async function modelsUnavailable(context: PanelContext, error: Error): Promise<{ text: string; hint?: string }> {
  if (error instanceof ApiError && error.status === 404 && context.api) {
    const mode = await context.api.health().then((h) => h.mode, () => undefined);
    if (mode === "webrtc") {
      return {
        text: "This server runs tab video only (--mode webrtc).",
        hint: "Chat needs a server started with --mode all (the default) or --mode http.",
      };
    }
  }
  return { text: `Could not list models: ${error.message}` };
}
