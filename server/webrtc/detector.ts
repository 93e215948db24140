/**
 * What the WebRTC sessions need from a vision model: one call per frame. The ML service's face
 * detection is wired in by `app.ts`; this module only names the contract.
 * @module
 */
import type { EncodedFrame } from "./frame_protocol.ts";

/** A point in normalised image coordinates (0..1, origin top-left). */
export interface Point {
  x: number;
  y: number;
}

/** One thing found in a frame, in normalised image coordinates. */
export interface Detection {
  label: string;
  score: number;
  box: { x: number; y: number; width: number; height: number };
  keypoints: Point[];
}

/** What a detector says about one frame. */
export interface FrameDetections {
  /** The model (or task) that produced them, e.g. `mediapipe/face_detection`. */
  model: string;
  detections: Detection[];
  /** Time spent inside the model, as the model reports it (ms). */
  inferenceMs?: number;
}

/** Runs a vision model on one encoded frame. Implementations must honour `signal`. */
export interface FrameDetector {
  /** Whether the model can answer now; frames are answered with an `unavailable` error otherwise. */
  readonly available: boolean;
  detect(frame: EncodedFrame, signal: AbortSignal): Promise<FrameDetections>;
  /**
   * A detector for one session's frames, one at a time, as one video (a live stream to the model);
   * the session closes it when it ends. Without it each frame goes through `detect`.
   */
  session?(): SessionDetector;
}

/** One session's detector (see {@link FrameDetector.session}). */
export interface SessionDetector {
  detect(frame: EncodedFrame, signal: AbortSignal): Promise<FrameDetections>;
  close(): void;
}
