/** Server-sent events for OpenAI-style streams: `data: {json}\n\n` frames, ending with `data: [DONE]`. */

import { z } from "@hono/zod-openapi";
import { pacedResponse } from "./_paced_stream.ts";

/**
 * One event of an event stream, as the OpenAPI document describes it (3.1, where the media type's
 * `schema` describes each event): `event` (one of `events`, or "message" when the stream names
 * none), `data` (JSON, described by `contentSchema`, or one of the literal `ends` such as
 * `[DONE]`), and the optional `id` and `retry`. Generic clients and fuzzers check each event
 * against it.
 *
 * @example
 * ```ts
 * content: { "text/event-stream": { schema: sseEventSchema({ events: ["progress", "done"], data: { $ref: "#/components/schemas/PullProgress" } }) } }
 * ```
 */
export function sseEventSchema(options: {
  events?: readonly [string, ...string[]];
  /** JSON Schema of the JSON in `data` (default: any JSON object). */
  data?: Record<string, unknown>;
  /** Literal `data` values that are not JSON (OpenAI's `[DONE]`). */
  ends?: readonly string[];
}) {
  const json = z.string().openapi({
    contentMediaType: "application/json",
    contentSchema: options.data ?? { type: "object" },
  } as Record<string, unknown>);
  const data = options.ends?.length
    ? z.union([json, ...options.ends.map((end) => z.literal(end))] as unknown as [z.ZodString, z.ZodString])
    : json;
  return z.object({
    event: options.events ? z.enum(options.events) : z.literal("message"),
    data,
    id: z.string().optional(),
    retry: z.number().int().optional(),
  });
}

/** Headers of every event stream. */
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "connection": "keep-alive",
  "x-accel-buffering": "no",
};

/** Writes frames to a stream; closed streams ignore writes (the client went away). */
export interface SseWriter {
  send(data: unknown): void;
  /** Sends an already-serialised JSON object. */
  sendJson(json: string): void;
  /**
   * Sends a piece of a reply's text in the frame `json` makes of it (the JSON object holding the
   * text). Consecutive pieces sent with the same `json` function that wait for the same write leave
   * as one frame holding their joined text (see `_paced_stream.ts`).
   */
  sendText(text: string, json: (text: string) => string): void;
  done(): void;
}

/**
 * A streaming response whose body `produce` writes. `produce` gets a signal that aborts when the
 * client disconnects or any of `signals` aborts; generation must stop on it.
 *
 * With `headFrames`, the response (its head, then those frames in one write) goes out once
 * `produce` has written that many frames, or has ended, or after HEAD_HOLD_MAX_MS ({@link pacedResponse}):
 * a chat's role frame, written the moment the request is taken, then no longer wakes the client
 * while the prompt is evaluated.
 */
export async function sseResponse(
  signals: AbortSignal[],
  produce: (writer: SseWriter, signal: AbortSignal) => Promise<void>,
  options: { headFrames?: number } = {},
): Promise<Response> {
  const event = (data: string) => `data: ${data}\n\n`;
  return await pacedResponse(signals, ({ push, pushPiece, finish, signal, clientGone }) => {
    const frame = (data: string) => push(event(data));
    const writer: SseWriter = {
      send: (data) => frame(JSON.stringify(data)),
      sendJson: frame,
      sendText: pushPiece,
      done() {
        frame("[DONE]");
        finish();
      },
    };
    produce(writer, signal).catch((error) => {
      // Aborted while the client still listens: the server side (shutdown) cut the reply short,
      // and the client deserves that reason rather than the stage the cancellation hit.
      const message = signal.aborted && !clientGone.aborted
        ? "The server is stopping; this reply was cut short"
        : error instanceof Error
        ? error.message
        : String(error);
      writer.send({ error: { message } });
    }).finally(finish);
  }, { headFrames: options.headFrames, pieceFrame: event, headers: SSE_HEADERS });
}
