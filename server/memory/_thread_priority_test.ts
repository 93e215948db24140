import assert from "node:assert/strict";
import { getPriority } from "node:os";
import {
  BACKGROUND_THREAD_NICE,
  BACKGROUND_THREAD_SLICE_NS,
  backgroundNice,
  threadSliceNs,
} from "./_thread_priority.ts";

Deno.test({
  name: "thread priority: a background worker runs below the event loop, which keeps its priority",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const helper = new URL("./_thread_priority.ts", import.meta.url).href;
    const source = `import { lowerThreadPriority, threadSliceNs } from "${helper}";
      const lowered = lowerThreadPriority();
      const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
      self.postMessage({ lowered, nice: (await import("node:os")).getPriority(tid), slice: threadSliceNs() });`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    const before = getPriority(Deno.pid);
    const mainSlice = threadSliceNs();
    const worker = new Worker(url, { type: "module" });
    try {
      const reply = await new Promise<{ lowered: boolean; nice: number; slice: number | null }>((resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => reject(new Error(event.message));
      });
      // Always below the event loop, even when the whole process already runs niced.
      assert.deepEqual(reply.lowered, true);
      assert.deepEqual(reply.nice, Math.min(19, before + BACKGROUND_THREAD_NICE));
      if (before < 19) assert.ok(reply.nice > before);
      assert.deepEqual(getPriority(Deno.pid), before);
      // A kernel with per-thread slices (Linux 6.12+ reports the slice in use): the worker's is long,
      // so that the event loop and every other thread preempt it as they wake; the event loop's is unchanged.
      if (mainSlice !== null && mainSlice > 0) {
        assert.deepEqual(reply.slice, BACKGROUND_THREAD_SLICE_NS);
        assert.deepEqual(threadSliceNs(), mainSlice);
        assert.ok(mainSlice < BACKGROUND_THREAD_SLICE_NS);
      }
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  },
});

Deno.test("thread priority: background threads sit ten steps below the main thread, floored at 19", () => {
  assert.equal(backgroundNice(0), 10);
  assert.equal(backgroundNice(5), 15);
  assert.equal(backgroundNice(10), 19);
  assert.equal(backgroundNice(19), 19);
});

Deno.test({
  name: "thread priority: a worker yields its CPU between jobs (sched_yield) and goes on where it was",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const helper = new URL("./_thread_priority.ts", import.meta.url).href;
    const source = `import { yieldThread } from "${helper}";
      let sum = 0;
      const yielded = [];
      for (let i = 0; i < 3; i++) { sum += i; yielded.push(yieldThread()); }
      self.postMessage({ yielded, sum });`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    const worker = new Worker(url, { type: "module" });
    try {
      const reply = await new Promise<{ yielded: boolean[]; sum: number }>((resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => reject(new Error(event.message));
      });
      // With FFI (as the server runs) each call yields, libc opened once for the thread.
      assert.deepEqual(reply, { yielded: [true, true, true], sum: 3 });
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  },
});
