import { NATIVE_MAX_INCOMING_BYTES, NATIVE_MAX_OUTGOING_BYTES } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes one native-messaging frame: 4-byte little-endian length, then UTF-8 JSON. */
export function encodeFrame(message: unknown, maxBytes = NATIVE_MAX_OUTGOING_BYTES): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.byteLength > maxBytes) {
    throw new TabAgentError("payload_too_large", `Native message of ${body.byteLength} bytes exceeds ${maxBytes}`, {
      limit: maxBytes,
    });
  }
  const frame = new Uint8Array(4 + body.byteLength);
  new DataView(frame.buffer).setUint32(0, body.byteLength, true);
  frame.set(body, 4);
  return frame;
}

/** One decoded frame: the parsed JSON, or the error that made it unreadable. */
export type DecodedFrame = { ok: true; value: unknown } | { ok: false; error: TabAgentError };

/**
 * Reads frames from a byte stream until it ends. An oversized length ends the stream (the rest
 * cannot be re-synchronised); bad UTF-8 or JSON yields an error for that frame and goes on.
 */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
  maxBytes = NATIVE_MAX_INCOMING_BYTES,
): AsyncGenerator<DecodedFrame> {
  let buffer = new Uint8Array(0);
  const reader = stream.getReader();
  try {
    while (true) {
      while (buffer.byteLength >= 4) {
        const length = new DataView(buffer.buffer, buffer.byteOffset, 4).getUint32(0, true);
        if (length > maxBytes) {
          yield {
            ok: false,
            error: new TabAgentError("payload_too_large", `Native frame of ${length} bytes exceeds ${maxBytes}`),
          };
          return;
        }
        if (buffer.byteLength < 4 + length) break;
        const body = buffer.subarray(4, 4 + length);
        buffer = buffer.slice(4 + length);
        try {
          yield { ok: true, value: JSON.parse(decoder.decode(body)) };
        } catch (error) {
          yield {
            ok: false,
            error: new TabAgentError("bad_request", "Native frame is not valid UTF-8 JSON", {}, { cause: error }),
          };
        }
      }
      const { value, done } = await reader.read();
      if (done) {
        if (buffer.byteLength > 0) {
          yield { ok: false, error: new TabAgentError("bad_request", "Stream ended inside a native frame") };
        }
        return;
      }
      const joined = new Uint8Array(buffer.byteLength + value.byteLength);
      joined.set(buffer);
      joined.set(value, buffer.byteLength);
      buffer = joined;
    }
  } finally {
    reader.releaseLock();
  }
}
