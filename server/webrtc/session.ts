/**
 * One WebRTC session: a werift peer connection answering a client's offer, the `frames` channel
 * feeding a {@link FrameReassembler} and a {@link LatestFrameScheduler}, and the `results` channel
 * carrying detections back as JSON.
 * @module
 */
import { RTCIceCandidate, RTCPeerConnection } from "werift";
import type { RTCDataChannel } from "werift";
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { FrameDetector, SessionDetector } from "./detector.ts";
import { type EncodedFrame, FrameReassembler, FRAMES_CHANNEL, RESULTS_CHANNEL } from "./frame_protocol.ts";
import { LatestFrameScheduler } from "./frame_scheduler.ts";
import { ignoreRetransmittedHandshakes } from "./dtls_retransmissions.ts";
import { answersFromCheckedAddress, followBrowser, localAddresses, sessionLevelIceLite } from "./ice_lite.ts";
import { ClientMessageSchema, type ServerMessage } from "./results.ts";

/** Why a session ended. */
export type CloseReason = "deleted" | "idle" | "peer_closed" | "peer_failed" | "shutdown";

/** A candidate as browsers serialise `RTCIceCandidate.toJSON()`; an empty `candidate` ends the list. */
export interface CandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** What a session reports about itself. */
export interface SessionInfo {
  id: string;
  state: "connecting" | "connected" | "closed";
  connection_state: string;
  ice_state: string;
  created_at: string;
  idle_ms: number;
  /** Offer received to both data channels open (ms), once they are. */
  setup_ms: number | null;
  frames: {
    received: number;
    detected: number;
    lost: number;
    late: number;
    malformed: number;
    oversized: number;
    superseded: number;
    failed: number;
  };
  results_dropped: number;
  mdns_candidates_ignored: number;
  close_reason: CloseReason | null;
}

/** Hooks a session reports through (the manager's metrics). */
export interface SessionEvents {
  onFrameRejected?(reason: "oversized" | "malformed"): void;
  onResult?(frameToResultMs: number): void;
  onOpen?(setupMs: number): void;
}

/** Largest number of bytes waiting in the results channel before results are dropped (client not reading). */
const RESULTS_HIGH_WATER_BYTES = 1024 * 1024;
/** Longest the answer waits for the server's own ICE candidates before it goes out without them (ms). */
const GATHER_WAIT_MS = 2_000;

/** Whether a candidate hides its address behind an mDNS name, which the server cannot resolve. */
function isMdnsCandidate(candidate: string): boolean {
  return /\s[^\s]+\.local\s/i.test(candidate);
}

/** A session with one client. Create with {@link WebRtcSession.answer}. */
export class WebRtcSession {
  readonly id: string;
  readonly createdAt = new Date();
  /** Resolves with the reason once the session is closed. */
  readonly closed: Promise<CloseReason>;
  #pc: RTCPeerConnection;
  #log: Logger;
  #detector: () => FrameDetector | undefined;
  #sessionDetector?: { from: FrameDetector; detector: SessionDetector };
  #events: SessionEvents;
  #lastActivity = performance.now();
  #began = performance.now();
  #setupMs: number | null = null;
  #candidates: CandidateInit[] = [];
  #gathered = false;
  #candidateListeners = new Set<(candidate: CandidateInit | null) => void>();
  #reassembler: FrameReassembler;
  #scheduler: LatestFrameScheduler;
  #frames?: RTCDataChannel;
  #results?: RTCDataChannel;
  #abort = new AbortController();
  #closeReason: CloseReason | null = null;
  #resolveClosed: (reason: CloseReason) => void;
  #detected = 0;
  #failed = 0;
  #resultsDropped = 0;
  #mdnsIgnored = 0;
  #lastResultSeq?: number;
  /** This machine's addresses when the session began: a browser there gets the fast ICE path. */
  #localAddresses = new Set(localAddresses());

  private constructor(
    id: string,
    options: { detector: () => FrameDetector | undefined; log: Logger; events?: SessionEvents },
  ) {
    this.id = id;
    this.#log = options.log;
    this.#detector = options.detector;
    this.#events = options.events ?? {};
    const closed = Promise.withResolvers<CloseReason>();
    this.closed = closed.promise;
    this.#resolveClosed = closed.resolve;
    this.#reassembler = new FrameReassembler({
      onReject: (reason, detail) => {
        this.#events.onFrameRejected?.(reason);
        this.#log.debug("frame message dropped", { session: id, reason, detail });
      },
    });
    this.#scheduler = new LatestFrameScheduler((frame, queuedAt) => this.#detect(frame, queuedAt), {
      onError: (error, frame) => {
        this.#failed++;
        this.#log.warn("frame detection failed", { session: id, seq: frame.seq, error });
      },
    });
    this.#pc = new RTCPeerConnection({
      // ICE lite, as media servers do: the server only answers the client's checks and takes its
      // nomination. A browser hides its addresses behind mDNS names the server cannot resolve, so a
      // full agent here would have nothing to check when it starts and give up; a lite agent learns
      // the client's address from its first check (peer-reflexive) and saves the check pacing too.
      iceLite: true,
      // No STUN: the server is reached on its own addresses (werift would otherwise ask Google's).
      iceServers: [],
      // Loopback too, so a machine with no network still connects to a browser on itself.
      iceAdditionalHostAddresses: ["127.0.0.1"],
      iceFilterStunResponse: answersFromCheckedAddress(this.#localAddresses),
    });
    this.#pc.onIceCandidate.subscribe((candidate) => {
      const init: CandidateInit | null = candidate ? candidate.toJSON() as CandidateInit : null;
      if (init) this.#candidates.push(init);
      else this.#gathered = true;
      for (const listener of this.#candidateListeners) listener(init);
    });
    this.#pc.iceGatheringStateChange.subscribe((state) => {
      if (state === "complete" && !this.#gathered) {
        this.#gathered = true;
        for (const listener of this.#candidateListeners) listener(null);
      }
    });
    this.#pc.connectionStateChange.subscribe((state) => {
      this.#log.debug("connection state", { session: id, state });
      this.#touch();
      if (state === "failed") void this.close("peer_failed");
      else if (state === "closed") void this.close("peer_closed");
    });
    this.#pc.onDataChannel.subscribe((channel) => this.#adopt(channel));
  }

  /**
   * Answers a client's SDP offer. mDNS (`.local`) candidates in it are left out: the client's
   * checks reach the server's own candidates and are learned as peer-reflexive ones.
   */
  static async answer(
    id: string,
    offerSdp: string,
    options: { detector: () => FrameDetector | undefined; log: Logger; events?: SessionEvents },
  ): Promise<{ session: WebRtcSession; sdp: string }> {
    const session = new WebRtcSession(id, options);
    try {
      const sdp = await session.#answer(offerSdp);
      return { session, sdp };
    } catch (error) {
      await session.close("peer_failed");
      throw error;
    }
  }

  async #answer(offerSdp: string): Promise<string> {
    if (!/^v=0\r?\n/.test(offerSdp) || !/^m=application /m.test(offerSdp)) {
      throw new TabAgentError("bad_request", "The offer is not an SDP offer with a data channel (m=application)");
    }
    const lines = offerSdp.split(/\r?\n/).filter((line) => {
      if (line.startsWith("a=candidate:") && isMdnsCandidate(line.slice(2) + " ")) {
        this.#mdnsIgnored++;
        return false;
      }
      return true;
    });
    try {
      await this.#pc.setRemoteDescription({ type: "offer", sdp: lines.join("\r\n") });
    } catch (error) {
      throw new TabAgentError("bad_request", `The SDP offer was refused: ${(error as Error).message}`, {}, {
        cause: error,
      });
    }
    for (const transport of this.#pc.iceTransports) {
      followBrowser(transport.connection, {
        connectOnFirstCheck: this.#localAddresses,
        onSwitch: (to, from) =>
          this.#log.debug("ice pair renominated", {
            session: this.id,
            from: from.toJSON().remoteCandidate,
            to: to.toJSON().remoteCandidate,
          }),
      });
    }
    // The server takes the DTLS client role (a=setup:active), as werift does by default. werift's
    // DTLS client waits a fixed 100 ms before its ClientHello (so a peer's DTLS server is surely up);
    // with the server connected on the client's first check, that wait runs while the client
    // finishes its own ICE instead of after it. As DTLS server, a werift client would add its own
    // 100 ms after its ICE (measured: about 20 ms slower on loopback).
    for (const transport of this.#pc.dtlsTransports) {
      transport.role = "client";
      ignoreRetransmittedHandshakes(
        transport,
        (messageSeq) => this.#log.debug("dtls retransmission ignored", { session: this.id, message_seq: messageSeq }),
      );
    }
    const answer = await this.#pc.createAnswer();
    await this.#pc.setLocalDescription(answer);
    if (this.#pc.iceGatheringState !== "complete") {
      const gathered = Promise.withResolvers<void>();
      const timer = setTimeout(gathered.resolve, GATHER_WAIT_MS);
      const listener = (candidate: CandidateInit | null) => candidate === null && gathered.resolve();
      this.#candidateListeners.add(listener);
      await gathered.promise;
      clearTimeout(timer);
      this.#candidateListeners.delete(listener);
    }
    return sessionLevelIceLite(this.#pc.localDescription!.sdp);
  }

  /** Adds the client's trickled candidates; mDNS ones are counted and skipped. */
  async addCandidates(candidates: CandidateInit[]): Promise<void> {
    this.#touch();
    for (const init of candidates) {
      if (init.candidate !== "" && isMdnsCandidate(init.candidate + " ")) {
        this.#mdnsIgnored++;
        continue;
      }
      try {
        await this.#pc.addIceCandidate(
          init.candidate === "" ? undefined : new RTCIceCandidate({
            candidate: init.candidate,
            sdpMid: init.sdpMid ?? undefined,
            sdpMLineIndex: init.sdpMLineIndex ?? undefined,
          }),
        );
      } catch (error) {
        throw new TabAgentError("bad_request", `ICE candidate refused: ${(error as Error).message}`, {
          candidate: init.candidate,
        }, { cause: error });
      }
    }
  }

  /**
   * Calls `listener` with every server candidate gathered so far and each later one; `null` once
   * gathering is complete (then no more calls). Returns the unsubscribe function.
   */
  watchCandidates(listener: (candidate: CandidateInit | null) => void): () => void {
    for (const candidate of this.#candidates) listener(candidate);
    if (this.#gathered || this.#closeReason) {
      listener(null);
      return () => {};
    }
    this.#candidateListeners.add(listener);
    return () => this.#candidateListeners.delete(listener);
  }

  /** Time since the client last showed a sign of life (ms). */
  get idleMs(): number {
    return performance.now() - this.#lastActivity;
  }

  /** Whether the session has been closed. */
  get isClosed(): boolean {
    return this.#closeReason !== null;
  }

  #touch(): void {
    this.#lastActivity = performance.now();
  }

  #adopt(channel: RTCDataChannel): void {
    this.#touch();
    if (channel.label === FRAMES_CHANNEL && !this.#frames) {
      this.#frames = channel;
      channel.onMessage.subscribe((data) => {
        this.#touch();
        if (typeof data === "string") {
          this.#reassembler.stats.malformed++;
          this.#events.onFrameRejected?.("malformed");
          return;
        }
        const frame = this.#reassembler.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        if (frame) this.#scheduler.offer(frame);
      });
    } else if (channel.label === RESULTS_CHANNEL && !this.#results) {
      this.#results = channel;
      channel.onMessage.subscribe((data) => {
        this.#touch();
        this.#onClientMessage(data);
      });
    } else {
      this.#log.warn("unexpected data channel closed", { session: this.id, label: channel.label });
      channel.close();
      return;
    }
    // A client that closes its peer connection resets its channels' streams; that is its goodbye
    // (werift sends no DTLS close_notify, and a browser may not get one out before it is gone).
    channel.stateChanged.subscribe((state) => {
      if (state === "closed") void this.close("peer_closed");
    });
    if (this.#frames && this.#results && this.#setupMs === null) {
      const whenOpen = (c: RTCDataChannel) =>
        c.readyState === "open"
          ? Promise.resolve()
          : new Promise<void>((resolve) => c.stateChanged.once(() => resolve()));
      void Promise.all([whenOpen(this.#frames), whenOpen(this.#results)]).then(() => {
        if (this.#setupMs !== null) return;
        this.#setupMs = performance.now() - this.#began;
        this.#events.onOpen?.(this.#setupMs);
      });
    }
  }

  #onClientMessage(data: string | Uint8Array): void {
    let parsed;
    try {
      parsed = ClientMessageSchema.safeParse(
        JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)),
      );
    } catch (error) {
      this.#send({ type: "error", code: "bad_request", message: `results channel: ${(error as Error).message}` });
      return;
    }
    if (!parsed.success) {
      this.#send({ type: "error", code: "validation_failed", message: parsed.error.issues[0]?.message ?? "invalid" });
      return;
    }
    if (parsed.data.type === "ping") this.#send({ type: "pong", id: parsed.data.id });
  }

  #send(message: ServerMessage): void {
    const channel = this.#results;
    if (!channel || channel.readyState !== "open" || channel.bufferedAmount > RESULTS_HIGH_WATER_BYTES) {
      this.#resultsDropped++;
      return;
    }
    channel.send(JSON.stringify(message));
  }

  #skipped(seq: number): number {
    const previous = this.#lastResultSeq;
    this.#lastResultSeq = seq;
    return previous === undefined ? 0 : Math.max(0, seq - previous - 1);
  }

  async #detect(frame: EncodedFrame, queuedAt: number): Promise<void> {
    const detector = this.#detector();
    if (!detector?.available) {
      this.#failed++;
      this.#send({
        type: "error",
        seq: frame.seq,
        code: "unavailable",
        message: "No vision model is available: the ML service is not running",
      });
      return;
    }
    if (detector.session && this.#sessionDetector?.from !== detector) {
      this.#sessionDetector?.detector.close();
      this.#sessionDetector = { from: detector, detector: detector.session() };
    }
    const started = performance.now();
    const found = await (this.#sessionDetector?.detector ?? detector).detect(frame, this.#abort.signal);
    const done = performance.now();
    if (this.isClosed) return;
    this.#detected++;
    this.#send({
      type: "result",
      seq: frame.seq,
      capture_time_ms: frame.captureTimeMs,
      width: frame.width,
      height: frame.height,
      model: found.model,
      detections: found.detections,
      timings: {
        queue_ms: round(started - queuedAt),
        detect_ms: round(done - started),
        ...(found.inferenceMs !== undefined ? { inference_ms: round(found.inferenceMs) } : {}),
      },
      skipped: this.#skipped(frame.seq),
    });
    this.#events.onResult?.(done - queuedAt);
  }

  /** What the session looks like now. */
  info(): SessionInfo {
    const r = this.#reassembler.stats;
    return {
      id: this.id,
      state: this.#closeReason ? "closed" : this.#setupMs !== null ? "connected" : "connecting",
      connection_state: this.#pc.connectionState,
      ice_state: this.#pc.iceConnectionState,
      created_at: this.createdAt.toISOString(),
      idle_ms: Math.round(this.idleMs),
      setup_ms: this.#setupMs === null ? null : round(this.#setupMs),
      frames: {
        received: r.frames,
        detected: this.#detected,
        lost: r.lost,
        late: r.late,
        malformed: r.malformed,
        oversized: r.oversized,
        superseded: this.#scheduler.stats.superseded,
        failed: this.#failed,
      },
      results_dropped: this.#resultsDropped,
      mdns_candidates_ignored: this.#mdnsIgnored,
      close_reason: this.#closeReason,
    };
  }

  /** Closes the peer connection and cancels the frame in the detector; idempotent. */
  async close(reason: CloseReason): Promise<void> {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    this.#abort.abort(new TabAgentError("cancelled", `session ${this.id} closed (${reason})`));
    for (const listener of this.#candidateListeners) listener(null);
    this.#candidateListeners.clear();
    await this.#scheduler.close();
    this.#sessionDetector?.detector.close();
    await this.#pc.close();
    this.#log.info("webrtc session closed", { session: this.id, reason });
    this.#resolveClosed(reason);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
