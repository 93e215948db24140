import assert from "node:assert/strict";
import { chooseLlamaThreads, fixedLlamaThreads, LlamaThreadGovernor } from "./threads.ts";

Deno.test("thread policy: every physical core up to 4, one left for the event loop above, 1 when busy", () => {
  assert.equal(chooseLlamaThreads({ physicalCores: 2, logicalCores: 4 }, 0.3).threads, 2);
  assert.equal(chooseLlamaThreads({ physicalCores: 4, logicalCores: 8 }, 1).threads, 4);
  assert.equal(chooseLlamaThreads({ physicalCores: 8, logicalCores: 16 }, 1).threads, 7);
  const busy = chooseLlamaThreads({ physicalCores: 2, logicalCores: 2 }, 18.4);
  assert.equal(busy.threads, 1);
  assert.match(busy.reason, /load 18\.4 on 2 cores/);
  assert.equal(chooseLlamaThreads({ physicalCores: 1, logicalCores: 1 }, 5).threads, 1);
});

/** A machine whose load and this process's CPU time the test sets. */
function machine() {
  const state = { load: 0, cpu: 0, now: 0 };
  return { state, probe: { load: () => state.load, cpuSeconds: () => state.cpu, now: () => state.now } };
}

Deno.test("thread governor: decides again as the load comes and goes, not keeping the count from the start", () => {
  const { state, probe } = machine();
  state.load = 5;
  const governor = new LlamaThreadGovernor({ physicalCores: 2, logicalCores: 2 }, { probe });
  assert.equal(governor.current.threads, 1, "busy at start");
  assert.equal(governor.max, 2);
  state.now = 30;
  state.load = 0.2;
  assert.equal(governor.decide().threads, 2, "the load went away");
  state.now = 60;
  state.load = 3;
  const busy = governor.decide();
  assert.deepEqual([busy.threads, busy.source], [1, "policy"]);
});

Deno.test("thread governor: the server's own CPU use does not count as other work", () => {
  const { state, probe } = machine();
  const governor = new LlamaThreadGovernor({ physicalCores: 2, logicalCores: 2 }, { probe });
  // Two minutes of our own two threads busy: the load average shows ~2, all of it ours.
  for (let t = 5; t <= 120; t += 5) {
    state.now = t;
    state.cpu = 2 * t;
    state.load = 2 * (1 - Math.exp(-t / 60));
    assert.equal(governor.decide().threads, 2, `at ${t} s`);
  }
  assert.ok(Math.abs(governor.ownLoad - state.load) < 0.05, `own ${governor.ownLoad} vs load ${state.load}`);
  assert.match(governor.current.reason, /of it ours/);
  // Another process adds a load of 2.5 on top: now the machine is busy.
  state.now = 125;
  state.cpu = 250;
  state.load += 2.5;
  assert.equal(governor.decide().threads, 1);
});

Deno.test("thread governor: a count set by flag never changes and says so", () => {
  const { state, probe } = machine();
  const governor = new LlamaThreadGovernor({ physicalCores: 8, logicalCores: 16 }, { fixed: 3, probe });
  state.load = 40;
  state.now = 10;
  const decided = governor.decide();
  assert.deepEqual([decided.threads, decided.source, governor.max], [3, "flag", 3]);
  assert.match(decided.reason, /set by flag/);
  assert.deepEqual(fixedLlamaThreads(2).source, "flag");
});
