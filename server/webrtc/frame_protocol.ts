/**
 * The tab-video frame protocol, shared word for word by the server and the extension (which bundles
 * this file): encoded JPEG/WebP frames cut into data-channel messages of at most
 * {@link MAX_MESSAGE_BYTES}, each with a small binary header, sent on an unordered, no-retransmit
 * channel and put back together with tolerance for loss.
 *
 * Pure: no Deno, Node or DOM APIs and no imports, so the same bytes run in the service worker, the
 * offscreen document, the server and the tests.
 *
 * @example
 * ```ts
 * const messages = encodeFrame({ seq: 1, captureTimeMs: Date.now(), width: 640, height: 360, format: "jpeg" }, jpeg);
 * const reassembler = new FrameReassembler();
 * for (const message of messages) {
 *   const frame = reassembler.push(message);
 *   if (frame) console.log(frame.seq, frame.data.byteLength);
 * }
 * ```
 * @module
 */

/** Protocol version carried in every message's first byte. */
export const FRAME_PROTOCOL_VERSION = 1;
/** Largest data-channel message (header included): 16 KiB, the size every SCTP stack passes without fragmenting. */
export const MAX_MESSAGE_BYTES = 16 * 1024;
/** Bytes of header in front of every chunk. */
export const FRAME_HEADER_BYTES = 26;
/** Payload bytes in every chunk but a frame's last. */
export const CHUNK_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - FRAME_HEADER_BYTES;
/** Largest encoded frame (bytes): a 4K JPEG at high quality fits. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Most chunks one frame may have. */
export const MAX_CHUNKS = Math.ceil(MAX_FRAME_BYTES / CHUNK_PAYLOAD_BYTES);
/** Largest width or height a frame may declare (pixels). */
export const MAX_FRAME_DIMENSION = 8192;
/** Frames being reassembled at once; a newer frame pushes the oldest incomplete one out. */
export const MAX_PENDING_FRAMES = 3;
/** Label of the unordered, no-retransmit channel that carries frames. */
export const FRAMES_CHANNEL = "frames";
/** Label of the reliable, ordered channel that carries results (JSON) back. */
export const RESULTS_CHANNEL = "results";
/** Default high-water mark of a sender's channel buffer (bytes): above it, new frames wait or replace the waiting one. */
export const DEFAULT_SEND_HIGH_WATER_BYTES = 1024 * 1024;

/** Encodings a frame may carry. */
export type FrameFormat = "jpeg" | "webp";
const FORMAT_CODES: Record<FrameFormat, number> = { jpeg: 1, webp: 2 };
const FORMAT_NAMES: Record<number, FrameFormat> = { 1: "jpeg", 2: "webp" };

/** What describes a frame, apart from its bytes. */
export interface FrameHeader {
  /** Increasing per session (u32); a later frame always has a larger number. */
  seq: number;
  /** When the frame was captured, in the sender's epoch milliseconds (float64). */
  captureTimeMs: number;
  width: number;
  height: number;
  format: FrameFormat;
}

/** A frame put back together. */
export interface EncodedFrame extends FrameHeader {
  data: Uint8Array;
}

/** One chunk's parsed header. */
export interface ChunkHeader extends FrameHeader {
  chunkIndex: number;
  chunkCount: number;
  totalBytes: number;
}

/** Why a message was refused. */
export type ChunkRejection = "oversized" | "malformed";

/** The outcome of parsing one message. */
export type ParsedChunk =
  | { ok: true; header: ChunkHeader; payload: Uint8Array }
  | { ok: false; reason: ChunkRejection; detail: string };

/*
 * Header layout (big-endian), 26 bytes:
 *   0 u8  version        1 u8  format        2 u16 chunkIndex   4 u16 chunkCount
 *   6 u32 seq           10 f64 captureTimeMs 18 u16 width       20 u16 height
 *  22 u32 totalBytes
 */

/** Cuts one encoded frame into data-channel messages, each at most {@link MAX_MESSAGE_BYTES}. */
export function encodeFrame(header: FrameHeader, data: Uint8Array): Uint8Array<ArrayBuffer>[] {
  if (!Number.isInteger(header.seq) || header.seq < 0 || header.seq > 0xffffffff) {
    throw new RangeError(`frame seq ${header.seq} is not a u32`);
  }
  checkDimension("width", header.width);
  checkDimension("height", header.height);
  if (data.byteLength === 0 || data.byteLength > MAX_FRAME_BYTES) {
    throw new RangeError(`frame of ${data.byteLength} bytes is outside 1..${MAX_FRAME_BYTES}`);
  }
  const format = FORMAT_CODES[header.format];
  if (!format) throw new RangeError(`unknown frame format ${header.format}`);
  const chunkCount = Math.ceil(data.byteLength / CHUNK_PAYLOAD_BYTES);
  const messages: Uint8Array<ArrayBuffer>[] = [];
  for (let index = 0; index < chunkCount; index++) {
    const start = index * CHUNK_PAYLOAD_BYTES;
    const payload = data.subarray(start, Math.min(start + CHUNK_PAYLOAD_BYTES, data.byteLength));
    const message = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
    const view = new DataView(message.buffer);
    view.setUint8(0, FRAME_PROTOCOL_VERSION);
    view.setUint8(1, format);
    view.setUint16(2, index);
    view.setUint16(4, chunkCount);
    view.setUint32(6, header.seq);
    view.setFloat64(10, header.captureTimeMs);
    view.setUint16(18, header.width);
    view.setUint16(20, header.height);
    view.setUint32(22, data.byteLength);
    message.set(payload, FRAME_HEADER_BYTES);
    messages.push(message);
  }
  return messages;
}

function checkDimension(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > MAX_FRAME_DIMENSION) {
    throw new RangeError(`frame ${name} ${value} is outside 1..${MAX_FRAME_DIMENSION}`);
  }
}

/** Parses and checks one message's header; never throws. */
export function parseChunk(message: Uint8Array): ParsedChunk {
  if (message.byteLength > MAX_MESSAGE_BYTES) {
    return { ok: false, reason: "oversized", detail: `message of ${message.byteLength} bytes` };
  }
  if (message.byteLength <= FRAME_HEADER_BYTES) {
    return { ok: false, reason: "malformed", detail: `message of ${message.byteLength} bytes has no payload` };
  }
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const version = view.getUint8(0);
  if (version !== FRAME_PROTOCOL_VERSION) return { ok: false, reason: "malformed", detail: `version ${version}` };
  const format = FORMAT_NAMES[view.getUint8(1)];
  if (!format) return { ok: false, reason: "malformed", detail: `format ${view.getUint8(1)}` };
  const chunkIndex = view.getUint16(2);
  const chunkCount = view.getUint16(4);
  const seq = view.getUint32(6);
  const captureTimeMs = view.getFloat64(10);
  const width = view.getUint16(18);
  const height = view.getUint16(20);
  const totalBytes = view.getUint32(22);
  if (totalBytes === 0 || totalBytes > MAX_FRAME_BYTES) {
    return { ok: false, reason: "oversized", detail: `frame of ${totalBytes} bytes` };
  }
  if (chunkCount !== Math.ceil(totalBytes / CHUNK_PAYLOAD_BYTES) || chunkIndex >= chunkCount) {
    return { ok: false, reason: "malformed", detail: `chunk ${chunkIndex}/${chunkCount} of ${totalBytes} bytes` };
  }
  if (width < 1 || height < 1 || width > MAX_FRAME_DIMENSION || height > MAX_FRAME_DIMENSION) {
    return { ok: false, reason: "malformed", detail: `size ${width}x${height}` };
  }
  if (!Number.isFinite(captureTimeMs)) return { ok: false, reason: "malformed", detail: "capture time" };
  const payloadBytes = message.byteLength - FRAME_HEADER_BYTES;
  const expected = chunkIndex < chunkCount - 1 ? CHUNK_PAYLOAD_BYTES : totalBytes - chunkIndex * CHUNK_PAYLOAD_BYTES;
  if (payloadBytes !== expected) {
    return { ok: false, reason: "malformed", detail: `chunk of ${payloadBytes} bytes, expected ${expected}` };
  }
  return {
    ok: true,
    header: { seq, captureTimeMs, width, height, format, chunkIndex, chunkCount, totalBytes },
    payload: message.subarray(FRAME_HEADER_BYTES),
  };
}

/** Counters a reassembler keeps. */
export interface ReassemblyStats {
  /** Frames completed and handed out. */
  frames: number;
  /** Messages refused for their size. */
  oversized: number;
  /** Messages refused for a bad header. */
  malformed: number;
  /** Frames given up on: a chunk was lost, or a newer frame completed first. */
  lost: number;
  /** Chunks that came after their frame was completed or given up on. */
  late: number;
}

interface Pending {
  header: ChunkHeader;
  data: Uint8Array;
  seen: Uint8Array;
  received: number;
}

/**
 * Puts frames back together from chunks that may arrive out of order, twice, or never. Memory is
 * bounded: at most {@link MAX_PENDING_FRAMES} partial frames are held, and a completed frame drops
 * every older partial one (the receiver only wants the newest picture).
 */
export class FrameReassembler {
  readonly stats: ReassemblyStats = { frames: 0, oversized: 0, malformed: 0, lost: 0, late: 0 };
  #pending = new Map<number, Pending>();
  #lastDone = -1;
  #onReject?: (reason: ChunkRejection, detail: string) => void;

  constructor(options: { onReject?: (reason: ChunkRejection, detail: string) => void } = {}) {
    this.#onReject = options.onReject;
  }

  /** Partial frames held now. */
  get pendingFrames(): number {
    return this.#pending.size;
  }

  /** Takes one message; returns the frame it completed, if any. */
  push(message: Uint8Array): EncodedFrame | undefined {
    const parsed = parseChunk(message);
    if (!parsed.ok) {
      this.stats[parsed.reason]++;
      this.#onReject?.(parsed.reason, parsed.detail);
      return undefined;
    }
    const { header, payload } = parsed;
    if (header.seq <= this.#lastDone) {
      this.stats.late++;
      return undefined;
    }
    let pending = this.#pending.get(header.seq);
    if (!pending) {
      if (header.chunkCount === 1) return this.#complete(header, payload.slice());
      while (this.#pending.size >= MAX_PENDING_FRAMES) {
        const oldest = Math.min(...this.#pending.keys());
        if (oldest > header.seq) {
          this.stats.late++;
          return undefined;
        }
        this.#pending.delete(oldest);
        this.stats.lost++;
      }
      pending = {
        header,
        data: new Uint8Array(header.totalBytes),
        seen: new Uint8Array(header.chunkCount),
        received: 0,
      };
      this.#pending.set(header.seq, pending);
    } else if (
      pending.header.totalBytes !== header.totalBytes || pending.header.width !== header.width ||
      pending.header.height !== header.height || pending.header.format !== header.format
    ) {
      this.stats.malformed++;
      this.#onReject?.("malformed", `chunk disagrees with frame ${header.seq}`);
      return undefined;
    }
    if (pending.seen[header.chunkIndex]) return undefined;
    pending.seen[header.chunkIndex] = 1;
    pending.received++;
    pending.data.set(payload, header.chunkIndex * CHUNK_PAYLOAD_BYTES);
    if (pending.received < header.chunkCount) return undefined;
    this.#pending.delete(header.seq);
    return this.#complete(pending.header, pending.data);
  }

  #complete(header: ChunkHeader, data: Uint8Array): EncodedFrame {
    for (const seq of this.#pending.keys()) {
      if (seq < header.seq) {
        this.#pending.delete(seq);
        this.stats.lost++;
      }
    }
    this.#lastDone = header.seq;
    this.stats.frames++;
    const { seq, captureTimeMs, width, height, format } = header;
    return { seq, captureTimeMs, width, height, format, data };
  }
}

/** The part of an `RTCDataChannel` a sender needs (browser and werift channels both fit). */
export interface FrameChannel {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  readonly readyState: string;
  send(data: Uint8Array<ArrayBuffer>): void;
}

/** Counters a sender keeps. */
export interface SendStats {
  /** Frames whose every chunk went into the channel. */
  sent: number;
  /** Frames never sent: replaced by a newer one while the channel was full, or the channel was closed. */
  dropped: number;
}

/**
 * Sends frames with backpressure and no queue: while the channel's buffer is above the high-water
 * mark, the newest frame waits (replacing, and dropping, any frame already waiting) until the
 * channel reports `bufferedamountlow`; call {@link FrameSender.drain} from that event.
 */
export class FrameSender {
  readonly stats: SendStats = { sent: 0, dropped: 0 };
  #channel: FrameChannel;
  #highWater: number;
  #waiting?: Uint8Array<ArrayBuffer>[];

  constructor(channel: FrameChannel, options: { highWaterBytes?: number } = {}) {
    this.#channel = channel;
    this.#highWater = options.highWaterBytes ?? DEFAULT_SEND_HIGH_WATER_BYTES;
    channel.bufferedAmountLowThreshold = Math.floor(this.#highWater / 2);
  }

  /** Whether a frame is waiting for the buffer to drain. */
  get waiting(): boolean {
    return this.#waiting !== undefined;
  }

  /** Sends a frame now, or keeps it as the one waiting frame; returns whether it went out now. */
  send(header: FrameHeader, data: Uint8Array): boolean {
    const messages = encodeFrame(header, data);
    if (this.#channel.readyState !== "open") {
      this.stats.dropped++;
      return false;
    }
    if (this.#waiting) this.stats.dropped++;
    this.#waiting = messages;
    return this.drain();
  }

  /** Sends the waiting frame if the buffer has room; returns whether it did. */
  drain(): boolean {
    const messages = this.#waiting;
    if (!messages) return false;
    if (this.#channel.readyState !== "open") {
      this.#waiting = undefined;
      this.stats.dropped++;
      return false;
    }
    if (this.#channel.bufferedAmount > this.#highWater) return false;
    this.#waiting = undefined;
    for (const message of messages) this.#channel.send(message);
    this.stats.sent++;
    return true;
  }
}
