/**
 * Hardware detection: CPU (model, cores, features), memory, GPUs with VRAM (nvidia-smi, sysfs on
 * Linux, system_profiler on macOS, CIM on Windows, systeminformation elsewhere), NPUs (Intel
 * `intel_vpu`, AMD `amdxdna`, Apple Neural Engine), usable acceleration, and the threads and
 * memory budget the inference stack should use. Served by `GET /v1/system` and `tabagent doctor`.
 *
 * @example
 * ```ts
 * import { detectHardware } from "./mod.ts";
 * const info = await detectHardware();
 * console.log(info.recommended.threads);
 * ```
 * @module
 */
export * from "./types.ts";
export {
  type CommandRunner,
  detectAcceleration,
  detectHardware,
  type DetectOptions,
  MODEL_MEMORY_FRACTION,
  recommendLlamaGpu,
  recommendMemoryBudget,
  recommendThreads,
  runCommand,
  usableCores,
} from "./detect.ts";
export { type DoctorCheck, formatDoctorReport } from "./doctor.ts";
export { parseCpuInfo, parseMemInfo, parseNvidiaSmi, readAccelNpus, readDrmGpus } from "./linux.ts";
export { parseSysctl, parseSystemProfilerDisplays, parseVmStat } from "./darwin.ts";
export { parseWindowsCim } from "./windows.ts";
