import assert from "node:assert/strict";
import { type PacedSink, pacedStream } from "./_paced_stream.ts";

/** Reads every chunk of `stream` as text, one entry per write. */
async function chunksOf(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const decoder = new TextDecoder();
  const chunks: string[] = [];
  for await (const chunk of stream) chunks.push(decoder.decode(chunk));
  return chunks;
}

Deno.test("paced stream: the first two pieces leave alone, later ones that come together leave in one write", async () => {
  let sink!: PacedSink;
  const stream = pacedStream([], (s) => sink = s);
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const read = async () => decoder.decode((await reader.read()).value);
  sink.push("role ");
  assert.equal(await read(), "role ");
  sink.push("first ");
  assert.equal(await read(), "first ");
  // A burst faster than the pacing interval: one write, not one per piece.
  for (let i = 0; i < 50; i++) sink.push(`t${i} `);
  const burst = await read();
  assert.equal(burst, Array.from({ length: 50 }, (_, i) => `t${i} `).join(""));
  sink.push("last");
  sink.finish();
  assert.equal(await read(), "last");
  assert.equal((await reader.read()).done, true);
});

Deno.test("paced stream: finishing writes what waits at once and ends; nothing is lost or reordered", async () => {
  const pieces = Array.from({ length: 300 }, (_, i) => `${i},`);
  const stream = pacedStream([], (sink) => {
    (async () => {
      for (const [i, piece] of pieces.entries()) {
        sink.push(piece);
        if (i % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      sink.finish();
    })();
  });
  const chunks = await chunksOf(stream);
  assert.equal(chunks.join(""), pieces.join(""));
  assert.ok(chunks.length < pieces.length, `${chunks.length} writes for ${pieces.length} pieces`);
});

Deno.test("paced stream: a client that goes away aborts the producer's signal; later pushes are dropped", async () => {
  let sink!: PacedSink;
  const stream = pacedStream([], (s) => sink = s);
  const reader = stream.getReader();
  sink.push("a");
  await reader.read();
  await reader.cancel();
  assert.equal(sink.clientGone.aborted, true);
  assert.equal(sink.signal.aborted, true);
  sink.push("b"); // ignored, no throw
  sink.finish();
});

Deno.test("paced stream: a server-side signal aborts the producer's signal but not clientGone", async () => {
  const stop = new AbortController();
  let sink!: PacedSink;
  const stream = pacedStream([stop.signal], (s) => sink = s);
  stop.abort();
  assert.equal(sink.signal.aborted, true);
  assert.equal(sink.clientGone.aborted, false);
  sink.push("cut short");
  sink.finish();
  assert.deepEqual(await chunksOf(stream), ["cut short"]);
});

Deno.test("paced stream: a due write waits until the producer's own next event-loop task has run", async () => {
  // node-llama-cpp hands a token over, then dispatches the next decode step in a setImmediate: a
  // write must come after that dispatch, so that it runs while the model computes.
  let sink!: PacedSink;
  const stream = pacedStream([], (s) => sink = s, { intervalMs: 0 });
  const reader = stream.getReader();
  sink.push("role ");
  await reader.read();
  sink.push("first ");
  await reader.read();
  for (let i = 0; i < 3; i++) {
    const order: string[] = [];
    const reading = reader.read().then(({ value }) => order.push(new TextDecoder().decode(value)));
    sink.push(`token${i}`);
    order.push("pushed");
    setImmediate(() => order.push("dispatch"));
    await reading;
    assert.deepEqual(order, ["pushed", "dispatch", `token${i}`]);
  }
  sink.finish();
  assert.equal((await reader.read()).done, true);
});

Deno.test("paced stream: pieces wait while the client is not reading and leave in one write when it reads", async () => {
  let sink!: PacedSink;
  const stream = pacedStream([], (s) => sink = s, { intervalMs: 0 });
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  sink.push("a");
  sink.push("b");
  assert.equal(decoder.decode((await reader.read()).value), "ab"); // nobody read before: one write
  for (let i = 0; i < 20; i++) {
    sink.push(`${i},`);
    await new Promise((resolve) => setTimeout(resolve, 0)); // the turns a write would wait for
  }
  assert.equal(
    decoder.decode((await reader.read()).value),
    Array.from({ length: 20 }, (_, i) => `${i},`).join(""),
  );
  sink.finish();
  assert.equal((await reader.read()).done, true);
});
