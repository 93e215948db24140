import assert from "node:assert/strict";
import { NDJSON_CONTENT_TYPE, ndjsonResponse } from "./_ndjson.ts";

function lines(text: string): unknown[] {
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

Deno.test("every object is one line; the stream ends when produce returns", async () => {
  const res = await ndjsonResponse([], async (writer) => {
    writer.send({ n: 1, text: "a\nb" });
    await Promise.resolve();
    writer.sendJson('{"n":2}');
    writer.send({ done: true });
  });
  assert.equal(res.headers.get("content-type"), NDJSON_CONTENT_TYPE);
  const text = await res.text();
  assert.equal(text.split("\n").length, 4, "three lines and the final newline");
  assert.deepEqual(lines(text), [{ n: 1, text: "a\nb" }, { n: 2 }, { done: true }]);
});

Deno.test("an error thrown mid-stream becomes a last {error} line", async () => {
  const res = await ndjsonResponse([], (writer) => {
    writer.send({ done: false });
    return Promise.reject(new Error("the model went away"));
  });
  assert.deepEqual(lines(await res.text()), [{ done: false }, { error: "the model went away" }]);
});

Deno.test("a client that goes away aborts produce's signal; a server signal too", async () => {
  let seen: AbortSignal | undefined;
  const gone = Promise.withResolvers<void>();
  const res = await ndjsonResponse([], async (writer, signal) => {
    seen = signal;
    writer.send({ first: true });
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    gone.resolve();
  });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  await gone.promise;
  assert.ok(seen?.aborted);

  const server = new AbortController();
  const stopped = await ndjsonResponse([server.signal], async (writer, signal) => {
    writer.send({ first: true });
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    signal.throwIfAborted();
  });
  server.abort();
  assert.deepEqual(lines(await stopped.text()), [{ first: true }, {
    error: "the server is stopping; this reply was cut short",
  }]);
  // Returning quietly on the abort (as generation does) still tells the client why.
  const quiet = new AbortController();
  const returned = await ndjsonResponse([quiet.signal], async (writer, signal) => {
    writer.send({ first: true });
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  });
  quiet.abort();
  assert.deepEqual(lines(await returned.text()), [{ first: true }, {
    error: "the server is stopping; this reply was cut short",
  }]);
});

Deno.test("a reply's text pieces that wait for one write leave as one line", async () => {
  const line = (text: string) => JSON.stringify({ message: { content: text }, done: false });
  const res = await ndjsonResponse([], async (writer) => {
    for (let i = 0; i < 50; i++) writer.sendText("c", line);
    writer.send({ done: true });
    await Promise.resolve();
  });
  assert.deepEqual(lines(await res.text()), [{ message: { content: "c".repeat(50) }, done: false }, { done: true }]);
});

Deno.test("with headLines the response waits for the producer's first line, which leaves with the head", async () => {
  const second = Promise.withResolvers<void>();
  let responded = false;
  const firstLine = Promise.withResolvers<void>();
  const responding = ndjsonResponse([], async (writer) => {
    await firstLine.promise;
    writer.send({ n: 1 });
    await second.promise;
    writer.send({ done: true });
  }, { headLines: 1 }).then((response) => {
    responded = true;
    return response;
  });
  // the producer has written nothing yet: no response, however long the loop turns
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(responded, false);
  firstLine.resolve();
  const res = await responding;
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, '{"n":1}\n');
  second.resolve();
  assert.equal((await reader.read()).value, '{"done":true}\n');
  await reader.cancel();
});
