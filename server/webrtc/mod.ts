/**
 * WebRTC front door for tab video: signaling sessions on werift, the chunked frame protocol on an
 * unordered data channel, latest-frame-wins scheduling into a {@link FrameDetector}, and results
 * back as JSON on a reliable channel.
 *
 * @example
 * ```ts
 * const webrtc = lifecycle.add(new WebRtcSessions({ maxSessions: 8, idleTimeoutMs: 30_000, log, metrics }));
 * const { session, sdp } = await webrtc.create(offerSdp);
 * ```
 * @module
 */
export type { Detection, FrameDetections, FrameDetector, Point, SessionDetector } from "./detector.ts";
export * from "./frame_protocol.ts";
export { LatestFrameScheduler, type ScheduleStats } from "./frame_scheduler.ts";
export { mlFaceDetector } from "./ml_detector.ts";
export * from "./results.ts";
export { type CandidateInit, type CloseReason, type SessionInfo, WebRtcSession } from "./session.ts";
export { type WebRtcOptions, WebRtcSessions } from "./sessions.ts";
