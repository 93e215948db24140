/**
 * The service worker's part of tab video: turns the panel's start/stop into a tab-capture stream id
 * and an offscreen document that captures, encodes and streams it to the server.
 *
 * @example
 * ```ts
 * registerTabVideo(async () => connection.state === "connected" ? connection : null);
 * ```
 * @module
 */
import { OffscreenCommandSchema, PanelVideoRequestSchema, type VideoEvent } from "./messages.ts";

const OFFSCREEN_URL = "offscreen.html";

async function ensureOffscreen(): Promise<void> {
  const contexts = await chrome.runtime.getContexts({
    contextTypes: ["OFFSCREEN_DOCUMENT" as chrome.runtime.ContextType],
  });
  if (contexts.length > 0) return;
  await chrome.offscreen.createDocument({
    url: OFFSCREEN_URL,
    reasons: ["USER_MEDIA" as chrome.offscreen.Reason],
    justification: "Capture the tab's video and stream it to the local TabAgent server",
  });
}

async function targetTab(tabId: number | undefined): Promise<number> {
  if (tabId !== undefined) return tabId;
  const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true, windowType: "normal" });
  if (tab?.id === undefined) throw new Error("No tab to capture");
  return tab.id;
}

function broadcast(event: VideoEvent): void {
  chrome.runtime.sendMessage(event).catch(() => undefined); // no panel open: nobody to tell
}

/**
 * Listens for the panel's `video/start` and `video/stop`. `server` gives the connected server's
 * URL and token, or null when there is none.
 */
export function registerTabVideo(server: () => Promise<{ url: string; token: string | null } | null>): void {
  chrome.runtime.onMessage.addListener((message: unknown, _sender, reply) => {
    const parsed = PanelVideoRequestSchema.safeParse(message);
    if (!parsed.success) return false;
    const request = parsed.data;
    (async () => {
      if (request.type === "video/stop") {
        const contexts = await chrome.runtime.getContexts({
          contextTypes: ["OFFSCREEN_DOCUMENT" as chrome.runtime.ContextType],
        });
        if (contexts.length) {
          await chrome.runtime.sendMessage(
            OffscreenCommandSchema.parse({ type: "video/release", target: "offscreen" }),
          );
        }
        return { ok: true };
      }
      const connected = await server();
      if (!connected) throw new Error("Not connected to the TabAgent server");
      const tabId = await targetTab(request.tabId);
      const streamId = await chrome.tabCapture.getMediaStreamId({ targetTabId: tabId });
      await ensureOffscreen();
      broadcast({ type: "video/state", state: "starting", detail: `tab ${tabId}` });
      await chrome.runtime.sendMessage(OffscreenCommandSchema.parse({
        type: "video/capture",
        target: "offscreen",
        streamId,
        serverUrl: connected.url,
        token: connected.token,
        settings: request.settings,
      }));
      return { ok: true };
    })().then(reply, (error: Error) => {
      broadcast({ type: "video/error", code: "start_failed", message: error.message });
      reply({ ok: false, error: error.message });
    });
    return true;
  });
}
