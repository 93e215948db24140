/** Windows detection from one PowerShell CIM query whose JSON {@link parseWindowsCim} reads. */
import type { CpuInfo, GpuInfo, GpuVendor, MemoryInfo, NpuInfo } from "./types.ts";

/** The PowerShell script run with `powershell -NoProfile -Command`; prints one JSON object. */
export const WINDOWS_CIM_SCRIPT = [
  "$cpu = Get-CimInstance Win32_Processor | Select-Object Name,Manufacturer,NumberOfCores,NumberOfLogicalProcessors;",
  "$os = Get-CimInstance Win32_OperatingSystem | Select-Object TotalVisibleMemorySize,FreePhysicalMemory;",
  "$gpu = Get-CimInstance Win32_VideoController | Select-Object Name,AdapterCompatibility,AdapterRAM,DriverVersion;",
  "$npu = Get-CimInstance Win32_PnPEntity | Where-Object { $_.Name -match 'NPU|AI Boost|Neural|Hexagon' } |",
  "Select-Object Name,Manufacturer,Service;",
  "@{cpu=@($cpu);os=$os;gpu=@($gpu);npu=@($npu)} | ConvertTo-Json -Depth 4 -Compress",
].join(" ");

interface CimOutput {
  cpu?: { Name?: string; Manufacturer?: string; NumberOfCores?: number; NumberOfLogicalProcessors?: number }[];
  os?: { TotalVisibleMemorySize?: number; FreePhysicalMemory?: number };
  gpu?: { Name?: string; AdapterCompatibility?: string; AdapterRAM?: number | null; DriverVersion?: string }[];
  npu?: { Name?: string; Manufacturer?: string; Service?: string }[];
}

function vendorOf(text: string): GpuVendor {
  const lower = text.toLowerCase();
  if (lower.includes("nvidia")) return "nvidia";
  if (lower.includes("advanced micro devices") || lower.includes("amd") || lower.includes("radeon")) return "amd";
  if (lower.includes("intel")) return "intel";
  if (lower.includes("qualcomm")) return "qualcomm";
  return "other";
}

function asArray<T>(value: T | T[] | undefined | null): T[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * Parses the CIM JSON. `AdapterRAM` is a 32-bit field that saturates at 4 GiB, so for NVIDIA the
 * caller prefers nvidia-smi; for others a value of exactly 4 GiB - 1 means "at least 4 GiB".
 */
export function parseWindowsCim(json: string): { cpu: CpuInfo; memory: MemoryInfo; gpus: GpuInfo[]; npus: NpuInfo[] } {
  const data = JSON.parse(json) as CimOutput;
  const cpus = asArray(data.cpu);
  const first = cpus[0] ?? {};
  const physical = cpus.reduce((sum, c) => sum + (c.NumberOfCores ?? 0), 0) || 1;
  const logical = cpus.reduce((sum, c) => sum + (c.NumberOfLogicalProcessors ?? 0), 0) || physical;
  const gpus: GpuInfo[] = asArray(data.gpu)
    .filter((g) => g.Name && !/basic display|remote display|hyper-v/i.test(g.Name))
    .map((g) => ({
      vendor: vendorOf(`${g.AdapterCompatibility ?? ""} ${g.Name}`),
      name: g.Name!.trim(),
      vramBytes: typeof g.AdapterRAM === "number" && g.AdapterRAM > 0 ? g.AdapterRAM : null,
      driver: g.DriverVersion,
      source: "cim",
    }));
  const npus: NpuInfo[] = asArray(data.npu).filter((n) => n.Name).map((n) => {
    const vendor = vendorOf(`${n.Manufacturer ?? ""} ${n.Name}`);
    return {
      vendor: vendor === "nvidia" ? "other" : vendor === "other" ? "other" : vendor,
      name: n.Name!.trim(),
      driver: n.Service,
      source: "cim",
    };
  });
  return {
    cpu: {
      model: (first.Name ?? "unknown").trim(),
      vendor: first.Manufacturer ?? "unknown",
      physicalCores: physical,
      logicalCores: logical,
      features: [],
    },
    memory: {
      totalBytes: (data.os?.TotalVisibleMemorySize ?? 0) * 1024,
      availableBytes: (data.os?.FreePhysicalMemory ?? 0) * 1024,
    },
    gpus,
    npus,
  };
}
