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
 */
import { loadavg } from "node:os";
import type { CpuInfo } from "../../hardware/mod.ts";

/** The chosen thread count and the reason `tabagent doctor` prints. */
export interface ThreadPolicy {
  threads: number;
  reason: string;
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
      reason: `the machine is busy (load ${load.toFixed(1)} on ${cores} cores): more spinning workers would fight ` +
        `other processes for cores`,
    };
  }
  if (cores > 4) {
    return {
      threads: cores - 1,
      reason: `${cores} physical cores, one left to the HTTP event loop and the OS; decode and prompt processing ` +
        `both scale with physical cores, not SMT threads`,
    };
  }
  return {
    threads: cores,
    reason: `${cores} physical core(s), all used: decode and prompt processing both scale with cores ` +
      `(2-core VM: decode 75 vs 48 tok/s, prompt 140 vs 94 tok/s on 2 vs 1 threads); streaming needs little CPU`,
  };
}
