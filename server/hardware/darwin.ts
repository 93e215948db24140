/** macOS detection from `sysctl`, `vm_stat` and `system_profiler SPDisplaysDataType -json` output. */
import type { CpuInfo, GpuInfo, GpuVendor, MemoryInfo, NpuInfo } from "./types.ts";

/** The `sysctl` keys {@link parseSysctl} reads. */
export const SYSCTL_KEYS = [
  "machdep.cpu.brand_string",
  "machdep.cpu.vendor",
  "machdep.cpu.features",
  "machdep.cpu.leaf7_features",
  "hw.physicalcpu",
  "hw.logicalcpu",
  "hw.memsize",
  "hw.optional.arm64",
  "hw.optional.neon",
  "hw.optional.arm.FEAT_DotProd",
  "hw.optional.arm.FEAT_I8MM",
  "hw.optional.arm.FEAT_BF16",
];

function sysctlMap(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) map.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return map;
}

/** Parses `sysctl <keys…>` output ("key: value" lines); unknown keys are simply absent. */
export function parseSysctl(text: string): { cpu: CpuInfo; totalBytes: number; appleSilicon: boolean } {
  const map = sysctlMap(text);
  const appleSilicon = map.get("hw.optional.arm64") === "1";
  const x86 = `${map.get("machdep.cpu.features") ?? ""} ${map.get("machdep.cpu.leaf7_features") ?? ""}`
    .toLowerCase().split(/\s+/).map((f) => f.replace(/\./g, "_"));
  const features: string[] = [];
  for (
    const [flag, name] of [["sse4_2", "sse4_2"], ["avx1_0", "avx"], ["avx2", "avx2"], ["fma", "fma"], [
      "avx512f",
      "avx512f",
    ]]
  ) {
    if (x86.includes(flag)) features.push(name);
  }
  if (map.get("hw.optional.neon") === "1" || appleSilicon) features.push("neon");
  if (map.get("hw.optional.arm.FEAT_DotProd") === "1") features.push("asimddp");
  if (map.get("hw.optional.arm.FEAT_I8MM") === "1") features.push("i8mm");
  if (map.get("hw.optional.arm.FEAT_BF16") === "1") features.push("bf16");
  const physical = Number(map.get("hw.physicalcpu") ?? 1);
  return {
    cpu: {
      model: map.get("machdep.cpu.brand_string") ?? "unknown",
      vendor: map.get("machdep.cpu.vendor") ?? (appleSilicon ? "Apple" : "unknown"),
      physicalCores: physical,
      logicalCores: Number(map.get("hw.logicalcpu") ?? physical),
      features,
    },
    totalBytes: Number(map.get("hw.memsize") ?? 0),
    appleSilicon,
  };
}

/** Parses `vm_stat`: available = free + inactive + speculative pages. */
export function parseVmStat(text: string, totalBytes: number): MemoryInfo {
  const pageSize = Number(text.match(/page size of (\d+) bytes/)?.[1] ?? 4096);
  const pages = (label: string) => Number(text.match(new RegExp(`^Pages ${label}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
  const available = (pages("free") + pages("inactive") + pages("speculative")) * pageSize;
  return { totalBytes, availableBytes: available || totalBytes };
}

function vendorOf(text: string): GpuVendor {
  const lower = text.toLowerCase();
  if (lower.includes("apple")) return "apple";
  if (lower.includes("nvidia")) return "nvidia";
  if (lower.includes("amd") || lower.includes("ati") || lower.includes("radeon")) return "amd";
  if (lower.includes("intel")) return "intel";
  return "other";
}

function vramBytes(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const match = value.match(/([\d.]+)\s*(GB|MB)/i);
  if (!match) return null;
  return Math.round(Number(match[1]) * (match[2].toUpperCase() === "GB" ? 1024 ** 3 : 1024 ** 2));
}

/** Parses `system_profiler SPDisplaysDataType -json`. Apple GPUs share system memory (vram null). */
export function parseSystemProfilerDisplays(json: string): GpuInfo[] {
  const data = JSON.parse(json) as { SPDisplaysDataType?: Record<string, unknown>[] };
  return (data.SPDisplaysDataType ?? []).map((gpu) => {
    const name = String(gpu.sppci_model ?? gpu._name ?? "GPU");
    const vendor = vendorOf(`${gpu.spdisplays_vendor ?? ""} ${name}`);
    const cores = gpu.sppci_cores ? ` (${gpu.sppci_cores} cores)` : "";
    return {
      vendor,
      name: `${name}${cores}`,
      // Discrete GPUs report `spdisplays_vram`; integrated and Apple GPUs `spdisplays_vram_shared`.
      vramBytes: vramBytes(gpu.spdisplays_vram),
      driver: typeof gpu.spdisplays_mtlgpufamilysupport === "string" ? gpu.spdisplays_mtlgpufamilysupport : undefined,
      source: "system_profiler",
    };
  });
}

/** Apple Silicon always has a Neural Engine; Intel Macs do not. */
export function appleNpus(appleSilicon: boolean, cpuModel: string): NpuInfo[] {
  return appleSilicon ? [{ vendor: "apple", name: `Apple Neural Engine (${cpuModel})`, source: "sysctl" }] : [];
}
