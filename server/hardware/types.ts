/** What hardware detection reports. Plain data: it is served as JSON by `GET /v1/system`. */

/** The CPU. */
export interface CpuInfo {
  model: string;
  vendor: string;
  /** Physical cores (what compute-bound work like llama.cpp should use). */
  physicalCores: number;
  /** Logical processors (hardware threads). */
  logicalCores: number;
  /** Instruction-set features that matter for inference (avx2, avx512f, neon, …). */
  features: string[];
}

/** System memory. */
export interface MemoryInfo {
  totalBytes: number;
  /** Memory available to new allocations without swapping. */
  availableBytes: number;
}

/** GPU vendors the server tells apart. */
export type GpuVendor = "nvidia" | "amd" | "intel" | "apple" | "qualcomm" | "other";

/** One GPU. */
export interface GpuInfo {
  vendor: GpuVendor;
  name: string;
  /** Dedicated memory; null when shared with the system (integrated, Apple) or unknown. */
  vramBytes: number | null;
  /** Free dedicated memory when the driver reports it. */
  vramFreeBytes?: number | null;
  driver?: string;
  /** Where the information came from (nvidia-smi, sysfs, system_profiler, cim, systeminformation). */
  source: string;
}

/** One NPU (neural processing unit). */
export interface NpuInfo {
  vendor: "intel" | "amd" | "apple" | "qualcomm" | "other";
  name: string;
  driver?: string;
  source: string;
}

/** Acceleration APIs usable on this machine, as far as detection can tell. */
export interface AccelerationInfo {
  cuda: boolean;
  rocm: boolean;
  vulkan: boolean;
  metal: boolean;
  directml: boolean;
}

/** Settings the inference stack derives from the hardware. */
export interface HardwareRecommendation {
  /** llama.cpp / ONNX Runtime intra-op threads for one model. */
  threads: number;
  /** Bytes the orchestrator may spend on loaded models. */
  memoryBudgetBytes: number;
  /** The llama.cpp backend to ask for ("cuda", "vulkan", "metal" or false for CPU). */
  llamaGpu: "cuda" | "vulkan" | "metal" | false;
}

/** Everything detection found. */
export interface HardwareInfo {
  os: string;
  arch: string;
  cpu: CpuInfo;
  memory: MemoryInfo;
  gpus: GpuInfo[];
  npus: NpuInfo[];
  acceleration: AccelerationInfo;
  recommended: HardwareRecommendation;
  /** Probes that failed (a missing tool is not an error, just less to report). */
  notes: string[];
}
