import assert from "node:assert/strict";
import { chooseLlamaThreads } from "./threads.ts";

Deno.test("thread policy: every physical core up to 4, one left for the event loop above, 1 when busy", () => {
  assert.equal(chooseLlamaThreads({ physicalCores: 2, logicalCores: 4 }, 0.3).threads, 2);
  assert.equal(chooseLlamaThreads({ physicalCores: 4, logicalCores: 8 }, 1).threads, 4);
  assert.equal(chooseLlamaThreads({ physicalCores: 8, logicalCores: 16 }, 1).threads, 7);
  const busy = chooseLlamaThreads({ physicalCores: 2, logicalCores: 2 }, 18.4);
  assert.equal(busy.threads, 1);
  assert.match(busy.reason, /load 18\.4 on 2 cores/);
  assert.equal(chooseLlamaThreads({ physicalCores: 1, logicalCores: 1 }, 5).threads, 1);
});
