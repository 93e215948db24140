/**
 * "Watch this tab": the panel's start/stop for tab video, a preview of the frames the server saw
 * with its detections drawn over them, and the live fps and latency. The capture itself runs in
 * the offscreen document (see `video/`); this section only asks for it and draws what comes back.
 */
import { h } from "../lib/dom.ts";
import { type CaptureSettings, CaptureSettingsSchema, type VideoEvent, VideoEventSchema } from "../video/messages.ts";
import type { PanelContext, PanelSection } from "./context.ts";

const SETTINGS: CaptureSettings = CaptureSettingsSchema.parse({});

/** Draws `frame` (a data URL) with each detection's box and keypoints over it. */
async function drawResult(canvas: HTMLCanvasElement, event: Extract<VideoEvent, { type: "video/result" }>) {
  const context = canvas.getContext("2d")!;
  const { result } = event;
  if (event.frame) {
    const image = new Image();
    image.src = event.frame;
    await image.decode();
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    context.drawImage(image, 0, 0);
  } else {
    canvas.width = result.width;
    canvas.height = result.height;
    context.clearRect(0, 0, canvas.width, canvas.height);
  }
  const w = canvas.width, lineWidth = Math.max(2, Math.round(w / 320));
  context.lineWidth = lineWidth;
  context.strokeStyle = "#00e676";
  context.fillStyle = "#00e676";
  context.font = `${lineWidth * 7}px system-ui, sans-serif`;
  for (const detection of result.detections) {
    const { x, y, width, height } = detection.box;
    context.strokeRect(x * w, y * canvas.height, width * w, height * canvas.height);
    context.fillText(`${detection.label} ${Math.round(detection.score * 100)}%`, x * w, y * canvas.height - lineWidth);
    for (const point of detection.keypoints) {
      context.fillRect(point.x * w - lineWidth, point.y * canvas.height - lineWidth, lineWidth * 2, lineWidth * 2);
    }
  }
  canvas.dataset.detections = String(result.detections.length);
  canvas.dataset.seq = String(result.seq);
}

/** The tab video section. */
export const videoSection: PanelSection = {
  id: "video",
  mount(context: PanelContext) {
    if (context.env.kind !== "extension") return; // the web app has no tabs to capture
    const button = h("button", { type: "button", id: "video-toggle", "aria-pressed": "false" }, "Watch this tab");
    const status = h("p", { className: "video-status", id: "video-status", "aria-live": "polite" });
    const stats = h("p", { className: "video-stats", id: "video-stats" });
    const canvas = h("canvas", {
      id: "video-preview",
      className: "video-preview",
      hidden: true,
      role: "img",
      "aria-label": "What the server sees, with its detections",
    });
    context.regions.context.append(h("div", { className: "video" }, button, status, stats, canvas));
    let streaming = false;
    const setStreaming = (on: boolean) => {
      streaming = on;
      button.textContent = on ? "Stop watching" : "Watch this tab";
      button.setAttribute("aria-pressed", String(on));
      canvas.hidden = !on && !canvas.dataset.seq;
    };
    button.addEventListener("click", async () => {
      // Read before the request: the "streaming" state event arrives before the start's reply, and
      // a start must not then be taken for a stop.
      const stopping = streaming;
      const request = stopping ? { type: "video/stop" } : { type: "video/start", settings: SETTINGS };
      status.textContent = stopping ? "Stopping…" : "Starting…";
      const reply = await chrome.runtime.sendMessage(request) as { ok: boolean; error?: string } | undefined;
      if (reply && !reply.ok) status.textContent = reply.error ?? "Failed";
      else if (stopping) setStreaming(false);
    });
    let drawing = false;
    // An error stays on screen when the "stopped" that follows it arrives.
    let failed = false;
    chrome.runtime.onMessage.addListener((message: unknown) => {
      const parsed = VideoEventSchema.safeParse(message);
      if (!parsed.success) return false;
      const event = parsed.data;
      if (event.type === "video/state") {
        if (event.state === "starting") failed = false;
        if (!(failed && event.state === "stopped")) {
          status.textContent = event.state === "streaming"
            ? `Watching (${event.detail})`
            : `${event.state} (${event.detail})`;
        }
        setStreaming(event.state !== "stopped");
      } else if (event.type === "video/error") {
        failed = true;
        status.textContent = `${event.code}: ${event.message}`;
      } else {
        const { resultFps, latencyMs, sentFps, dropped } = event.stats;
        stats.textContent = `${resultFps} fps · ${latencyMs ?? "–"} ms · sent ${sentFps}/s · dropped ${dropped}`;
        canvas.hidden = false;
        // Latest result wins here too: a result that arrives while one is drawn is skipped.
        if (!drawing) {
          drawing = true;
          void drawResult(canvas, event).finally(() => drawing = false);
        }
      }
      return false;
    });
  },
};
