import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { BackgroundLoop } from "./_background_loop.ts";

Deno.test("the background loop passes again while there is work, reports failures, and stop aborts its signal", async () => {
  // pass results in order: work, a failure, work, then an empty queue (where the test stops it)
  const script: (number | Error)[] = [2, new Error("model down"), 1, 0];
  const outcomes: (string | null)[] = [];
  const lines: string[] = [];
  let idle!: () => void;
  const reachedIdle = new Promise<void>((resolve) => (idle = resolve));
  const loop = new BackgroundLoop({
    pass: () => {
      const next = script.shift() ?? 0;
      if (next === 0) idle();
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    idleMs: 0,
    failure: "testing failed",
    log: createLogger({ level: "warn", sink: (line) => lines.push(line) }),
    onPass: (error) => outcomes.push(error === null ? null : (error as Error).message),
  });
  assert.equal(loop.running, false);
  loop.start();
  assert.equal(loop.running, true);
  const signal = loop.signal;
  await reachedIdle;
  await loop.stop();
  assert.equal(loop.running, false);
  assert.ok(signal.aborted);
  assert.deepEqual(outcomes.slice(0, 4), [null, "model down", null, null]);
  assert.deepEqual(lines.map((line) => JSON.parse(line).msg), ["testing failed; will retry"]);
  assert.equal(JSON.parse(lines[0]).failures, 1);
});
