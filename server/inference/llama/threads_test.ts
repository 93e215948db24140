import assert from "node:assert/strict";
import {
  BUSY_WINDOW_MAX_S,
  BUSY_WINDOW_RECENT_S,
  chooseLlamaThreads,
  chooseLlamaThreadsForBusy,
  fixedLlamaThreads,
  LlamaThreadGovernor,
  RUNNABLE_TRANSIENT,
} from "./threads.ts";

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

Deno.test("thread policy from busy cores: the cores other processes leave free, at least 1, at most the idle count", () => {
  const two = { physicalCores: 2, logicalCores: 2 };
  assert.equal(chooseLlamaThreadsForBusy(two, 0).threads, 2);
  assert.equal(chooseLlamaThreadsForBusy(two, 0.3).threads, 2);
  const busy = chooseLlamaThreadsForBusy(two, 0.9);
  assert.equal(busy.threads, 1);
  assert.match(busy.reason, /other processes keep 0\.9 of 2 cores busy/);
  assert.equal(chooseLlamaThreadsForBusy(two, 5).threads, 1);
  assert.equal(chooseLlamaThreadsForBusy({ physicalCores: 16, logicalCores: 32 }, 0).threads, 15);
  assert.equal(chooseLlamaThreadsForBusy({ physicalCores: 16, logicalCores: 32 }, 3.2).threads, 13);
});

/** A Linux-like machine: its total CPU time and runnable count are known too. */
function linuxMachine() {
  const state = { load: 0, cpu: 0, now: 0, machine: 0, othersRunnable: 0 };
  return {
    state,
    probe: {
      load: () => state.load,
      cpuSeconds: () => state.cpu,
      now: () => state.now,
      machineCpuSeconds: () => state.machine,
      othersRunnable: () => state.othersRunnable,
    },
  };
}

Deno.test("thread governor: with the machine's CPU time, a process that just stopped no longer halves the threads", () => {
  const { state, probe } = linuxMachine();
  state.load = 3; // a minute of another server's work still in the load average
  const governor = new LlamaThreadGovernor({ physicalCores: 2, logicalCores: 2 }, { probe });
  assert.equal(governor.current.threads, 2, "nothing else runnable now: the lagging load average is not read");
  assert.match(governor.current.reason, /0 other thread\(s\) runnable now/);
  // while we generate on two threads for a second, our own use is not counted as others'
  state.now = 1;
  state.cpu = 2;
  state.machine = 2;
  assert.equal(governor.decide().threads, 2);
  assert.match(governor.current.reason, /others used 0\.0 cores over 1\.00 s/);
  // another process takes a core: the next reading (a quarter second on) gives it up
  state.now = 1.1;
  state.machine = 2.2;
  state.cpu = 2.1;
  assert.equal(governor.decide().threads, 2, "too soon to measure again: the decision stands");
  state.now = 1.3;
  state.machine = 2 + 0.3 * 2;
  state.cpu = 2 + 0.3;
  state.othersRunnable = 1;
  assert.equal(governor.decide().threads, 1);
  // it stops; the next quarter second shows the core free again
  state.now = 1.6;
  state.machine += 0.3 * 1;
  state.cpu += 0.3;
  state.othersRunnable = 0;
  assert.equal(governor.decide().threads, 2);
  // after a long idle stretch the instant runnable count decides, not the average over it
  state.now += BUSY_WINDOW_MAX_S + 10;
  state.machine += 20; // busy earlier in that stretch
  state.othersRunnable = 2;
  assert.equal(governor.decide().threads, 1);
  state.now += BUSY_WINDOW_MAX_S + 10;
  state.othersRunnable = 0;
  assert.equal(governor.decide().threads, 2);
});

Deno.test("thread governor: a reply that ended elsewhere before this request does not halve its threads", () => {
  const { state, probe } = linuxMachine();
  const governor = new LlamaThreadGovernor({ physicalCores: 2, logicalCores: 2 }, { probe });
  // Another server answered on both cores for 1.2 s of the 1.5 s since our last reading, and is idle now.
  state.now = 1.5;
  state.machine = 2.4;
  assert.equal(governor.decide().threads, 2, "the busy stretch is over: nothing else is runnable now");
  assert.match(governor.current.reason, /others used 1\.6 cores over 1\.50 s, 0 thread\(s\) runnable now/);
  // A build that was busy then and is still runnable now keeps a core.
  state.now = 3;
  state.machine += 1.5 * 1.5;
  state.othersRunnable = 2;
  assert.equal(governor.decide().threads, 1);
  // Within a reply (readings a quarter second apart) one busy thread is a busy core: the window is ours.
  state.now = 3.3;
  state.machine += 0.3 * 1;
  state.othersRunnable = 1;
  assert.ok(0.3 <= BUSY_WINDOW_RECENT_S);
  assert.equal(governor.decide().threads, 1);
  // One thread runnable at this instant, after a quiet stretch, is as likely a passer-by: no core given up.
  state.now = 4.5;
  state.othersRunnable = 1;
  assert.equal(governor.decide().threads, 2);
  // The same after a long idle stretch, when the instant alone decides: one runnable thread is not
  // a busy core, two are.
  state.now += BUSY_WINDOW_MAX_S + 1;
  assert.equal(governor.decide().threads, 2);
  assert.match(governor.current.reason, /1 other thread\(s\) runnable now/);
  assert.ok(RUNNABLE_TRANSIENT > 0 && RUNNABLE_TRANSIENT < 1);
});

Deno.test("thread governor: this machine's probe reads /proc where it exists, and decides within the cores", () => {
  const governor = new LlamaThreadGovernor({ physicalCores: 2, logicalCores: 2 });
  const { threads, reason } = governor.decide();
  assert.ok(threads === 1 || threads === 2, `${threads}`);
  if (Deno.build.os === "linux") assert.match(reason, /runnable now|cores over/);
});
