import assert from "node:assert/strict";
import { parseCpuInfo, parseMemInfo, parseNvidiaSmi, readAccelNpus, readDrmGpus } from "./linux.ts";

/** One processor's block of an x86 /proc/cpuinfo (hyper-threads share a core id). */
const x86Processor = (processor: number, coreId: number) =>
  `processor	: ${processor}
vendor_id	: GenuineIntel
model name	: Intel(R) Core(TM) Ultra 7 155H
physical id	: 0
core id		: ${coreId}
flags		: fpu sse4_2 avx avx2 fma f16c avx_vnni
`;

const X86_CPUINFO = [x86Processor(0, 0), x86Processor(1, 0), x86Processor(2, 1)].join("\n");

const ARM_CPUINFO = `processor	: 0
BogoMIPS	: 48.00
Features	: fp asimd evtstrm aes crc32 asimddp i8mm bf16
CPU implementer	: 0x41

processor	: 1
BogoMIPS	: 48.00
Features	: fp asimd evtstrm aes crc32 asimddp i8mm bf16
CPU implementer	: 0x41

Hardware	: Raspberry Pi 5 Model B
`;

Deno.test("parseCpuInfo counts physical cores by core id and keeps inference features", () => {
  const cpu = parseCpuInfo(X86_CPUINFO);
  assert.deepEqual(cpu.model, "Intel(R) Core(TM) Ultra 7 155H");
  assert.deepEqual(cpu.vendor, "GenuineIntel");
  assert.deepEqual(cpu.logicalCores, 3);
  assert.deepEqual(cpu.physicalCores, 2);
  assert.deepEqual(cpu.features, ["sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni"]);
});

Deno.test("parseCpuInfo reads ARM layouts", () => {
  const cpu = parseCpuInfo(ARM_CPUINFO);
  assert.deepEqual(cpu.model, "Raspberry Pi 5 Model B");
  assert.deepEqual(cpu.vendor, "ARM");
  assert.deepEqual(cpu.physicalCores, 2);
  assert.deepEqual(cpu.features, ["asimd", "asimddp", "i8mm", "bf16"]);
});

Deno.test("parseMemInfo reads total and available", () => {
  const mem = parseMemInfo("MemTotal:       16384000 kB\nMemFree:         1000 kB\nMemAvailable:    8192000 kB\n");
  assert.deepEqual(mem, { totalBytes: 16384000 * 1024, availableBytes: 8192000 * 1024 });
});

Deno.test("parseNvidiaSmi reads one GPU a line", () => {
  const gpus = parseNvidiaSmi(
    "NVIDIA GeForce RTX 4090, 24564, 23000, 550.54.14\nNVIDIA A100-SXM4-80GB, 81920, [N/A], 535.1\n",
  );
  assert.deepEqual(gpus.length, 2);
  assert.deepEqual(gpus[0], {
    vendor: "nvidia",
    name: "NVIDIA GeForce RTX 4090",
    vramBytes: 24564 * 1024 * 1024,
    vramFreeBytes: 23000 * 1024 * 1024,
    driver: "550.54.14",
    source: "nvidia-smi",
  });
  assert.deepEqual(gpus[1].vramFreeBytes, null);
});

async function fakeSysfs(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tabagent-sysfs-" });
  const device = async (name: string, files: Record<string, string>, driver: string) => {
    const dir = `${root}/devices/${name}`;
    await Deno.mkdir(dir, { recursive: true });
    for (const [file, content] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${file}`, content + "\n");
    await Deno.mkdir(`${root}/bus/drivers/${driver}`, { recursive: true });
    await Deno.symlink(`${root}/bus/drivers/${driver}`, `${dir}/driver`);
    return dir;
  };
  await Deno.mkdir(`${root}/class/drm`, { recursive: true });
  await Deno.mkdir(`${root}/class/accel`, { recursive: true });
  const amd = await device("amd", {
    vendor: "0x1002",
    device: "0x744c",
    uevent: "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0",
    mem_info_vram_total: String(24 * 1024 ** 3),
    mem_info_vram_used: String(1024 ** 3),
    product_name: "Radeon RX 7900 XTX",
  }, "amdgpu");
  const intel = await device(
    "intel",
    { vendor: "0x8086", device: "0x7d55", uevent: "PCI_SLOT_NAME=0000:00:02.0" },
    "i915",
  );
  const nvidia = await device("nvidia", { vendor: "0x10de", device: "0x2684" }, "nvidia");
  for (const [card, dir] of [["card0", amd], ["card1", intel], ["card2", nvidia]]) {
    await Deno.mkdir(`${root}/class/drm/${card}`);
    await Deno.symlink(dir, `${root}/class/drm/${card}/device`);
  }
  await Deno.mkdir(`${root}/class/drm/card0-DP-1`);
  const vpu = await device("vpu", { vendor: "0x8086" }, "intel_vpu");
  const xdna = await device("xdna", { vendor: "0x1022" }, "amdxdna");
  for (const [accel, dir] of [["accel0", vpu], ["accel1", xdna]]) {
    await Deno.mkdir(`${root}/class/accel/${accel}`);
    await Deno.symlink(dir, `${root}/class/accel/${accel}/device`);
  }
  return root;
}

Deno.test("readDrmGpus finds AMD VRAM and Intel GPUs in sysfs and leaves NVIDIA to nvidia-smi", async () => {
  const root = await fakeSysfs();
  try {
    const gpus = await readDrmGpus(root);
    assert.deepEqual(gpus.map((g) => [g.vendor, g.name, g.vramBytes, g.driver]), [
      ["amd", "Radeon RX 7900 XTX", 24 * 1024 ** 3, "amdgpu"],
      ["intel", "INTEL GPU 0x7d55", null, "i915"],
    ]);
    assert.deepEqual(gpus[0].vramFreeBytes, 23 * 1024 ** 3);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readAccelNpus recognises intel_vpu and amdxdna", async () => {
  const root = await fakeSysfs();
  try {
    const npus = await readAccelNpus(root);
    assert.deepEqual(npus.map((n) => [n.vendor, n.driver]), [["intel", "intel_vpu"], ["amd", "amdxdna"]]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a machine without sysfs GPU entries reports none", async () => {
  assert.deepEqual(await readDrmGpus("/nonexistent-sysfs"), []);
  assert.deepEqual(await readAccelNpus("/nonexistent-sysfs"), []);
});
