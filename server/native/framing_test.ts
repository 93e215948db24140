import assert from "node:assert/strict";
import { NATIVE_MAX_INCOMING_BYTES, NATIVE_MAX_OUTGOING_BYTES } from "../config/mod.ts";
import { encodeFrame, encodeReply, readFrames } from "./mod.ts";

function streamOf(...chunks: Uint8Array[]) {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>, max?: number) {
  const out = [];
  for await (const frame of readFrames(stream, max)) out.push(frame.ok ? frame.value : frame.error.code);
  return out;
}

/** Joins chunk frames back the way the extension does (FrameAssembler). */
function reassemble(frames: Uint8Array[]): unknown {
  const decoded = frames.map((f) => JSON.parse(new TextDecoder().decode(f.subarray(4))));
  if (decoded.length === 1 && !decoded[0].chunk) return decoded[0];
  decoded.forEach((d, i) => {
    assert.equal(d.chunk.index, i);
    assert.equal(d.chunk.count, decoded.length);
  });
  return JSON.parse(decoded.map((d) => d.chunk.data).join(""));
}

Deno.test("frames are 4-byte little-endian length + JSON", () => {
  const frame = encodeFrame({ a: "é" });
  assert.equal(new DataView(frame.buffer).getUint32(0, true), frame.length - 4);
  assert.equal(new TextDecoder().decode(frame.subarray(4)), '{"a":"é"}');
});

Deno.test("frames split across reads and packed together are decoded", async () => {
  const joined = new Uint8Array([...encodeFrame({ n: 1 }), ...encodeFrame({ n: 2 })]);
  const pieces = [joined.subarray(0, 2), joined.subarray(2, 9), joined.subarray(9)];
  assert.deepEqual(await collect(streamOf(...pieces)), [{ n: 1 }, { n: 2 }]);
  // One byte at a time: the header itself straddles reads.
  assert.deepEqual(await collect(streamOf(...[...joined].map((b) => new Uint8Array([b])))), [{ n: 1 }, { n: 2 }]);
});

Deno.test("bad JSON and bad UTF-8 are reported and the stream goes on; a truncated frame is reported", async () => {
  const bad = new Uint8Array([3, 0, 0, 0, ...new TextEncoder().encode("{x}")]);
  const badUtf8 = new Uint8Array([3, 0, 0, 0, 0x22, 0xff, 0x22]);
  const truncated = new Uint8Array([10, 0, 0, 0, 1, 2]);
  assert.deepEqual(await collect(streamOf(bad, badUtf8, encodeFrame({ ok: 1 }), truncated)), [
    "bad_request",
    "bad_request",
    { ok: 1 },
    "bad_request",
  ]);
});

Deno.test("an oversized frame ends the stream with payload_too_large", async () => {
  const big = new Uint8Array([0, 0, 0, 1]); // 16 MiB announced
  assert.deepEqual(await collect(streamOf(big, encodeFrame({ n: 1 })), 1024), ["payload_too_large"]);
  assert.throws(() => encodeFrame({ s: "x".repeat(2000) }, 1000), /exceeds/);
});

Deno.test("round trips at 0 B, 1 B, 1 MiB - 1 and 1 MiB + 1 (chunked), and 64 MiB in", async () => {
  const overhead = JSON.stringify({ id: 1, data: "" }).length;
  for (const size of [0, 1, NATIVE_MAX_OUTGOING_BYTES - 1, NATIVE_MAX_OUTGOING_BYTES + 1]) {
    // A reply whose JSON body is exactly `size` bytes where it can be (0 B: the smallest JSON, `0`).
    const message = size < overhead ? { id: 1 } : { id: 1, data: "é".repeat(0) + "x".repeat(size - overhead) };
    const frames = encodeReply(message);
    for (const frame of frames) assert.equal(frame.byteLength - 4 <= NATIVE_MAX_OUTGOING_BYTES, true);
    assert.equal(frames.length > 1, size > NATIVE_MAX_OUTGOING_BYTES, `size ${size}`);
    assert.deepEqual(reassemble(frames), message);
    assert.deepEqual(
      await collect(streamOf(...frames), NATIVE_MAX_INCOMING_BYTES),
      frames.map((f) => JSON.parse(new TextDecoder().decode(f.subarray(4)))),
    );
  }
  const empty = new Uint8Array([0, 0, 0, 0]);
  assert.deepEqual(await collect(streamOf(empty)), ["bad_request"]); // 0 B is not JSON
  const one = new Uint8Array([1, 0, 0, 0, 0x37]);
  assert.deepEqual(await collect(streamOf(one)), [7]);
  // Browser → host: 64 MiB is the limit and is accepted, in 64 KiB reads as a pipe delivers it.
  const text = "y".repeat(NATIVE_MAX_INCOMING_BYTES - 2);
  const frame = encodeFrame(text, NATIVE_MAX_INCOMING_BYTES);
  assert.equal(frame.byteLength - 4, NATIVE_MAX_INCOMING_BYTES);
  const reads = [];
  for (let at = 0; at < frame.byteLength; at += 65536) reads.push(frame.subarray(at, at + 65536));
  const [decoded] = await collect(streamOf(...reads));
  assert.equal((decoded as string).length, text.length);
});

Deno.test("a reply of escape-heavy text still chunks under the limit", () => {
  const message = { id: "x", data: '\u0001"\\'.repeat(400_000) };
  const frames = encodeReply(message);
  for (const frame of frames) assert.equal(frame.byteLength - 4 <= NATIVE_MAX_OUTGOING_BYTES, true);
  assert.deepEqual(reassemble(frames), message);
});
