/**
 * The offscreen document: consumes the tab-capture stream id the service worker got, and streams
 * the tab to the server with {@link TabVideoStreamer}; results go to the panel as runtime messages.
 * @module
 */
import { OffscreenCommandSchema, type VideoEvent } from "./video/messages.ts";
import { TabVideoStreamer } from "./video/streamer.ts";

let streamer: TabVideoStreamer | null = null;
let media: MediaStream | null = null;

function broadcast(event: VideoEvent): void {
  chrome.runtime.sendMessage(event).catch(() => undefined); // no panel open: nobody to tell
}

function dataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result as string);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function release(detail: string): Promise<void> {
  if (!streamer && !media) return;
  const current = streamer;
  streamer = null;
  await current?.stop();
  for (const track of media?.getTracks() ?? []) track.stop();
  media = null;
  broadcast({ type: "video/state", state: "stopped", detail });
}

chrome.runtime.onMessage.addListener((message: unknown, _sender, reply) => {
  const parsed = OffscreenCommandSchema.safeParse(message);
  if (!parsed.success) return false;
  const command = parsed.data;
  (async () => {
    await release("restarting");
    if (command.type === "video/release") return;
    broadcast({ type: "video/state", state: "starting", detail: "capturing the tab" });
    media = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { mandatory: { chromeMediaSource: "tab", chromeMediaSourceId: command.streamId } },
    } as unknown as MediaStreamConstraints);
    streamer = await TabVideoStreamer.start(media, {
      serverUrl: command.serverUrl,
      token: command.token,
      ...command.settings,
    }, {
      onResult: (result, frame) => {
        const stats = streamer?.stats();
        if (!stats) return;
        const send = (url?: string) => broadcast({ type: "video/result", result, frame: url, stats });
        if (frame) dataUrl(frame).then(send, () => send());
        else send();
      },
      onError: (code, text) => broadcast({ type: "video/error", code, message: text }),
      onEnded: (reason) => void release(reason),
      onPhase: (phase) =>
        broadcast({
          type: "video/state",
          state: "starting",
          detail: phase === "offering" ? "asking the server for a session" : "connecting to the server",
        }),
    });
    broadcast({ type: "video/state", state: "streaming", detail: `${command.settings.fps} fps` });
  })().then(() => reply({ ok: true }), (error: Error) => {
    broadcast({ type: "video/error", code: "capture_failed", message: error.message });
    void release(error.message);
    reply({ ok: false, error: error.message });
  });
  return true;
});
