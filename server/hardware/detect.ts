/** Hardware detection per platform, and the settings the inference stack derives from it. */
import { appleNpus, parseSysctl, parseSystemProfilerDisplays, parseVmStat, SYSCTL_KEYS } from "./darwin.ts";
import { NVIDIA_SMI_ARGS, parseCpuInfo, parseMemInfo, parseNvidiaSmi, readAccelNpus, readDrmGpus } from "./linux.ts";
import type {
  AccelerationInfo,
  CpuInfo,
  GpuInfo,
  HardwareInfo,
  HardwareRecommendation,
  MemoryInfo,
  NpuInfo,
} from "./types.ts";
import { parseWindowsCim, WINDOWS_CIM_SCRIPT } from "./windows.ts";
import { pathExists } from "../fs/mod.ts";

/** Longest any one detection command may run (ms); a hung driver tool must not hang startup. */
export const DETECT_COMMAND_TIMEOUT_MS = 5_000;
/** Share of available RAM the orchestrator may fill with models when running on the CPU. */
export const MODEL_MEMORY_FRACTION = 0.6;
/** Share of total VRAM models may fill on a GPU (the rest is the display and other programs). */
export const MODEL_VRAM_FRACTION = 0.9;

/** Runs a command and returns its stdout, or null when it is missing, fails or times out. */
export type CommandRunner = (cmd: string, args: string[]) => Promise<string | null>;

/** Runs commands for real, with {@link DETECT_COMMAND_TIMEOUT_MS}. */
export async function runCommand(cmd: string, args: string[]): Promise<string | null> {
  try {
    const output = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(DETECT_COMMAND_TIMEOUT_MS),
    }).output();
    return output.success ? new TextDecoder().decode(output.stdout) : null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return null;
    if (error instanceof DOMException && error.name === "AbortError") return null;
    throw error;
  }
}

/** Where detection looks; tests point these at captured output and a fake sysfs. */
export interface DetectOptions {
  platform?: typeof Deno.build.os;
  arch?: string;
  run?: CommandRunner;
  /** Root of sysfs (Linux). */
  sysRoot?: string;
  /** Root of procfs (Linux). */
  procRoot?: string;
  /** Paths whose existence means a GPU runtime is installed (Vulkan loader, ROCm). */
  exists?: (path: string) => Promise<boolean>;
}

/** The cores that compute in parallel: physical ones (SMT threads add nothing), at least 1. */
export function usableCores(cpu: Pick<CpuInfo, "physicalCores" | "logicalCores">): number {
  return Math.max(1, Math.min(cpu.physicalCores, cpu.logicalCores));
}

/** Threads for one model: leave a core for the event loop and HTTP on small machines. */
export function recommendThreads(cpu: CpuInfo): number {
  const cores = usableCores(cpu);
  if (cores <= 2) return 1;
  if (cores <= 4) return cores - 1;
  return cores;
}

/** The backend llama.cpp should use, best first. */
export function recommendLlamaGpu(acceleration: AccelerationInfo): HardwareRecommendation["llamaGpu"] {
  if (acceleration.metal) return "metal";
  if (acceleration.cuda) return "cuda";
  if (acceleration.vulkan) return "vulkan";
  return false;
}

/** The memory models may use: VRAM on a GPU machine, else a share of available RAM. */
export function recommendMemoryBudget(memory: MemoryInfo, gpus: GpuInfo[], gpu: HardwareRecommendation["llamaGpu"]) {
  const vram = gpus.reduce((sum, g) => sum + (g.vramBytes ?? 0), 0);
  if (gpu && gpu !== "metal" && vram > 0) return Math.floor(vram * MODEL_VRAM_FRACTION);
  // Apple GPUs share system memory: the RAM budget is the GPU budget.
  return Math.floor(Math.max(memory.availableBytes, memory.totalBytes * 0.25) * MODEL_MEMORY_FRACTION);
}

async function detectLinux(options: Required<DetectOptions>, notes: string[]) {
  const read = async (path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
        notes.push(`${path} unreadable`);
        return "";
      }
      throw error;
    }
  };
  const cpu = parseCpuInfo(await read(`${options.procRoot}/cpuinfo`));
  const memory = parseMemInfo(await read(`${options.procRoot}/meminfo`));
  const smi = await options.run("nvidia-smi", NVIDIA_SMI_ARGS);
  if (smi === null) notes.push("nvidia-smi not available");
  const gpus = [...(smi ? parseNvidiaSmi(smi) : []), ...await readDrmGpus(options.sysRoot)];
  const npus = await readAccelNpus(options.sysRoot);
  return { cpu, memory, gpus, npus };
}

async function detectDarwin(options: Required<DetectOptions>, notes: string[]) {
  const sysctl = await options.run("sysctl", SYSCTL_KEYS);
  if (sysctl === null) notes.push("sysctl failed");
  const parsed = parseSysctl(sysctl ?? "");
  const vmStat = await options.run("vm_stat", []);
  const memory = parseVmStat(vmStat ?? "", parsed.totalBytes);
  const displays = await options.run("system_profiler", ["SPDisplaysDataType", "-json"]);
  if (displays === null) notes.push("system_profiler failed");
  const gpus = displays ? parseSystemProfilerDisplays(displays) : [];
  return { cpu: parsed.cpu, memory, gpus, npus: appleNpus(parsed.appleSilicon, parsed.cpu.model), appleSilicon: true };
}

async function detectWindows(options: Required<DetectOptions>, notes: string[]) {
  const cim = await options.run("powershell", ["-NoProfile", "-NonInteractive", "-Command", WINDOWS_CIM_SCRIPT]);
  if (cim === null) notes.push("PowerShell CIM query failed");
  const parsed = cim ? parseWindowsCim(cim) : undefined;
  const smi = await options.run("nvidia-smi", NVIDIA_SMI_ARGS);
  const nvidia = smi ? parseNvidiaSmi(smi) : [];
  // nvidia-smi knows the real VRAM (CIM saturates at 4 GiB): it replaces CIM's NVIDIA entries.
  const gpus = [...nvidia, ...(parsed?.gpus ?? []).filter((g) => !(nvidia.length && g.vendor === "nvidia"))];
  return {
    cpu: parsed?.cpu ?? fallbackCpu(),
    memory: parsed?.memory ?? fallbackMemory(),
    gpus,
    npus: parsed?.npus ?? [],
  };
}

function fallbackCpu(): CpuInfo {
  const logical = navigator.hardwareConcurrency ?? 1;
  return { model: "unknown", vendor: "unknown", physicalCores: logical, logicalCores: logical, features: [] };
}

function fallbackMemory(): MemoryInfo {
  const info = Deno.systemMemoryInfo();
  return { totalBytes: info.total, availableBytes: info.available };
}

/** Any other OS: what `systeminformation` can find. */
async function detectOther(notes: string[]) {
  const si = await import("systeminformation");
  const [cpu, graphics] = await Promise.all([si.cpu(), si.graphics()]);
  notes.push("detected with systeminformation");
  return {
    cpu: {
      model: `${cpu.manufacturer} ${cpu.brand}`.trim(),
      vendor: cpu.vendor,
      physicalCores: cpu.physicalCores,
      logicalCores: cpu.cores,
      features: (cpu.flags ?? "").split(/\s+/).filter((f) => ["avx", "avx2", "avx512f", "neon", "fma"].includes(f)),
    },
    memory: fallbackMemory(),
    gpus: graphics.controllers.map((g): GpuInfo => ({
      vendor: /nvidia/i.test(g.vendor)
        ? "nvidia"
        : /amd|ati/i.test(g.vendor)
        ? "amd"
        : /intel/i.test(g.vendor)
        ? "intel"
        : "other",
      name: g.model,
      vramBytes: g.vram ? g.vram * 1024 * 1024 : null,
      source: "systeminformation",
    })),
    npus: [] as NpuInfo[],
  };
}

/** Which acceleration APIs look usable, from the devices found and the runtimes installed. */
export async function detectAcceleration(
  platform: string,
  arch: string,
  gpus: GpuInfo[],
  exists: (path: string) => Promise<boolean>,
): Promise<AccelerationInfo> {
  const has = (vendor: GpuInfo["vendor"]) => gpus.some((g) => g.vendor === vendor);
  const anyOf = async (paths: string[]) => (await Promise.all(paths.map(exists))).some(Boolean);
  const vulkanLoader = platform === "windows"
    ? await anyOf(["C:\\Windows\\System32\\vulkan-1.dll"])
    : platform === "linux"
    ? await anyOf([
      "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
      "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
      "/usr/lib64/libvulkan.so.1",
      "/usr/lib/libvulkan.so.1",
    ])
    : false;
  const discrete = gpus.some((g) => g.vendor !== "apple" && g.vendor !== "other");
  return {
    cuda: has("nvidia") && platform !== "darwin",
    rocm: platform === "linux" && has("amd") && await anyOf(["/opt/rocm", "/dev/kfd"]),
    vulkan: vulkanLoader && discrete,
    metal: platform === "darwin" && (arch === "aarch64" || gpus.length > 0),
    directml: platform === "windows" && gpus.length > 0,
  };
}

/**
 * Detects CPU, memory, GPUs, NPUs and acceleration for `platform`, and recommends threads, a
 * memory budget and a llama.cpp backend. Never throws for a missing tool: it notes it.
 *
 * @example
 * ```ts
 * const info = await detectHardware();
 * console.log(info.cpu.model, info.recommended.threads);
 * ```
 */
export async function detectHardware(options: DetectOptions = {}): Promise<HardwareInfo> {
  const resolved: Required<DetectOptions> = {
    platform: options.platform ?? Deno.build.os,
    arch: options.arch ?? Deno.build.arch,
    run: options.run ?? runCommand,
    sysRoot: options.sysRoot ?? "/sys",
    procRoot: options.procRoot ?? "/proc",
    // A device node we may not read is as good as absent for detection.
    exists: options.exists ?? ((path: string) => pathExists(path).catch(() => false)),
  };
  const notes: string[] = [];
  const found = resolved.platform === "linux"
    ? await detectLinux(resolved, notes)
    : resolved.platform === "darwin"
    ? await detectDarwin(resolved, notes)
    : resolved.platform === "windows"
    ? await detectWindows(resolved, notes)
    : await detectOther(notes);
  const acceleration = await detectAcceleration(resolved.platform, resolved.arch, found.gpus, resolved.exists);
  const llamaGpu = recommendLlamaGpu(acceleration);
  return {
    os: resolved.platform,
    arch: resolved.arch,
    cpu: found.cpu,
    memory: found.memory,
    gpus: found.gpus,
    npus: found.npus,
    acceleration,
    recommended: {
      threads: recommendThreads(found.cpu),
      memoryBudgetBytes: recommendMemoryBudget(found.memory, found.gpus, llamaGpu),
      llamaGpu,
    },
    notes,
  };
}
