/**
 * The WebRTC component: owns every session, enforces the session limit and the idle timeout,
 * reports its state to `/v1/health` and `/metrics`, and closes everything on shutdown.
 * @module
 */
import { RTCDtlsTransport } from "werift";
import { TabAgentError } from "../errors/mod.ts";
import type { Component, ComponentHealth } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { MetricsRegistry } from "../metrics/mod.ts";
import type { FrameDetector } from "./detector.ts";
import { type CloseReason, type SessionInfo, WebRtcSession } from "./session.ts";

/** Settings of the WebRTC component. */
export interface WebRtcOptions {
  /** Most sessions open at once; one more is refused with 429. */
  maxSessions: number;
  /** A session with no sign of life from its client for this long is closed (ms). */
  idleTimeoutMs: number;
  log: Logger;
  metrics?: MetricsRegistry;
  /** The vision model frames go to; read per frame, so it may appear after start. */
  detector?: () => FrameDetector | undefined;
}

const SETUP_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5];

/**
 * Creates, finds and closes sessions.
 *
 * @example
 * ```ts
 * const webrtc = lifecycle.add(new WebRtcSessions({ maxSessions: 8, idleTimeoutMs: 30_000, log }));
 * const { session, sdp } = await webrtc.create(offer.sdp);
 * await webrtc.delete(session.id);
 * ```
 */
export class WebRtcSessions implements Component {
  readonly name = "webrtc";
  readonly critical = false;
  #options: WebRtcOptions;
  #sessions = new Map<string, WebRtcSession>();
  #creating = 0;
  #sweep?: ReturnType<typeof setInterval>;
  #stopped = false;
  #metrics: {
    closed: (reason: CloseReason) => void;
    rejected: (reason: string) => void;
    setup: (seconds: number) => void;
    result: (seconds: number) => void;
  };

  constructor(options: WebRtcOptions) {
    this.#options = options;
    const metrics = options.metrics;
    if (!metrics) {
      this.#metrics = { closed: () => {}, rejected: () => {}, setup: () => {}, result: () => {} };
      return;
    }
    metrics.gauge("tabagent_webrtc_sessions", "Open WebRTC sessions", [], (g) => g.set(undefined, this.size));
    metrics.gauge("tabagent_webrtc_sessions_by_state", "Open WebRTC sessions, connecting or connected", [
      "state",
    ], (g) => {
      const counts = this.#countByState();
      for (const state of ["connecting", "connected"] as const) g.set({ state }, counts[state]);
    });
    const closed = metrics.counter("tabagent_webrtc_sessions_closed_total", "WebRTC sessions closed, by reason", [
      "reason",
    ]);
    const rejected = metrics.counter(
      "tabagent_webrtc_frame_messages_rejected_total",
      "Frame messages dropped for a bad header, by reason",
      ["reason"],
    );
    const setup = metrics.histogram(
      "tabagent_webrtc_setup_seconds",
      "Offer received to both data channels open",
      [],
      SETUP_BUCKETS_SECONDS,
    );
    const result = metrics.histogram(
      "tabagent_webrtc_frame_to_result_seconds",
      "Frame complete on the server to its result sent",
    );
    this.#metrics = {
      closed: (reason) => closed.inc({ reason }),
      rejected: (reason) => rejected.inc({ reason }),
      setup: (seconds) => setup.observe(undefined, seconds),
      result: (seconds) => result.observe(undefined, seconds),
    };
  }

  /** Open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Makes the DTLS certificate (once per process) so the first session does not pay for it. */
  async start(): Promise<void> {
    this.#stopped = false;
    await RTCDtlsTransport.SetupCertificate();
    const every = Math.max(50, Math.min(1_000, Math.floor(this.#options.idleTimeoutMs / 4)));
    const sweep = setInterval(() => this.#closeIdle(), every);
    Deno.unrefTimer(sweep as unknown as number);
    this.#sweep = sweep;
  }

  /** Closes every session. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    await Promise.all([...this.#sessions.values()].map((session) => session.close("shutdown")));
  }

  #countByState(): Record<"connecting" | "connected", number> {
    const counts = { connecting: 0, connected: 0 };
    for (const session of this.#sessions.values()) {
      const state = session.info().state;
      if (state !== "closed") counts[state]++;
    }
    return counts;
  }

  health(): ComponentHealth {
    const detector = this.#options.detector?.();
    const counts = this.#countByState();
    const sessions = `${this.size}/${this.#options.maxSessions} sessions` +
      (this.size ? ` (${counts.connected} connected, ${counts.connecting} connecting)` : "");
    if (!detector) return { state: "degraded", detail: `${sessions}; no vision model wired (frames get errors)` };
    if (!detector.available) return { state: "degraded", detail: `${sessions}; vision model unavailable` };
    return { state: "ready", detail: sessions };
  }

  #closeIdle(): void {
    for (const session of this.#sessions.values()) {
      if (session.idleMs > this.#options.idleTimeoutMs) void session.close("idle");
    }
  }

  /** Answers an SDP offer with a new session; 429 when the limit is reached, 400 for a bad offer. */
  async create(offerSdp: string): Promise<{ session: WebRtcSession; sdp: string }> {
    if (this.#stopped) throw new TabAgentError("unavailable", "The server is shutting down");
    if (this.#sessions.size + this.#creating >= this.#options.maxSessions) {
      throw new TabAgentError("too_many_requests", `At most ${this.#options.maxSessions} WebRTC sessions may be open`, {
        limit: this.#options.maxSessions,
      });
    }
    this.#creating++;
    try {
      const id = `rtc_${crypto.randomUUID().replaceAll("-", "")}`;
      const { session, sdp } = await WebRtcSession.answer(id, offerSdp, {
        detector: () => this.#options.detector?.(),
        log: this.#options.log,
        events: {
          onFrameRejected: (reason) => this.#metrics.rejected(reason),
          onOpen: (ms) => this.#metrics.setup(ms / 1000),
          onResult: (ms) => this.#metrics.result(ms / 1000),
        },
      });
      if (this.#stopped) {
        await session.close("shutdown");
        throw new TabAgentError("unavailable", "The server is shutting down");
      }
      this.#sessions.set(id, session);
      void session.closed.then((reason) => {
        this.#sessions.delete(id);
        this.#metrics.closed(reason);
      });
      this.#options.log.info("webrtc session opened", { session: id });
      return { session, sdp };
    } finally {
      this.#creating--;
    }
  }

  /** The session with this id; 404 when there is none. */
  get(id: string): WebRtcSession {
    const session = this.#sessions.get(id);
    if (!session) throw new TabAgentError("not_found", `No WebRTC session with id '${id}'`, { id });
    return session;
  }

  /** Every open session's state. */
  list(): SessionInfo[] {
    return [...this.#sessions.values()].map((session) => session.info());
  }

  /** Closes a session; 404 when there is none. */
  async delete(id: string): Promise<void> {
    await this.get(id).close("deleted");
  }
}
