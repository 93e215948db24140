/**
 * `POST /v1/vision/detect`: faces, pose or hands in one image through the ML service (MediaPipe),
 * so vision works without WebRTC. The image comes as the raw body (`image/*`) with `?task=`, or as
 * JSON `{image: base64 | data URL, task}`.
 */
import { z } from "@hono/zod-openapi";
import { TabAgentError } from "../errors/mod.ts";
import type { MlService, VisionTask } from "../ml/mod.ts";
import { BEARER_SECURITY, createRouter } from "./router.ts";

/** Tasks the route accepts. */
const TaskSchema = z.enum(["faces", "pose", "hands"]);

/** JSON body of `POST /v1/vision/detect`. */
export const DetectJsonSchema = z.object({
  image: z.string().min(1).describe("The image as base64 or a data: URL (PNG, JPEG, WebP, BMP)"),
  task: z.union([TaskSchema, z.array(TaskSchema).min(1).max(3)]).default("faces"),
  min_confidence: z.number().min(0).max(1).optional(),
}).openapi("VisionDetectRequest");

const DetectionSchema = z.object({
  task: TaskSchema,
  score: z.number(),
  box: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }).describe(
    "Normalised to the image (0..1) from its top-left corner",
  ),
  landmarks: z.array(z.object({ x: z.number(), y: z.number(), z: z.number(), visibility: z.number() })),
  label: z.string().optional().describe("'Left' or 'Right' for hands"),
});

const DetectResponseSchema = z.object({
  object: z.literal("vision.detection"),
  width: z.number().int(),
  height: z.number().int(),
  detections: z.array(DetectionSchema),
  timings: z.object({ decode_ms: z.number(), inference_ms: z.number(), total_ms: z.number() }),
}).openapi("VisionDetection");

const jsonProblem = { "application/problem+json": { schema: z.object({}).passthrough() } };

// Documented here, routed by hand below: the body is JSON *or* raw image bytes, which the generated
// validator (JSON only) cannot express.
const route = {
  method: "post",
  path: "/v1/vision/detect",
  tags: ["vision"],
  summary: "Detect faces, pose or hands in an image (MediaPipe)",
  description: "Send the image as the body (`image/png`, `image/jpeg`, … or `application/octet-stream`) with " +
    "`?task=faces|pose|hands` (comma-separated for several), or as JSON with base64. 415 when the bytes are not " +
    "an image; 503 while the ML service is unavailable.",
  security: BEARER_SECURITY,
  request: {
    query: z.object({
      task: z.string().optional().openapi({ example: "faces" }),
      min_confidence: z.string().optional().openapi({ example: "0.5" }),
    }),
    body: {
      required: true,
      content: {
        "application/json": { schema: DetectJsonSchema },
        "image/*": { schema: z.string().openapi({ format: "binary" }) },
        "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
      },
    },
  },
  responses: {
    200: { description: "What was found", content: { "application/json": { schema: DetectResponseSchema } } },
    400: { description: "Bad input", content: jsonProblem },
    415: { description: "Not an image", content: jsonProblem },
    503: { description: "ML service unavailable", content: jsonProblem },
  },
} as const;

function decodeBase64(text: string): Uint8Array {
  const data = text.startsWith("data:") ? text.slice(text.indexOf(",") + 1) : text;
  try {
    const binary = atob(data.replace(/\s+/g, ""));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    throw new TabAgentError("validation_failed", "image is not valid base64", {
      errors: [{ field: "image", message: "not valid base64" }],
    });
  }
}

function parseTasks(value: string | undefined): VisionTask[] {
  const tasks = (value ?? "faces").split(",").map((t) => t.trim()).filter(Boolean);
  const parsed = z.array(TaskSchema).min(1).max(3).safeParse(tasks);
  if (!parsed.success) {
    throw new TabAgentError("validation_failed", "task must be faces, pose or hands (comma-separated)", {
      errors: [{ field: "task", message: "must be faces, pose or hands" }],
    });
  }
  return parsed.data;
}

/** The vision resource. */
export function visionRoutes(deps: { ml: MlService; deadlineMs?: number }) {
  const router = createRouter();
  router.openAPIRegistry.registerPath(route as never);
  router.post(route.path, async (c) => {
    const began = performance.now();
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    let image: Uint8Array;
    let tasks: VisionTask[];
    let minConfidence: number | undefined;
    if (type === "application/json") {
      const body = DetectJsonSchema.safeParse(
        await c.req.json().catch(() => {
          throw new TabAgentError("bad_request", "The body is not valid JSON");
        }),
      );
      if (!body.success) {
        throw new TabAgentError("validation_failed", `Invalid request body: ${body.error.issues[0]?.message}`, {
          errors: body.error.issues.map((i) => ({ field: i.path.join("."), message: i.message })),
        });
      }
      image = decodeBase64(body.data.image);
      tasks = [body.data.task].flat();
      minConfidence = body.data.min_confidence;
    } else if (type.startsWith("image/") || type === "application/octet-stream") {
      image = new Uint8Array(await c.req.arrayBuffer());
      tasks = parseTasks(c.req.query("task"));
      const min = c.req.query("min_confidence");
      if (min !== undefined) {
        minConfidence = Number(min);
        if (!(minConfidence >= 0 && minConfidence <= 1)) {
          throw new TabAgentError("validation_failed", "min_confidence must be a number from 0 to 1", {
            errors: [{ field: "min_confidence", message: "must be a number from 0 to 1" }],
          });
        }
      }
    } else {
      throw new TabAgentError("unsupported_media_type", "Send the image as image/*, application/octet-stream or JSON");
    }
    if (image.byteLength === 0) {
      throw new TabAgentError("validation_failed", "The image is empty", {
        errors: [{ field: "image", message: "empty" }],
      });
    }
    const result = await deps.ml.detect({ image }, tasks, {
      signal: c.req.raw.signal,
      deadlineMs: deps.deadlineMs,
      minConfidence,
    });
    return c.json({
      object: "vision.detection" as const,
      width: result.width,
      height: result.height,
      detections: result.detections,
      timings: { ...result.timings, total_ms: Math.round((performance.now() - began) * 1000) / 1000 },
    }, 200);
  });
  return router;
}
