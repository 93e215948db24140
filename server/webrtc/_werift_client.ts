/**
 * A WebRTC client on werift that speaks the server's signaling and frame protocol the way the
 * extension does: for the tests and the benchmark (no browser needed).
 * @module
 */
import { RTCPeerConnection } from "werift";
import type { RTCDataChannel } from "werift";
import { type FrameHeader, FRAMES_CHANNEL, FrameSender, RESULTS_CHANNEL } from "./frame_protocol.ts";
import { type ServerMessage, ServerMessageSchema } from "./results.ts";

/** Sends an HTTP request to the server: `app.request` or a `fetch` against its URL. */
export type Requester = (path: string, init?: RequestInit) => Promise<Response>;

/** A connected client. */
export interface WeriftClient {
  id: string;
  pc: RTCPeerConnection;
  frames: RTCDataChannel;
  results: RTCDataChannel;
  sender: FrameSender;
  /** Offer posted to both channels open (ms). */
  setupMs: number;
  /** When each setup step ended, from the offer's creation (ms): answer, ice, dtls, open. */
  phases: SetupPhases;
  /** Every message the server sent on the results channel, parsed. */
  messages: ServerMessage[];
  /** Resolves with the next server message that `match` accepts. */
  next(match: (message: ServerMessage) => boolean): Promise<ServerMessage>;
  sendFrame(header: FrameHeader, data: Uint8Array): boolean;
  /** Sends raw bytes on the frames channel (fault tests). */
  sendRaw(message: Uint8Array | string): void;
  close(): Promise<void>;
}

/** Setup steps' end times from the offer's creation (ms). */
export interface SetupPhases {
  /** The server's answer applied. */
  answer?: number;
  /** ICE connected. */
  ice?: number;
  /** DTLS connected (and SCTP started). */
  dtls?: number;
  /** Both data channels open. */
  open?: number;
}

/** Records the ICE and DTLS steps of `pc` into `phases`, relative to `began`. */
export function watchPhases(pc: RTCPeerConnection, began: number, phases: SetupPhases): void {
  pc.iceConnectionStateChange.subscribe((state) => {
    // werift also reports "completed" when its own gathering ends, before any check: not a step.
    if (state === "connected") phases.ice ??= performance.now() - began;
  });
  pc.connectionStateChange.subscribe((state) => {
    if (state === "connected") phases.dtls ??= performance.now() - began;
  });
}

function whenOpen(channel: RTCDataChannel): Promise<void> {
  if (channel.readyState === "open") return Promise.resolve();
  return new Promise((resolve) => channel.onopen = () => resolve());
}

/** The frame protocol's sender on a werift channel (which sends Buffers, not Uint8Arrays as browsers do). */
function frameSender(frames: RTCDataChannel): FrameSender {
  const sender = new FrameSender({
    get bufferedAmount() {
      return frames.bufferedAmount;
    },
    get bufferedAmountLowThreshold() {
      return frames.bufferedAmountLowThreshold;
    },
    set bufferedAmountLowThreshold(value: number) {
      frames.bufferedAmountLowThreshold = value;
    },
    get readyState() {
      return frames.readyState;
    },
    send: (message) => frames.send(Buffer.from(message.buffer, message.byteOffset, message.byteLength)),
  });
  frames.bufferedAmountLow.subscribe(() => sender.drain());
  return sender;
}

/**
 * Opens a session: offer posted, server candidates from the answer, own candidates trickled.
 *
 * @example
 * ```ts
 * const client = await connectWeriftClient((path, init) => app.request(path, init), { authorization });
 * ```
 */
export async function connectWeriftClient(
  request: Requester,
  headers: Record<string, string>,
): Promise<WeriftClient> {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const frames = pc.createDataChannel(FRAMES_CHANNEL, { ordered: false, maxRetransmits: 0 });
  const results = pc.createDataChannel(RESULTS_CHANNEL);
  const messages: ServerMessage[] = [];
  const waiters = new Set<{ match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }>();
  results.onMessage.subscribe((data) => {
    const message = ServerMessageSchema.parse(JSON.parse(typeof data === "string" ? data : data.toString()));
    messages.push(message);
    for (const waiter of waiters) {
      if (waiter.match(message)) {
        waiters.delete(waiter);
        waiter.resolve(message);
      }
    }
  });
  const failed = new Promise<never>((_, reject) =>
    pc.connectionStateChange.subscribe((state) => {
      if (state === "failed" || state === "closed") reject(new Error(`connection ${state} before the channels opened`));
    })
  );
  const opened = Promise.race([Promise.all([whenOpen(frames), whenOpen(results)]), failed]);
  opened.catch(() => undefined); // awaited below unless the offer is refused first
  const began = performance.now();
  const phases: SetupPhases = {};
  watchPhases(pc, began, phases);
  await pc.setLocalDescription(await pc.createOffer());
  const response = await request("/v1/webrtc/sessions", {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription!.sdp }),
  });
  if (response.status !== 201) {
    await pc.close();
    throw new Error(`offer refused: ${response.status} ${await response.text()}`);
  }
  const answer = await response.json() as { id: string; sdp: string };
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  phases.answer = performance.now() - began;
  await opened;
  const setupMs = performance.now() - began;
  phases.open = setupMs;
  const sender = frameSender(frames);
  return {
    id: answer.id,
    pc,
    frames,
    results,
    sender,
    setupMs,
    phases,
    messages,
    next(match) {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.add({ match, resolve }));
    },
    sendFrame: (header, data) => sender.send(header, data),
    sendRaw: (message) => frames.send(typeof message === "string" ? message : Buffer.from(message)),
    close: () => pc.close(),
  };
}
