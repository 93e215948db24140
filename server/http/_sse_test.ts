import assert from "node:assert/strict";
import { HEAD_HOLD_MAX_MS } from "./_paced_stream.ts";
import { sseResponse } from "./_sse.ts";

async function frames(response: Response): Promise<{ frames: string[]; reads: number }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let reads = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    reads++;
    text += value;
  }
  return { frames: text.split("\n\n").filter(Boolean), reads };
}

Deno.test("frames produced faster than they are written arrive whole, in order, in fewer writes", async () => {
  const response = await sseResponse([], async (writer) => {
    writer.send({ role: "assistant" });
    for (let i = 0; i < 200; i++) writer.sendJson(JSON.stringify({ n: i }));
    await Promise.resolve();
    writer.done();
  });
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const { frames: got, reads } = await frames(response);
  assert.equal(got.length, 202);
  assert.deepEqual(got[0], 'data: {"role":"assistant"}');
  assert.deepEqual(got.slice(1, 201).map((f) => JSON.parse(f.slice(6)).n), Array.from({ length: 200 }, (_, i) => i));
  assert.equal(got[201], "data: [DONE]");
  assert.ok(reads < 50, `${reads} reads for 202 frames`);
});

Deno.test("a slow producer's frames each go out as they come", async () => {
  // The producer makes frame n+1 only once the client has read frame n: nothing may wait for more.
  const read = [Promise.withResolvers<void>(), Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  const response = await sseResponse([], async (writer) => {
    for (let i = 0; i < 3; i++) {
      writer.sendJson(`{"n":${i}}`);
      await read[i].promise;
    }
    writer.done();
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  assert.equal(first.value, 'data: {"n":0}\n\n');
  read[0].resolve();
  const second = await reader.read();
  assert.equal(second.value, 'data: {"n":1}\n\n');
  read[1].resolve();
  await reader.cancel();
});

Deno.test("the client going away aborts the producer's signal", async () => {
  const aborted = Promise.withResolvers<void>();
  const response = await sseResponse([], async (writer, signal) => {
    signal.addEventListener("abort", () => aborted.resolve());
    writer.sendJson("{}");
    await aborted.promise;
  });
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  await aborted.promise;
});

Deno.test("a failing producer ends the stream with an error frame", async () => {
  const response = await sseResponse([], () => Promise.reject(new Error("model crashed")));
  const { frames: got } = await frames(response);
  assert.deepEqual(got, ['data: {"error":{"message":"model crashed"}}']);
});

Deno.test("a stream cut by server shutdown says so", async () => {
  const shutdown = new AbortController();
  const response = await sseResponse([shutdown.signal], async (writer, signal) => {
    writer.sendJson("{}");
    shutdown.abort();
    await Promise.resolve();
    signal.throwIfAborted();
  });
  const { frames: got } = await frames(response);
  assert.deepEqual(got, ["data: {}", 'data: {"error":{"message":"The server is stopping; this reply was cut short"}}']);
});

Deno.test("with headFrames the response waits for the producer's first frames, which leave in one write", async () => {
  const second = Promise.withResolvers<void>();
  let respondedAfter = -1;
  let sent = 0;
  const responding = sseResponse([], async (writer) => {
    writer.send({ role: "assistant" });
    sent++;
    await second.promise;
    writer.sendJson('{"content":"4"}');
    sent++;
    writer.done();
  }, { headFrames: 2 }).then((response) => {
    respondedAfter = sent;
    return response;
  });
  // the producer is waiting with one frame written: no response yet, however long the loop turns
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(respondedAfter, -1);
  second.resolve();
  const response = await responding;
  assert.equal(respondedAfter, 2);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  assert.ok(first.value?.startsWith('data: {"role":"assistant"}\n\ndata: {"content":"4"}\n\n'), first.value);
  await reader.cancel();
});

Deno.test("with headFrames a producer that ends or fails early still gets its response", async () => {
  const ended = await sseResponse([], (writer) => Promise.resolve(writer.done()), { headFrames: 2 });
  assert.deepEqual((await frames(ended)).frames, ["data: [DONE]"]);
  const failed = await sseResponse([], () => Promise.reject(new Error("no worker")), { headFrames: 2 });
  assert.deepEqual((await frames(failed)).frames, ['data: {"error":{"message":"no worker"}}']);
});

Deno.test("with headFrames a slow first token does not hold the head past HEAD_HOLD_MAX_MS", async () => {
  const release = Promise.withResolvers<void>();
  const began = performance.now();
  const response = await sseResponse([], async (writer) => {
    writer.send({ role: "assistant" });
    await release.promise;
    writer.done();
  }, { headFrames: 2 });
  assert.ok(performance.now() - began >= HEAD_HOLD_MAX_MS - 50);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, 'data: {"role":"assistant"}\n\n');
  release.resolve();
  assert.equal((await reader.read()).value, "data: [DONE]\n\n");
  await reader.cancel();
});

Deno.test("a reply's text pieces that wait for one write leave as one frame, in order with the others", async () => {
  const textFrame = (text: string) => JSON.stringify({ content: text });
  const otherFrame = (text: string) => JSON.stringify({ other: text });
  const response = await sseResponse([], async (writer) => {
    writer.send({ role: "assistant" });
    for (let i = 0; i < 100; i++) writer.sendText(`${i},`, textFrame);
    writer.sendText("x", otherFrame); // another framing ends the piece before it
    writer.sendText("y", otherFrame);
    writer.sendText("z", textFrame);
    writer.send({ finish: "stop" }); // so does any other frame
    writer.sendText("", textFrame);
    await Promise.resolve();
    writer.done();
  });
  const { frames: got } = await frames(response);
  const parsed = got.slice(0, -1).map((f) => JSON.parse(f.slice(6)));
  // The 100 pieces were pushed in one turn, before the client read: one write, so one frame.
  assert.deepEqual(parsed, [
    { role: "assistant" },
    { content: Array.from({ length: 100 }, (_, i) => `${i},`).join("") },
    { other: "xy" },
    { content: "z" },
    { finish: "stop" },
    { content: "" },
  ]);
  assert.equal(got.at(-1), "data: [DONE]");
});

Deno.test("a slow producer's text pieces each go out as their own frame", async () => {
  const textFrame = (text: string) => JSON.stringify({ content: text });
  const read = [Promise.withResolvers<void>(), Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  const response = await sseResponse([], async (writer) => {
    for (let i = 0; i < 3; i++) {
      writer.sendText(String(i), textFrame);
      await read[i].promise;
    }
    writer.done();
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, 'data: {"content":"0"}\n\n');
  read[0].resolve();
  assert.equal((await reader.read()).value, 'data: {"content":"1"}\n\n');
  read[1].resolve();
  await reader.cancel();
});
