import { deepEqual as assertEquals, equal, throws } from "node:assert/strict";
import { encodeFrame, readFrames } from "./mod.ts";

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

Deno.test("frames are 4-byte little-endian length + JSON", () => {
  const frame = encodeFrame({ a: "é" });
  equal(new DataView(frame.buffer).getUint32(0, true), frame.length - 4);
  equal(new TextDecoder().decode(frame.subarray(4)), '{"a":"é"}');
});

Deno.test("frames split across reads and packed together are decoded", async () => {
  const joined = new Uint8Array([...encodeFrame({ n: 1 }), ...encodeFrame({ n: 2 })]);
  const pieces = [joined.subarray(0, 2), joined.subarray(2, 9), joined.subarray(9)];
  assertEquals(await collect(streamOf(...pieces)), [{ n: 1 }, { n: 2 }]);
});

Deno.test("bad JSON is reported and the stream goes on; a truncated frame is reported", async () => {
  const bad = new Uint8Array([3, 0, 0, 0, ...new TextEncoder().encode("{x}")]);
  const truncated = new Uint8Array([10, 0, 0, 0, 1, 2]);
  assertEquals(await collect(streamOf(bad, encodeFrame({ ok: 1 }), truncated)), [
    "bad_request",
    { ok: 1 },
    "bad_request",
  ]);
});

Deno.test("an oversized frame ends the stream with payload_too_large", async () => {
  const big = new Uint8Array([0, 0, 0, 1]); // 16 MiB announced
  assertEquals(await collect(streamOf(big, encodeFrame({ n: 1 })), 1024), ["payload_too_large"]);
  throws(() => encodeFrame({ s: "x".repeat(2000) }, 1000), /exceeds/);
});
