/**
 * Messages on the reliable `results` channel, as JSON, in both directions. The server sends a
 * `result` per detected frame and `error`s; the client may send `ping` (which keeps an idle session
 * alive) and gets `pong`. Both sides parse with these schemas (the extension bundles this file).
 *
 * @example
 * ```ts
 * const message = ServerMessageSchema.parse(JSON.parse(text));
 * if (message.type === "result") draw(message.detections);
 * ```
 * @module
 */
import { z } from "zod";

const PointSchema = z.object({ x: z.number(), y: z.number() });

/** One detection, in normalised image coordinates. */
export const DetectionSchema = z.object({
  label: z.string(),
  score: z.number(),
  box: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }),
  keypoints: z.array(PointSchema),
});

/** What the server found in one frame. */
export const ResultMessageSchema = z.object({
  type: z.literal("result"),
  seq: z.number().int().nonnegative(),
  capture_time_ms: z.number(),
  width: z.number().int(),
  height: z.number().int(),
  model: z.string(),
  detections: z.array(DetectionSchema),
  timings: z.object({
    /** Frame complete on the server to handed to the detector (waiting behind the previous frame). */
    queue_ms: z.number(),
    /** Detector call, round trip. */
    detect_ms: z.number(),
    /** Inside the model, as it reports. */
    inference_ms: z.number().optional(),
  }),
  /** Frames numbered between the previous result and this one that got none (lost or replaced by newer ones). */
  skipped: z.number().int().nonnegative(),
});

/** A frame (or the session) could not be served. */
export const ErrorMessageSchema = z.object({
  type: z.literal("error"),
  seq: z.number().int().nonnegative().optional(),
  code: z.string(),
  message: z.string(),
});

/** Answer to a client's ping. */
export const PongMessageSchema = z.object({ type: z.literal("pong"), id: z.number().optional() });

/** Anything the server sends on the results channel. */
export const ServerMessageSchema = z.discriminatedUnion("type", [
  ResultMessageSchema,
  ErrorMessageSchema,
  PongMessageSchema,
]);

/** Anything a client may send on the results channel. */
export const ClientMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ping"), id: z.number().optional() }),
]);

/** A result message. */
export type ResultMessage = z.infer<typeof ResultMessageSchema>;
/** A server message. */
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
/** A client message. */
export type ClientMessage = z.infer<typeof ClientMessageSchema>;
