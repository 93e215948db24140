/**
 * Runtime messages between the panel, the service worker and the offscreen document for tab video.
 * Every receiver parses with these schemas before acting.
 * @module
 */
import { z } from "zod";
import { ResultMessageSchema } from "../../../server/webrtc/results.ts";

/** Capture settings the panel chooses. */
export const CaptureSettingsSchema = z.object({
  fps: z.number().min(1).max(60).default(10),
  maxWidth: z.number().int().min(64).max(3840).default(960),
  quality: z.number().min(0.1).max(1).default(0.7),
  format: z.enum(["jpeg", "webp"]).default("jpeg"),
});
/** Capture settings. */
export type CaptureSettings = z.infer<typeof CaptureSettingsSchema>;

/** Live figures, as the offscreen document reports them. */
export const VideoStatsSchema = z.object({
  sentFps: z.number(),
  resultFps: z.number(),
  latencyMs: z.number().nullable(),
  dropped: z.number(),
  sent: z.number(),
  results: z.number(),
});

/** Panel → service worker. */
export const PanelVideoRequestSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("video/start"),
    /** The tab to capture; the active tab of the last focused normal window when absent. */
    tabId: z.number().int().optional(),
    settings: CaptureSettingsSchema,
  }),
  z.object({ type: z.literal("video/stop") }),
]);

/** Service worker → offscreen document. */
export const OffscreenCommandSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("video/capture"),
    target: z.literal("offscreen"),
    streamId: z.string().min(1),
    serverUrl: z.string().url(),
    token: z.string().nullable(),
    settings: CaptureSettingsSchema,
  }),
  z.object({ type: z.literal("video/release"), target: z.literal("offscreen") }),
]);

/** Offscreen document → panel (broadcast). */
export const VideoEventSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("video/result"),
    result: ResultMessageSchema,
    /** The frame the result describes, as a data URL (absent if it was not kept). */
    frame: z.string().optional(),
    stats: VideoStatsSchema,
  }),
  z.object({ type: z.literal("video/state"), state: z.enum(["starting", "streaming", "stopped"]), detail: z.string() }),
  z.object({ type: z.literal("video/error"), code: z.string(), message: z.string() }),
]);

/** An event the panel receives. */
export type VideoEvent = z.infer<typeof VideoEventSchema>;
