/** Linux detection: /proc for CPU and memory, nvidia-smi, /sys/class/drm and /sys/class/accel. */
import type { CpuInfo, GpuInfo, GpuVendor, MemoryInfo, NpuInfo } from "./types.ts";

/** PCI vendor ids as sysfs writes them. */
export const PCI_VENDORS: Record<string, GpuVendor> = {
  "0x10de": "nvidia",
  "0x1002": "amd",
  "0x1022": "amd",
  "0x8086": "intel",
  "0x5143": "qualcomm",
};

/** CPU flags worth reporting for inference; the full list is hundreds long. */
export const INTERESTING_CPU_FEATURES = [
  "sse4_2",
  "avx",
  "avx2",
  "fma",
  "f16c",
  "avx512f",
  "avx512bw",
  "avx512vl",
  "avx512_vnni",
  "avx512_bf16",
  "avx_vnni",
  "amx_tile",
  "amx_int8",
  "amx_bf16",
  "neon",
  "asimd",
  "asimddp",
  "sve",
  "sve2",
  "i8mm",
  "bf16",
];

/** Parses `/proc/cpuinfo` (x86 and ARM layouts). */
export function parseCpuInfo(text: string): CpuInfo {
  const blocks = text.split(/\n\s*\n/).filter((b) => b.trim());
  const fields = (block: string) => {
    const map = new Map<string, string>();
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    return map;
  };
  const processors = blocks.map(fields).filter((m) => m.has("processor"));
  const first = processors[0] ?? new Map<string, string>();
  const header = blocks.length ? fields(blocks[blocks.length - 1]) : new Map<string, string>();
  const cores = new Set<string>();
  for (const p of processors) cores.add(`${p.get("physical id") ?? "0"}:${p.get("core id") ?? p.get("processor")}`);
  const logical = processors.length || 1;
  const flags = (first.get("flags") ?? first.get("features") ?? "").split(/\s+/);
  const model = first.get("model name") ?? header.get("model name") ?? header.get("hardware") ?? "unknown";
  const implementer = first.get("cpu implementer");
  const vendor = first.get("vendor_id") ?? (implementer ? armVendor(implementer) : "unknown");
  const hasCoreIds = processors.some((p) => p.has("core id"));
  return {
    model,
    vendor,
    physicalCores: hasCoreIds ? cores.size : logical,
    logicalCores: logical,
    features: INTERESTING_CPU_FEATURES.filter((f) => flags.includes(f)),
  };
}

function armVendor(implementer: string): string {
  const known: Record<string, string> = { "0x41": "ARM", "0x51": "Qualcomm", "0x61": "Apple", "0x48": "HiSilicon" };
  return known[implementer.toLowerCase()] ?? `ARM implementer ${implementer}`;
}

/** Parses `/proc/meminfo`. */
export function parseMemInfo(text: string): MemoryInfo {
  const kb = (key: string) => {
    const match = text.match(new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, "m"));
    return match ? Number(match[1]) * 1024 : undefined;
  };
  const total = kb("MemTotal") ?? 0;
  return { totalBytes: total, availableBytes: kb("MemAvailable") ?? kb("MemFree") ?? total };
}

/** The `nvidia-smi` query whose CSV {@link parseNvidiaSmi} reads. */
export const NVIDIA_SMI_ARGS = [
  "--query-gpu=name,memory.total,memory.free,driver_version",
  "--format=csv,noheader,nounits",
];

/** Parses `nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  return csv.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [name, total, free, driver] = line.split(",").map((part) => part.trim());
    const mib = (value: string | undefined) => value && /^\d+$/.test(value) ? Number(value) * 1024 * 1024 : null;
    return { vendor: "nvidia", name, vramBytes: mib(total), vramFreeBytes: mib(free), driver, source: "nvidia-smi" };
  });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return undefined;
    throw error;
  }
}

async function linkName(path: string): Promise<string | undefined> {
  try {
    const target = await Deno.readLink(path);
    return target.slice(target.lastIndexOf("/") + 1);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.InvalidData) return undefined;
    throw error;
  }
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return [];
    throw error;
  }
  return names.sort();
}

/**
 * GPUs from `<sysRoot>/class/drm/card*` (AMD and Intel; NVIDIA is left to nvidia-smi, which knows
 * more). AMD's amdgpu driver reports VRAM in `mem_info_vram_total`; Intel's i915/xe do not.
 */
export async function readDrmGpus(sysRoot = "/sys", skipVendors: GpuVendor[] = ["nvidia"]): Promise<GpuInfo[]> {
  const gpus: GpuInfo[] = [];
  const seen = new Set<string>();
  for (const card of await listDir(`${sysRoot}/class/drm`)) {
    if (!/^card\d+$/.test(card)) continue; // card0-DP-1 etc. are connectors
    const device = `${sysRoot}/class/drm/${card}/device`;
    const vendorId = (await readText(`${device}/vendor`))?.toLowerCase();
    if (!vendorId) continue;
    const vendor = PCI_VENDORS[vendorId] ?? "other";
    if (skipVendors.includes(vendor)) continue;
    const slot = (await readText(`${device}/uevent`))?.match(/PCI_SLOT_NAME=(\S+)/)?.[1] ?? card;
    if (seen.has(slot)) continue;
    seen.add(slot);
    const deviceId = await readText(`${device}/device`);
    const total = await readText(`${device}/mem_info_vram_total`);
    const used = await readText(`${device}/mem_info_vram_used`);
    const driver = await linkName(`${device}/driver`);
    const productName = await readText(`${device}/product_name`);
    gpus.push({
      vendor,
      name: productName || `${vendor.toUpperCase()} GPU ${deviceId ?? ""}`.trim(),
      vramBytes: total ? Number(total) : null,
      vramFreeBytes: total && used ? Number(total) - Number(used) : null,
      driver,
      source: "sysfs",
    });
  }
  return gpus;
}

/** NPU drivers the kernel exposes under `/sys/class/accel`, by driver name. */
export const NPU_DRIVERS: Record<string, NpuInfo["vendor"]> = {
  intel_vpu: "intel",
  amdxdna: "amd",
  qaic: "qualcomm",
};

/** NPUs from `<sysRoot>/class/accel/accel*` (Intel `intel_vpu`, AMD `amdxdna`, Qualcomm `qaic`). */
export async function readAccelNpus(sysRoot = "/sys"): Promise<NpuInfo[]> {
  const npus: NpuInfo[] = [];
  for (const accel of await listDir(`${sysRoot}/class/accel`)) {
    if (!/^accel\d+$/.test(accel)) continue;
    const driver = await linkName(`${sysRoot}/class/accel/${accel}/device/driver`);
    if (!driver) continue;
    const vendor = NPU_DRIVERS[driver] ?? "other";
    const names: Record<string, string> = {
      intel: "Intel NPU (AI Boost)",
      amd: "AMD XDNA NPU (Ryzen AI)",
      qualcomm: "Qualcomm Cloud AI",
      other: `NPU (${driver})`,
    };
    npus.push({ vendor, name: names[vendor], driver, source: "sysfs" });
  }
  return npus;
}
