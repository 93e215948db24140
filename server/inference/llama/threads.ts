/**
 * How many threads llama.cpp gets, and why. Measured on a 2-core VM (SmolLM2-135M Q4_1,
 * llama-bench): decode 47.7 tok/s on 1 thread, 75.3 on 2; prompt processing 94 and 140 — both
 * phases gain from every physical core, so one count serves both (node-llama-cpp also has only
 * one per context). Logical (SMT) threads add nothing to these memory-bound kernels. llama.cpp's
 * workers spin while they wait, so when the machine is already busy (load average at or above the
 * core count) each extra worker fights other processes for a core: the same 2-core VM under a load
 * of ~18 ran a test 10× slower on 2 threads than on 1. Above 4 cores one core is left to the HTTP
 * event loop and the OS; at 4 or fewer, streaming costs too little to give up a quarter of the
 * compute.
 *
 * The load changes while the server runs, so {@link LlamaThreadGovernor} decides again at each
 * request and llama.cpp applies the count from the next batch on; the server's own CPU use is taken
 * out, or its own busy threads would make it give itself fewer. Where the kernel tells the machine's
 * CPU time (Linux: /proc/stat), the governor looks at what other processes used in the last quarter
 * to three seconds, as far as they are also runnable at the instant it decides (/proc/loadavg less
 * this process's own threads), and decides again every quarter second while it generates: the
 * 1-minute load average lags by a minute, and even a window of seconds reaches back before the
 * request, so a process that had just stopped (another server answering in turn, a build that
 * finished) cost a reply half its speed. Elsewhere it reads the load average. Greedy replies are the
 * same on 1 and 2 threads (each output row is computed by one thread), so a change never alters a
 * reply.
 */
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import process from "node:process";
import { type CpuInfo, usableCores } from "../../hardware/mod.ts";

/** The chosen thread count and the reason `tabagent doctor` prints. */
export interface ThreadPolicy {
  threads: number;
  reason: string;
  /** `flag`: `--llama-threads` / `TABAGENT_LLAMA_THREADS` set it; `policy`: chosen from cores and load. */
  source: "flag" | "policy";
}

/**
 * The thread count for llama.cpp on `cpu`, given the 1-minute load average (of other work).
 *
 * @example
 * ```ts
 * const { threads, reason } = chooseLlamaThreads({ physicalCores: 8, logicalCores: 16 });
 * ```
 */
export function chooseLlamaThreads(
  cpu: Pick<CpuInfo, "physicalCores" | "logicalCores">,
  load: number = loadavg()[0],
): ThreadPolicy {
  const cores = usableCores(cpu);
  if (cores > 1 && load >= cores) {
    return {
      threads: 1,
      source: "policy",
      reason: `the machine is busy (load ${load.toFixed(1)} on ${cores} cores): more spinning workers would fight ` +
        `other processes for cores`,
    };
  }
  if (cores > 4) {
    return {
      threads: cores - 1,
      source: "policy",
      reason: `${cores} physical cores, one left to the HTTP event loop and the OS; decode and prompt processing ` +
        `both scale with physical cores, not SMT threads`,
    };
  }
  return {
    threads: cores,
    source: "policy",
    reason: `${cores} physical core(s), all used: decode and prompt processing both scale with cores ` +
      `(2-core VM: decode 75 vs 48 tok/s, prompt 140 vs 94 tok/s on 2 vs 1 threads); streaming needs little CPU`,
  };
}

/**
 * The thread count for llama.cpp on `cpu` when other processes keep `othersBusy` cores busy
 * (measured, 0..cores): the cores they leave free, rounded, at least 1 and at most what
 * {@link chooseLlamaThreads} gives an idle machine.
 *
 * @example
 * ```ts
 * chooseLlamaThreadsForBusy({ physicalCores: 2, logicalCores: 2 }, 0.8).threads; // 1
 * ```
 */
export function chooseLlamaThreadsForBusy(
  cpu: Pick<CpuInfo, "physicalCores" | "logicalCores">,
  othersBusy: number,
): ThreadPolicy {
  const idle = chooseLlamaThreads(cpu, 0);
  const cores = usableCores(cpu);
  const free = Math.max(1, Math.round(cores - othersBusy));
  if (free >= idle.threads) return idle;
  return {
    threads: free,
    source: "policy",
    reason: `other processes keep ${othersBusy.toFixed(1)} of ${cores} cores busy: more spinning workers would ` +
      `fight them for cores`,
  };
}

/** The count `--llama-threads` / `TABAGENT_LLAMA_THREADS` sets, as a {@link ThreadPolicy}. */
export function fixedLlamaThreads(threads: number): ThreadPolicy {
  return {
    threads,
    source: "flag",
    reason: "set by flag (--llama-threads / TABAGENT_LLAMA_THREADS), overriding the thread policy",
  };
}

/** The kernel's 1-minute load average decays with this time constant (s). */
const LOAD_WINDOW_S = 60;

/** Where {@link LlamaThreadGovernor} reads the machine; the defaults read this machine. */
export interface LoadProbe {
  /** The 1-minute load average. */
  load(): number;
  /** CPU seconds this process has used so far (user + system, every thread). */
  cpuSeconds(): number;
  /** Seconds on a monotonic clock. */
  now(): number;
  /**
   * CPU seconds every process on the machine has used so far (all cores, idle and steal left out),
   * or null where the kernel does not tell (then the load average decides).
   */
  machineCpuSeconds?(): number | null;
  /**
   * Threads of other processes runnable on the machine at this instant (this process's own, such as
   * llama.cpp's workers still polling for work, left out), or null where unknown.
   */
  othersRunnable?(): number | null;
}

/** The kernel's clock tick for /proc/stat (USER_HZ, 100 on every Linux architecture we run on). */
const USER_HZ = 100;

/** /proc/stat's first line, summed: user, nice, system, irq and softirq (guest is inside user). */
function procStatBusySeconds(): number | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").slice(0, 256).split("\n", 1)[0];
    const [label, user, nice, system, _idle, _iowait, irq, softirq] = line.trim().split(/\s+/);
    if (label !== "cpu") return null;
    const busy = [user, nice, system, irq, softirq].map(Number);
    return busy.every(Number.isFinite) ? busy.reduce((a, b) => a + b, 0) / USER_HZ : null;
  } catch {
    return null;
  }
}

/**
 * /proc/loadavg's runnable count less this process's runnable threads (state R in
 * /proc/self/task/∗/stat, the reading one among them). The threads are read only when something
 * besides the reader runs: a request arriving at an idle machine pays one small read.
 */
function procOthersRunnable(): number | null {
  try {
    const running = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[3]?.split("/")[0]);
    if (!Number.isFinite(running)) return null;
    if (running <= 1) return 0;
    let own = 0;
    for (const task of readdirSync("/proc/self/task")) {
      try {
        const stat = readFileSync(`/proc/self/task/${task}/stat`, "utf8");
        if (stat.charAt(stat.lastIndexOf(")") + 2) === "R") own++;
      } catch {
        // the thread ended meanwhile
      }
    }
    return Math.max(0, running - Math.max(1, own));
  } catch {
    return null;
  }
}

const systemProbe: LoadProbe = {
  load: () => loadavg()[0],
  cpuSeconds: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  },
  now: () => performance.now() / 1000,
  machineCpuSeconds: procStatBusySeconds,
  othersRunnable: procOthersRunnable,
};

/**
 * Shortest time between two decisions (s): `decide` may be called at every batch, and a shorter
 * window of the machine's CPU time is mostly tick noise.
 */
export const BUSY_WINDOW_MIN_S = 0.25;
/**
 * Longest window that is a reply's own (s): `decide` is called at each step and decides at most every
 * {@link BUSY_WINDOW_MIN_S}, so within a reply the windows are a quarter second and a step. A longer
 * one starts before the request arrived.
 */
export const BUSY_WINDOW_RECENT_S = 0.35;
/**
 * What is taken off the count of other processes' threads runnable at the instant a request starts
 * (cores): one such thread is as likely the client that just sent the request, or a kernel worker
 * passing by, as a process that keeps a core busy. Two still count as a busy core and a half.
 */
export const RUNNABLE_TRANSIENT = 0.5;
/** Longest window that still says anything about now (s); past it, the instant runnable count alone. */
export const BUSY_WINDOW_MAX_S = 3;

/**
 * Decides llama.cpp's thread count again whenever asked, from the load of other work: the load
 * average less this process's own recent CPU use, averaged the way the kernel averages load. A
 * count set by flag never changes.
 *
 * @example
 * ```ts
 * const governor = new LlamaThreadGovernor({ physicalCores: 2, logicalCores: 2 });
 * llama.maxThreads = governor.decide().threads;
 * ```
 */
export class LlamaThreadGovernor {
  readonly #cpu: Pick<CpuInfo, "physicalCores" | "logicalCores">;
  readonly #fixed?: number;
  readonly #probe: LoadProbe;
  #current: ThreadPolicy;
  #ownLoad = 0;
  #lastCpu: number;
  #lastAt: number;
  /** The last reading of the machine's and this process's CPU time, where the kernel gives it. */
  #sample?: { at: number; machine: number; own: number };
  /** When the current decision was made (probe seconds). */
  #decidedAt: number;

  constructor(
    cpu: Pick<CpuInfo, "physicalCores" | "logicalCores">,
    options: { fixed?: number; probe?: LoadProbe } = {},
  ) {
    this.#cpu = cpu;
    this.#fixed = options.fixed;
    this.#probe = options.probe ?? systemProbe;
    this.#lastCpu = this.#probe.cpuSeconds();
    this.#lastAt = this.#probe.now();
    this.#decidedAt = this.#lastAt;
    this.#current = this.#fixed !== undefined ? fixedLlamaThreads(this.#fixed) : this.#decideNow();
  }

  /** The most threads a decision can give: what each llama.cpp context is created with. */
  get max(): number {
    return this.#fixed ?? chooseLlamaThreads(this.#cpu, 0).threads;
  }

  /** The latest decision. */
  get current(): ThreadPolicy {
    return this.#current;
  }

  /** This process's share of the load average, as estimated at the latest decision. */
  get ownLoad(): number {
    return this.#ownLoad;
  }

  /**
   * Decides again from the load now; cheap enough to call at every batch: a call within
   * {@link BUSY_WINDOW_MIN_S} of the last decision keeps it.
   */
  decide(): ThreadPolicy {
    if (this.#fixed !== undefined) return this.#current;
    const now = this.#probe.now();
    if (now - this.#decidedAt < BUSY_WINDOW_MIN_S) return this.#current;
    this.#decidedAt = now;
    this.#current = this.#decideNow();
    return this.#current;
  }

  #decideNow(): ThreadPolicy {
    const machine = this.#probe.machineCpuSeconds?.() ?? null;
    return machine === null ? this.#decideFromLoadAverage() : this.#decideFromBusy(machine);
  }

  /**
   * From what other processes used since the last reading, as far as they are runnable now too; from
   * who is runnable now alone when nothing was read for a while.
   */
  #decideFromBusy(machine: number): ThreadPolicy {
    const now = this.#probe.now();
    const own = this.#probe.cpuSeconds();
    const last = this.#sample;
    this.#sample = { at: now, machine, own };
    const runnable = this.#probe.othersRunnable?.() ?? null;
    const window = last ? now - last.at : Infinity;
    const busyNow = runnable === null
      ? null
      : Math.max(0, runnable - (window <= BUSY_WINDOW_RECENT_S ? 0 : RUNNABLE_TRANSIENT));
    if (last && window <= BUSY_WINDOW_MAX_S) {
      const used = Math.max(0, (machine - last.machine - (own - last.own)) / window);
      // Busy over the window and still runnable now: both must say so. The first reading of a request
      // after a pause looks back at what ended before it arrived (another server's reply, a build
      // that finished), which would cost this request half its speed.
      return this.#forBusy(
        busyNow === null ? used : Math.min(used, busyNow),
        `others used ${used.toFixed(1)} cores over ${window.toFixed(2)} s, ${runnable ?? "?"} thread(s) runnable now`,
      );
    }
    // Nothing measured for a while (no request ran): an average over that stretch says little about
    // now, so count the threads runnable at this instant.
    return this.#forBusy(busyNow ?? 0, `${runnable ?? 0} other thread(s) runnable now`);
  }

  #forBusy(others: number, measured: string): ThreadPolicy {
    const policy = chooseLlamaThreadsForBusy(this.#cpu, others);
    return { ...policy, reason: `${policy.reason} (${measured})` };
  }

  #decideFromLoadAverage(): ThreadPolicy {
    const now = this.#probe.now();
    const cpu = this.#probe.cpuSeconds();
    const elapsed = now - this.#lastAt;
    if (elapsed > 0) {
      const decay = Math.exp(-elapsed / LOAD_WINDOW_S);
      this.#ownLoad = this.#ownLoad * decay + ((cpu - this.#lastCpu) / elapsed) * (1 - decay);
      this.#lastCpu = cpu;
      this.#lastAt = now;
    }
    const load = this.#probe.load();
    const others = Math.max(0, load - this.#ownLoad);
    const policy = chooseLlamaThreads(this.#cpu, others);
    return this.#ownLoad >= 0.05
      ? { ...policy, reason: `${policy.reason} (load ${load.toFixed(1)}, ${this.#ownLoad.toFixed(1)} of it ours)` }
      : policy;
  }
}
