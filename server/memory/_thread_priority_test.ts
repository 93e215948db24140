import assert from "node:assert/strict";
import { getPriority } from "node:os";
import { BACKGROUND_THREAD_NICE } from "./_thread_priority.ts";

Deno.test({
  name: "thread priority: a background worker runs below the event loop, which keeps its priority",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const helper = new URL("./_thread_priority.ts", import.meta.url).href;
    const source = `import { lowerThreadPriority } from "${helper}";
      const lowered = lowerThreadPriority();
      const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
      self.postMessage({ lowered, nice: (await import("node:os")).getPriority(tid) });`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    const before = getPriority(Deno.pid);
    const worker = new Worker(url, { type: "module" });
    try {
      const reply = await new Promise<{ lowered: boolean; nice: number }>((resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => reject(new Error(event.message));
      });
      assert.deepEqual(reply, { lowered: true, nice: Math.max(before, BACKGROUND_THREAD_NICE) });
      assert.deepEqual(getPriority(Deno.pid), before);
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  },
});
