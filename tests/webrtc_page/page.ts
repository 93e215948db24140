/// <reference lib="dom" />
/**
 * The page the Chromium WebRTC test opens: it paints `skimage.data.astronaut()` into a canvas,
 * streams the canvas with the extension's own {@link TabVideoStreamer}, and draws each result's
 * boxes over the picture. Bundled by the test with esbuild.
 * @module
 */
import { TabVideoStreamer } from "../../extension/src/video/streamer.ts";
import type { ResultMessage } from "../../server/webrtc/results.ts";

interface PageState {
  results: ResultMessage[];
  errors: { code: string; message: string }[];
  start(serverUrl: string, token: string): Promise<void>;
  stop(): Promise<void>;
}

const state = { results: [], errors: [] } as unknown as PageState;
(globalThis as unknown as { webrtcPage: PageState }).webrtcPage = state;
let streamer: TabVideoStreamer | undefined;

state.start = async (serverUrl, token) => {
  const image = new Image();
  image.src = "/astronaut.jpg";
  await image.decode();
  const source = document.querySelector<HTMLCanvasElement>("#source")!;
  source.width = image.naturalWidth;
  source.height = image.naturalHeight;
  const context = source.getContext("2d")!;
  const overlay = document.querySelector<HTMLCanvasElement>("#overlay")!;
  overlay.width = source.width;
  overlay.height = source.height;
  const draw = overlay.getContext("2d")!;
  // A canvas stream only carries frames when the canvas changes: repaint it at the capture rate.
  setInterval(() => context.drawImage(image, 0, 0), 50);
  context.drawImage(image, 0, 0);
  streamer = await TabVideoStreamer.start(source.captureStream(20), {
    serverUrl,
    token,
    fps: 10,
    maxWidth: 960,
  }, {
    onResult(result) {
      state.results.push(result);
      draw.clearRect(0, 0, overlay.width, overlay.height);
      draw.lineWidth = 4;
      draw.strokeStyle = "#00e676";
      for (const { box } of result.detections) {
        draw.strokeRect(
          box.x * overlay.width,
          box.y * overlay.height,
          box.width * overlay.width,
          box.height * overlay.height,
        );
      }
      overlay.dataset.detections = String(result.detections.length);
    },
    onError(code, message) {
      state.errors.push({ code, message });
    },
  });
};

state.stop = async () => {
  await streamer?.stop();
};
