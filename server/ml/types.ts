/** The ML service's values as the server's components see them (the wire types live in `_generated/`). */

/** A vision task. */
export type VisionTask = "faces" | "pose" | "hands";
/** Every vision task. */
export const VISION_TASKS: readonly VisionTask[] = ["faces", "pose", "hands"];

/** An image for detection: encoded bytes (PNG, JPEG, …) or raw RGB with its size. */
export interface VisionImage {
  image: Uint8Array;
  width?: number;
  height?: number;
}

/** One detected face, body or hand; coordinates normalised to the image (0..1, top-left origin). */
export interface Detection {
  task: VisionTask;
  score: number;
  box: { x: number; y: number; width: number; height: number };
  landmarks: { x: number; y: number; z: number; visibility: number }[];
  /** "Left"/"Right" for hands. */
  label?: string;
}

/** What one image gave. */
export interface DetectResult {
  frameId: number;
  detections: Detection[];
  width: number;
  height: number;
  timings: { decode_ms: number; inference_ms: number };
}

/** Embeddings of a batch. */
export interface EmbedResult {
  vectors: Float32Array[];
  dimensions: number;
  promptTokens: number;
  computeMs: number;
}

/** A piece of generated text, or the end with usage. */
export type GenerateEvent =
  | { type: "text"; text: string }
  | { type: "done"; finishReason: string; promptTokens: number; completionTokens: number };

/** A tensor for LiteRT. */
export interface TensorValue {
  name?: string;
  dtype: "float32" | "int32" | "uint8" | "int8" | "int64";
  shape: number[];
  data: Uint8Array;
}

/** A live bidirectional frame stream (for the WebRTC helper): send frames, read one result each. */
export interface FrameStream extends AsyncIterable<DetectResult> {
  /** Queues a frame; false when the stream wants the caller to wait (backpressure). */
  send(frame: VisionImage & { id: number; tasks?: VisionTask[]; minConfidence?: number }): boolean;
  /** No more frames: the results end after the last one. */
  end(): void;
  /** Stops at once (cancels the call in Python). */
  cancel(): void;
}
