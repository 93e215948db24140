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
 * request (two cheap reads: the load average and this process's CPU time) and llama.cpp applies
 * the count from the next batch on; the server's own recent CPU use is taken out of the load
 * average, or its own busy threads would make it give itself fewer. Greedy replies are the same
 * on 1 and 2 threads (each output row is computed by one thread), so a change never alters a reply.
 */
import { loadavg } from "node:os";
import process from "node:process";
import type { CpuInfo } from "../../hardware/mod.ts";

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
  const cores = Math.max(1, Math.min(cpu.physicalCores, cpu.logicalCores));
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
}

const systemProbe: LoadProbe = {
  load: () => loadavg()[0],
  cpuSeconds: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  },
  now: () => performance.now() / 1000,
};

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

  constructor(
    cpu: Pick<CpuInfo, "physicalCores" | "logicalCores">,
    options: { fixed?: number; probe?: LoadProbe } = {},
  ) {
    this.#cpu = cpu;
    this.#fixed = options.fixed;
    this.#probe = options.probe ?? systemProbe;
    this.#lastCpu = this.#probe.cpuSeconds();
    this.#lastAt = this.#probe.now();
    this.#current = this.#fixed !== undefined
      ? fixedLlamaThreads(this.#fixed)
      : chooseLlamaThreads(cpu, this.#probe.load());
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

  /** Decides again from the load now; cheap enough to call at every request. */
  decide(): ThreadPolicy {
    if (this.#fixed !== undefined) return this.#current;
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
    this.#current = this.#ownLoad >= 0.05
      ? { ...policy, reason: `${policy.reason} (load ${load.toFixed(1)}, ${this.#ownLoad.toFixed(1)} of it ours)` }
      : policy;
    return this.#current;
  }
}
