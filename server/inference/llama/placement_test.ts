import assert from "node:assert/strict";
import { DecodePlacement, type PlacementKind } from "./placement.ts";

/** The CPUs a thread of this process may run on, as /proc lists them ("0-1", "1"). */
function allowedCpus(tid = Deno.pid): string {
  const status = Deno.readTextFileSync(`/proc/self/task/${tid}/status`);
  return /Cpus_allowed_list:\s*(\S+)/.exec(status)![1];
}

/** The CPUs of each of `tids` still running (the blocking pool ends threads idle for a while). */
function allowedCpusOf(tids: number[]): string[] {
  return tids.flatMap((tid) => {
    try {
      return [allowedCpus(tid)];
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
  });
}

/** Threads of Deno's blocking pool (where native async work runs), started by a file read on it. */
async function blockingPoolThreads(): Promise<number[]> {
  await Deno.readTextFile("/proc/self/status");
  // Idle pool threads end after a while (earlier tests in this process leave some): one can be gone
  // between the listing and the read of its name.
  return [...Deno.readDirSync("/proc/self/task")].map((e) => Number(e.name)).filter((tid) => {
    try {
      return Deno.readTextFileSync(`/proc/self/task/${tid}/comm`).startsWith("tokio-runtime-w");
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  });
}

const linuxWithTwoCpus = Deno.build.os === "linux" && allowedCpusCount() > 1;

function allowedCpusCount(): number {
  return Deno.build.os === "linux" ? cpuSet(allowedCpus()).size : 0;
}

/** The CPUs in a /proc CPU list ("0-2,5" is 0, 1, 2 and 5). */
function cpuSet(list: string): Set<number> {
  const cpus = new Set<number>();
  for (const range of list.split(",")) {
    const [a, b = a] = range.split("-").map(Number);
    for (let cpu = a; cpu <= b; cpu++) cpus.add(cpu);
  }
  return cpus;
}

/**
 * Enters a single-thread generation placed `kind`: the event loop must be on one CPU and the
 * blocking pool on `poolCpus(that CPU, the CPUs before)`; on leaving, every thread's CPUs are back.
 */
async function assertPlacesThreads(
  kind: PlacementKind,
  poolCpus: (own: number, before: Set<number>) => number[],
): Promise<void> {
  const before = allowedCpus();
  const pool = await blockingPoolThreads();
  assert(pool.length > 0, "a file read starts a blocking-pool thread");
  using placement = new DecodePlacement(() => 1);
  const leave = placement.enter(kind);
  assert.equal(placement.pinned, kind);
  const own = allowedCpus();
  assert.match(own, /^\d+$/, "the event loop on one CPU");
  const wanted = poolCpus(Number(own), cpuSet(before));
  for (const cpus of allowedCpusOf(pool)) assert.deepEqual([...cpuSet(cpus)], wanted);
  leave();
  assert.equal(placement.pinned, undefined);
  assert.equal(allowedCpus(), before);
  for (const cpus of allowedCpusOf(pool)) assert.equal(cpus, before);
}

Deno.test({
  name: "placement: a relay generation puts the event loop and the blocking pool on one core, then back",
  ignore: !linuxWithTwoCpus,
  fn: () => assertPlacesThreads("beside", (own) => [own]),
});

Deno.test({
  name: "placement: a decode-loop generation keeps the event loop on its core and the blocking pool on the others",
  ignore: !linuxWithTwoCpus,
  fn: () => assertPlacesThreads("apart", (own, before) => [...before].filter((cpu) => cpu !== own)),
});

Deno.test({
  name: "placement: generations that want different placements leave the threads where they are",
  ignore: !linuxWithTwoCpus,
  fn: () => {
    const before = allowedCpus();
    using relay = new DecodePlacement(() => 1);
    using loop = new DecodePlacement(() => 1);
    const leaveRelay = relay.enter("beside");
    assert.equal(relay.pinned, "beside");
    const leaveLoop = loop.enter("apart");
    assert.equal(relay.pinned, undefined);
    assert.equal(allowedCpus(), before);
    leaveRelay();
    assert.equal(loop.pinned, "apart");
    const again = loop.enter("beside"); // one placement, both kinds at once: no agreement either
    assert.equal(loop.pinned, undefined);
    again();
    leaveLoop();
    assert.equal(loop.pinned, undefined);
    assert.equal(allowedCpus(), before);
  },
});

Deno.test({
  name: "placement: stays pinned until the last of two overlapping generations ends; leaving twice counts once",
  ignore: !linuxWithTwoCpus,
  fn: () => {
    const before = allowedCpus();
    using placement = new DecodePlacement(() => 1);
    const first = placement.enter();
    const second = placement.enter();
    first();
    first();
    assert(placement.pinned);
    second();
    assert(!placement.pinned);
    assert.equal(allowedCpus(), before);
  },
});

Deno.test({
  name: "placement: two or more compute threads keep their cores; a change of thread count pins or unpins",
  ignore: !linuxWithTwoCpus,
  fn: () => {
    const before = allowedCpus();
    let threads = 2;
    using placement = new DecodePlacement(() => threads);
    const leave = placement.enter();
    assert(!placement.pinned);
    assert.equal(allowedCpus(), before);
    threads = 1;
    placement.update();
    assert(placement.pinned);
    threads = 2;
    placement.update();
    assert(!placement.pinned);
    assert.equal(allowedCpus(), before);
    leave();
  },
});

Deno.test({
  name: "placement: placements in one process decide together; one generating on two threads keeps the cores",
  ignore: !linuxWithTwoCpus,
  fn: () => {
    const before = allowedCpus();
    using lone = new DecodePlacement(() => 1);
    using pooled = new DecodePlacement(() => 2);
    const leaveLone = lone.enter();
    assert(lone.pinned);
    const leavePooled = pooled.enter();
    assert(!lone.pinned);
    assert.equal(allowedCpus(), before);
    leavePooled();
    assert(lone.pinned);
    leaveLone();
    assert(!lone.pinned);
    assert.equal(allowedCpus(), before);
  },
});

Deno.test({
  name: "placement: a worker thread started while pinned gets the event loop's cores back",
  ignore: !linuxWithTwoCpus,
  fn: async () => {
    const before = allowedCpus();
    using placement = new DecodePlacement(() => 1);
    const leave = placement.enter();
    const tasks = new Set([...Deno.readDirSync("/proc/self/task")].map((e) => e.name));
    const worker = new Worker(
      `data:text/javascript,${encodeURIComponent("self.onmessage = () => self.postMessage('up');")}`,
      { type: "module" },
    );
    try {
      const up = Promise.withResolvers<void>();
      worker.onmessage = () => up.resolve();
      worker.postMessage("");
      await up.promise;
      const started = [...Deno.readDirSync("/proc/self/task")].map((e) => e.name).filter((t) => !tasks.has(t));
      assert(started.length > 0, "the worker runs on a thread of its own");
      leave();
      for (const tid of started) assert.equal(allowedCpus(Number(tid)), before);
    } finally {
      worker.terminate();
    }
  },
});

Deno.test({
  name: "placement: apart, each generating decode loop needs a core of its own among the others",
  ignore: !linuxWithTwoCpus,
  fn: () => {
    const before = allowedCpus();
    const others = cpuSet(before).size - 1;
    using placement = new DecodePlacement(() => 1);
    const models = Array.from({ length: others + 1 }, () => ({}));
    const leaves = models.slice(0, others).map((model) => placement.enter("apart", model));
    const sameModel = placement.enter("apart", models[0]); // a reply that joins a loop needs no core
    assert.equal(placement.pinned, "apart");
    const oneTooMany = placement.enter("apart", models[others]);
    assert.equal(placement.pinned, undefined);
    assert.equal(allowedCpus(), before);
    oneTooMany();
    assert.equal(placement.pinned, "apart");
    sameModel();
    for (const leave of leaves) leave();
    assert.equal(placement.pinned, undefined);
    assert.equal(allowedCpus(), before);
  },
});
