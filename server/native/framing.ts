import { NATIVE_MAX_INCOMING_BYTES, NATIVE_MAX_OUTGOING_BYTES } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Room left in a chunk frame for its envelope (`{"id":…,"chunk":{…}}`), ids included. */
const CHUNK_ENVELOPE_BYTES = 1024;

function frameOf(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(4 + body.byteLength);
  new DataView(frame.buffer).setUint32(0, body.byteLength, true);
  frame.set(body, 4);
  return frame;
}

/** Encodes one native-messaging frame: 4-byte little-endian length, then UTF-8 JSON. */
export function encodeFrame(message: unknown, maxBytes = NATIVE_MAX_OUTGOING_BYTES): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.byteLength > maxBytes) {
    throw new TabAgentError("payload_too_large", `Native message of ${body.byteLength} bytes exceeds ${maxBytes}`, {
      limit: maxBytes,
    });
  }
  return frameOf(body);
}

/**
 * Encodes a reply that may exceed Chrome's 1 MiB host→browser limit: one frame when it fits, else
 * numbered `{id, chunk: {index, count, data}}` frames whose `data` slices, joined, are the reply's
 * JSON text. A slice of n UTF-16 units takes at most 6n bytes once JSON-escaped, so slices of
 * (max − envelope) / 6 units always fit.
 */
export function encodeReply(
  message: { id?: string | number } & Record<string, unknown>,
  maxBytes = NATIVE_MAX_OUTGOING_BYTES,
): Uint8Array[] {
  const json = JSON.stringify(message);
  const body = encoder.encode(json);
  if (body.byteLength <= maxBytes) return [frameOf(body)];
  const slice = Math.floor((maxBytes - CHUNK_ENVELOPE_BYTES) / 6);
  const count = Math.ceil(json.length / slice);
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const data = json.slice(index * slice, (index + 1) * slice);
    frames.push(encodeFrame({ id: message.id, chunk: { index, count, data } }, maxBytes));
  }
  return frames;
}

/** One decoded frame: the parsed JSON, or the error that made it unreadable. */
export type DecodedFrame = { ok: true; value: unknown } | { ok: false; error: TabAgentError; fatal?: boolean };

/**
 * Byte queue for the reader: chunks are kept as they arrive and each byte is copied at most once
 * (into a frame body that spans chunks), so reading stays linear in the input size.
 */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // offset into #chunks[0]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.byteLength;
  }

  /** Reads a little-endian uint32 at the front without consuming it. */
  peekUint32(): number {
    let value = 0;
    let chunk = 0;
    let offset = this.#head;
    for (let i = 0; i < 4; i++) {
      while (offset >= this.#chunks[chunk].byteLength) {
        chunk++;
        offset = 0;
      }
      value |= this.#chunks[chunk][offset++] << (8 * i);
    }
    return value >>> 0;
  }

  /** Removes and returns `n` bytes (a view when they lie in one chunk). */
  take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    this.length -= n;
    const first = this.#chunks[0];
    if (first.byteLength - this.#head >= n) {
      const view = first.subarray(this.#head, this.#head + n);
      this.#head += n;
      if (this.#head === first.byteLength) {
        this.#chunks.shift();
        this.#head = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      const available = chunk.byteLength - this.#head;
      const want = Math.min(available, n - filled);
      out.set(chunk.subarray(this.#head, this.#head + want), filled);
      filled += want;
      this.#head += want;
      if (this.#head === chunk.byteLength) {
        this.#chunks.shift();
        this.#head = 0;
      }
    }
    return out;
  }
}

/**
 * Reads frames from a byte stream until it ends. An oversized length ends the stream (the rest
 * cannot be re-synchronised) with a `fatal` error; bad UTF-8 or JSON yields an error for that
 * frame and goes on; a stream ending inside a frame yields a final error.
 */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
  maxBytes = NATIVE_MAX_INCOMING_BYTES,
): AsyncGenerator<DecodedFrame> {
  const queue = new ByteQueue();
  const reader = stream.getReader();
  try {
    while (true) {
      while (queue.length >= 4) {
        const length = queue.peekUint32();
        if (length > maxBytes) {
          yield {
            ok: false,
            fatal: true,
            error: new TabAgentError("payload_too_large", `Native frame of ${length} bytes exceeds ${maxBytes}`, {
              limit: maxBytes,
            }),
          };
          return;
        }
        if (queue.length < 4 + length) break;
        queue.take(4);
        const body = queue.take(length);
        let value: unknown;
        try {
          value = JSON.parse(decoder.decode(body));
        } catch (error) {
          yield {
            ok: false,
            error: new TabAgentError("bad_request", "Native frame is not valid UTF-8 JSON", {}, { cause: error }),
          };
          continue;
        }
        yield { ok: true, value };
      }
      const { value, done } = await reader.read();
      if (done) {
        if (queue.length > 0) {
          yield {
            ok: false,
            fatal: true,
            error: new TabAgentError("bad_request", "Stream ended inside a native frame"),
          };
        }
        return;
      }
      queue.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}
