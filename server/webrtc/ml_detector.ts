/**
 * The sessions' vision model: MediaPipe face detection in the Python ML service. Each session
 * keeps one live frame stream to it (`DetectStream`), so MediaPipe sees the session's frames as one
 * video, and the session's {@link LatestFrameScheduler} keeps one frame at a time in it: latest
 * frame wins, never a backlog.
 *
 * @example
 * ```ts
 * const detector = mlFaceDetector(ml);
 * const stream = detector.session!();
 * const { detections } = await stream.detect(frame, signal);
 * stream.close();
 * ```
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";
import type { DetectResult, FrameStream, MlService } from "../ml/mod.ts";
import type { FrameDetections, FrameDetector, SessionDetector } from "./detector.ts";
import type { EncodedFrame } from "./frame_protocol.ts";

const MODEL = "mediapipe/face_detection_short_range";

function toDetections(result: DetectResult): FrameDetections {
  return {
    model: MODEL,
    inferenceMs: result.timings.inference_ms,
    detections: result.detections.map((d) => ({
      label: "face",
      score: d.score,
      box: d.box,
      keypoints: d.landmarks.map(({ x, y }) => ({ x, y })),
    })),
  };
}

/** One session's frame stream, opened at its first frame and again after a failure. */
class FaceStream implements SessionDetector {
  #ml: Pick<MlService, "detectStream">;
  #stream?: FrameStream;
  #results?: AsyncIterator<DetectResult>;

  constructor(ml: Pick<MlService, "detectStream">) {
    this.#ml = ml;
  }

  async detect(frame: EncodedFrame, signal: AbortSignal): Promise<FrameDetections> {
    signal.throwIfAborted();
    if (!this.#stream) {
      this.#stream = await this.#ml.detectStream({ signal });
      this.#results = this.#stream[Symbol.asyncIterator]();
    }
    const stream = this.#stream;
    const results = this.#results!;
    // Cancelling the call ends the wait below; the next frame opens a new stream.
    const onAbort = () => this.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      stream.send({ id: frame.seq, image: frame.data, tasks: ["faces"] });
      const next = await results.next();
      if (next.done) throw new TabAgentError("unavailable", "The ML service ended the frame stream");
      if (next.value.frameId !== frame.seq) {
        throw new TabAgentError("internal", `The frame stream answered frame ${next.value.frameId}, not ${frame.seq}`);
      }
      return toDetections(next.value);
    } catch (error) {
      this.close();
      signal.throwIfAborted();
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  close(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#results = undefined;
    stream?.cancel();
  }
}

/** Face detection through `ml`: one call per frame, or one stream per session with `session()`. */
export function mlFaceDetector(ml: Pick<MlService, "available" | "detect" | "detectStream">): FrameDetector {
  return {
    get available() {
      return ml.available;
    },
    async detect(frame, signal) {
      return toDetections(await ml.detect({ image: frame.data }, "faces", { signal }));
    },
    session: () => new FaceStream(ml),
  };
}
