import assert from "node:assert/strict";
import { readSse } from "./sse.ts";

function streamOf(...parts: string[]) {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      controller.close();
    },
  });
}

Deno.test("SSE events split across chunks, multi-line data, comments and named events", async () => {
  const events = [];
  for await (
    const e of readSse(
      streamOf(': hi\n\ndata: {"a"', ":1}\n\nevent: progress\r\ndata: x\ndata: y\n\n", "data: [DONE]\n\n"),
    )
  ) {
    events.push(e);
  }
  assert.deepEqual(events, [
    { event: "message", data: '{"a":1}' },
    { event: "progress", data: "x\ny" },
    { event: "message", data: "[DONE]" },
  ]);
});
