/**
 * Streams a video `MediaStream` (the captured tab) to the TabAgent server over WebRTC: frames drawn
 * onto an OffscreenCanvas at the chosen rate and size, encoded as JPEG or WebP, sent with the
 * server's own frame protocol (bundled from `server/webrtc/frame_protocol.ts`), and detections read
 * back from the `results` channel. Runs in the offscreen document; needs only DOM APIs.
 *
 * @example
 * ```ts
 * const streamer = await TabVideoStreamer.start(stream, { serverUrl, token, fps: 10, maxWidth: 960 }, {
 *   onResult: (result) => console.log(result.detections),
 * });
 * await streamer.stop();
 * ```
 * @module
 */
import {
  type FrameFormat,
  FRAMES_CHANNEL,
  FrameSender,
  RESULTS_CHANNEL,
} from "../../../server/webrtc/frame_protocol.ts";
import { type ResultMessage, ServerMessageSchema } from "../../../server/webrtc/results.ts";

/** How to capture and encode. */
export interface StreamOptions {
  serverUrl: string;
  token: string | null;
  /** Frames per second to capture (1..60). */
  fps: number;
  /** Frames wider than this are scaled down (pixels). */
  maxWidth: number;
  /** Encoder quality, 0..1. */
  quality?: number;
  format?: FrameFormat;
}

/** Live figures for the panel. */
export interface StreamStats {
  /** Frames sent per second, over the last second. */
  sentFps: number;
  /** Results received per second, over the last second. */
  resultFps: number;
  /** Capture → result back, for the last result (ms). */
  latencyMs: number | null;
  /** Frames dropped before sending (encoder or channel busy). */
  dropped: number;
  sent: number;
  results: number;
}

/** What the streamer reports. */
export interface StreamEvents {
  /** A result, with the frame it describes (the encoded bytes as sent). */
  onResult?(result: ResultMessage, frame: Blob | undefined): void;
  onError?(code: string, message: string): void;
  onStats?(stats: StreamStats): void;
  /** The connection ended by itself (server gone, session closed). */
  onEnded?(reason: string): void;
  /** Where the start is: "offering" (asking the server for a session), "connecting" (ICE, DTLS, SCTP). */
  onPhase?(phase: "offering" | "connecting"): void;
}

const PING_INTERVAL_MS = 5_000;
/**
 * Longest a start waits for its data channels (ms). On loopback they open in well under a second;
 * a browser reports a dead connection as "failed" only after about 30 s, so without this a start
 * that cannot connect would sit at "starting" with nothing to tell the user.
 */
export const SETUP_TIMEOUT_MS = 15_000;
/** Frames kept so a result can be drawn over the picture it describes. */
const KEPT_FRAMES = 8;

function mimeOf(format: FrameFormat): string {
  return format === "webp" ? "image/webp" : "image/jpeg";
}

/** A running stream. */
export class TabVideoStreamer {
  #pc: RTCPeerConnection;
  #frames: RTCDataChannel;
  #results: RTCDataChannel;
  #sender: FrameSender;
  #video: HTMLVideoElement;
  #canvas: OffscreenCanvas;
  #context: OffscreenCanvasRenderingContext2D;
  #options: Required<StreamOptions>;
  #events: StreamEvents;
  #sessionUrl: string;
  #headers: Record<string, string>;
  #timer?: ReturnType<typeof setTimeout>;
  #ping?: ReturnType<typeof setInterval>;
  #encoding = false;
  #seq = 0;
  #stopped = false;
  #kept = new Map<number, Blob>();
  #sentTimes: number[] = [];
  #resultTimes: number[] = [];
  #latencyMs: number | null = null;
  #encoderDropped = 0;
  #results_ = 0;

  private constructor(
    init: {
      pc: RTCPeerConnection;
      frames: RTCDataChannel;
      results: RTCDataChannel;
      video: HTMLVideoElement;
      sessionUrl: string;
      headers: Record<string, string>;
    },
    options: Required<StreamOptions>,
    events: StreamEvents,
  ) {
    this.#pc = init.pc;
    this.#frames = init.frames;
    this.#results = init.results;
    this.#video = init.video;
    this.#sessionUrl = init.sessionUrl;
    this.#headers = init.headers;
    this.#options = options;
    this.#events = events;
    this.#canvas = new OffscreenCanvas(16, 16);
    this.#context = this.#canvas.getContext("2d", { alpha: false })!;
    this.#sender = new FrameSender(this.#frames);
    this.#frames.onbufferedamountlow = () => this.#sender.drain();
    this.#results.onmessage = (event) => this.#onMessage(event.data);
    this.#pc.onconnectionstatechange = () => {
      const state = this.#pc.connectionState;
      if (state === "failed" || state === "closed") this.#end(`connection ${state}`);
    };
    this.#results.onclose = () => this.#end("the server closed the session");
  }

  /** Opens a session with the server and starts sending frames of `stream`. */
  static async start(
    stream: MediaStream,
    options: StreamOptions,
    events: StreamEvents = {},
  ): Promise<TabVideoStreamer> {
    const full: Required<StreamOptions> = {
      quality: 0.7,
      format: "jpeg",
      ...options,
      fps: Math.min(60, Math.max(1, options.fps)),
    };
    const base = full.serverUrl.replace(/\/+$/, "");
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (full.token) headers.authorization = `Bearer ${full.token}`;
    const pc = new RTCPeerConnection();
    const frames = pc.createDataChannel(FRAMES_CHANNEL, { ordered: false, maxRetransmits: 0 });
    frames.binaryType = "arraybuffer";
    const results = pc.createDataChannel(RESULTS_CHANNEL);
    // Candidates found before the session exists wait here, then go in one request.
    const early: RTCIceCandidateInit[] = [];
    let candidatesUrl: string | undefined;
    const postCandidates = (candidates: RTCIceCandidateInit[]) =>
      fetch(`${base}${candidatesUrl}`, { method: "POST", headers, body: JSON.stringify({ candidates }) })
        .then((response) => response.body?.cancel())
        .catch(() => undefined); // the session may be gone already; connection state reports that
    pc.onicecandidate = (event) => {
      const candidate = event.candidate ? event.candidate.toJSON() : { candidate: "", sdpMid: "0" };
      if (candidatesUrl) void postCandidates([candidate]);
      else early.push(candidate);
    };
    const opened = Promise.all([frames, results].map((channel) =>
      new Promise<void>((resolve, reject) => {
        channel.onopen = () => resolve();
        channel.onerror = () => reject(new Error(`data channel ${channel.label} failed`));
      })
    ));
    const failed = new Promise<never>((_, reject) => {
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed") reject(new Error("WebRTC connection to the server failed"));
      });
    });
    let setupTimer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      setupTimer = setTimeout(() =>
        reject(
          new Error(
            `No data channel to the server after ${SETUP_TIMEOUT_MS / 1000} s ` +
              `(ICE ${pc.iceConnectionState}, connection ${pc.connectionState}, ` +
              `channels ${frames.readyState}/${results.readyState})`,
          ),
        ), SETUP_TIMEOUT_MS);
    });
    try {
      events.onPhase?.("offering");
      await pc.setLocalDescription(await pc.createOffer());
      const response = await fetch(`${base}/v1/webrtc/sessions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription!.sdp }),
      });
      if (response.status !== 201) {
        const problem = await response.json().catch(() => ({})) as { detail?: string };
        throw new Error(problem.detail ?? `the server refused the session (HTTP ${response.status})`);
      }
      const answer = await response.json() as { id: string; sdp: string; candidates_url: string };
      candidatesUrl = answer.candidates_url;
      if (early.length) void postCandidates(early.splice(0));
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      events.onPhase?.("connecting");
      await Promise.race([opened, failed, timedOut]);
      clearTimeout(setupTimer);
      const video = document.createElement("video");
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      await video.play();
      const streamer = new TabVideoStreamer(
        { pc, frames, results, video, sessionUrl: `${base}/v1/webrtc/sessions/${answer.id}`, headers },
        full,
        events,
      );
      streamer.#schedule(0);
      streamer.#ping = setInterval(() => streamer.#send({ type: "ping" }), PING_INTERVAL_MS);
      return streamer;
    } catch (error) {
      clearTimeout(setupTimer);
      pc.close();
      throw error;
    }
  }

  #send(message: unknown): void {
    if (this.#results.readyState === "open") this.#results.send(JSON.stringify(message));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#tick(), delayMs);
  }

  #tick(): void {
    const interval = 1000 / this.#options.fps;
    const began = performance.now();
    if (this.#encoding) {
      // The encoder has not finished the previous frame: skip this one rather than queue it.
      this.#encoderDropped++;
    } else {
      void this.#capture();
    }
    this.#schedule(Math.max(0, interval - (performance.now() - began)));
  }

  async #capture(): Promise<void> {
    const video = this.#video;
    if (!video.videoWidth || !video.videoHeight) return;
    this.#encoding = true;
    try {
      const scale = Math.min(1, this.#options.maxWidth / video.videoWidth);
      const width = Math.max(1, Math.round(video.videoWidth * scale));
      const height = Math.max(1, Math.round(video.videoHeight * scale));
      if (this.#canvas.width !== width || this.#canvas.height !== height) {
        this.#canvas.width = width;
        this.#canvas.height = height;
      }
      const captureTimeMs = Date.now();
      this.#context.drawImage(video, 0, 0, width, height);
      const blob = await this.#canvas.convertToBlob({
        type: mimeOf(this.#options.format),
        quality: this.#options.quality,
      });
      if (this.#stopped) return;
      const seq = ++this.#seq;
      const bytes = new Uint8Array(await blob.arrayBuffer());
      this.#sender.send({ seq, captureTimeMs, width, height, format: this.#options.format }, bytes);
      this.#kept.set(seq, blob);
      for (const old of this.#kept.keys()) {
        if (this.#kept.size <= KEPT_FRAMES) break;
        this.#kept.delete(old);
      }
      this.#sentTimes.push(performance.now());
    } finally {
      this.#encoding = false;
    }
  }

  #onMessage(data: unknown): void {
    if (typeof data !== "string") return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch (error) {
      this.#events.onError?.("bad_message", (error as Error).message);
      return;
    }
    const parsed = ServerMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.#events.onError?.("bad_message", parsed.error.issues[0]?.message ?? "invalid message");
      return;
    }
    const message = parsed.data;
    if (message.type === "error") this.#events.onError?.(message.code, message.message);
    if (message.type !== "result") return;
    this.#results_++;
    this.#latencyMs = Date.now() - message.capture_time_ms;
    this.#resultTimes.push(performance.now());
    this.#events.onResult?.(message, this.#kept.get(message.seq));
    this.#events.onStats?.(this.stats());
  }

  /** The figures now. */
  stats(): StreamStats {
    const now = performance.now();
    const recent = (times: number[]) => {
      while (times.length && now - times[0] > 1000) times.shift();
      return times.length;
    };
    return {
      sentFps: recent(this.#sentTimes),
      resultFps: recent(this.#resultTimes),
      latencyMs: this.#latencyMs,
      dropped: this.#sender.stats.dropped + this.#encoderDropped,
      sent: this.#sender.stats.sent,
      results: this.#results_,
    };
  }

  #end(reason: string): void {
    if (this.#stopped) return;
    void this.stop().then(() => this.#events.onEnded?.(reason));
  }

  /** Stops capturing, closes the session on the server and the peer connection. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#ping);
    this.#video.pause();
    this.#video.srcObject = null;
    this.#kept.clear();
    await fetch(this.#sessionUrl, { method: "DELETE", headers: this.#headers })
      .then((response) => response.body?.cancel())
      .catch(() => undefined); // the server may be gone; the session then ends by its idle timeout
    this.#pc.close();
  }
}
