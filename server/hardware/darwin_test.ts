import assert from "node:assert/strict";
import { appleNpus, parseSysctl, parseSystemProfilerDisplays, parseVmStat } from "./darwin.ts";
import { detectHardware } from "./detect.ts";

// Captured on an M2 MacBook Air (keys that do not exist on a machine are simply not printed).
const SYSCTL_M2 = `machdep.cpu.brand_string: Apple M2
hw.physicalcpu: 8
hw.logicalcpu: 8
hw.memsize: 17179869184
hw.optional.arm64: 1
hw.optional.neon: 1
hw.optional.arm.FEAT_DotProd: 1
hw.optional.arm.FEAT_I8MM: 1
hw.optional.arm.FEAT_BF16: 1
`;

const SYSCTL_INTEL = `machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz
machdep.cpu.vendor: GenuineIntel
machdep.cpu.features: FPU VME SSE3 FMA SSE4.2 AVX1.0
machdep.cpu.leaf7_features: SMEP BMI1 AVX2 BMI2
hw.physicalcpu: 8
hw.logicalcpu: 16
hw.memsize: 34359738368
`;

const VM_STAT = `Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                               12000.
Pages active:                            300000.
Pages inactive:                          200000.
Pages speculative:                         8000.
`;

const DISPLAYS_M2 = JSON.stringify({
  SPDisplaysDataType: [{
    _name: "Apple M2",
    sppci_cores: "10",
    sppci_model: "Apple M2",
    spdisplays_vendor: "sppci_vendor_Apple",
    spdisplays_mtlgpufamilysupport: "spdisplays_metal3",
  }],
});

const DISPLAYS_INTEL_MAC = JSON.stringify({
  SPDisplaysDataType: [
    { _name: "Intel UHD Graphics 630", sppci_model: "Intel UHD Graphics 630", spdisplays_vram_shared: "1536 MB" },
    { _name: "AMD Radeon Pro 5500M", sppci_model: "AMD Radeon Pro 5500M", spdisplays_vram: "8 GB" },
  ],
});

Deno.test("parseSysctl reads Apple Silicon", () => {
  const parsed = parseSysctl(SYSCTL_M2);
  assert.deepEqual(parsed.appleSilicon, true);
  assert.deepEqual(parsed.totalBytes, 16 * 1024 ** 3);
  assert.deepEqual(parsed.cpu.model, "Apple M2");
  assert.deepEqual(parsed.cpu.vendor, "Apple");
  assert.deepEqual(parsed.cpu.physicalCores, 8);
  assert.deepEqual(parsed.cpu.features, ["neon", "asimddp", "i8mm", "bf16"]);
});

Deno.test("parseSysctl reads Intel Macs", () => {
  const parsed = parseSysctl(SYSCTL_INTEL);
  assert.deepEqual(parsed.appleSilicon, false);
  assert.deepEqual(parsed.cpu.logicalCores, 16);
  assert.deepEqual(parsed.cpu.features, ["sse4_2", "avx", "avx2", "fma"]);
});

Deno.test("parseVmStat counts free, inactive and speculative pages", () => {
  assert.deepEqual(parseVmStat(VM_STAT, 100).availableBytes, (12000 + 200000 + 8000) * 16384);
});

Deno.test("parseSystemProfilerDisplays: Apple GPU shares memory, discrete AMD has VRAM", () => {
  const apple = parseSystemProfilerDisplays(DISPLAYS_M2);
  assert.deepEqual(apple.map((g) => [g.vendor, g.name, g.vramBytes]), [["apple", "Apple M2 (10 cores)", null]]);
  const intel = parseSystemProfilerDisplays(DISPLAYS_INTEL_MAC);
  assert.deepEqual(intel.map((g) => [g.vendor, g.vramBytes]), [["intel", null], ["amd", 8 * 1024 ** 3]]);
  assert.deepEqual(appleNpus(true, "Apple M2").length, 1);
  assert.deepEqual(appleNpus(false, "Intel").length, 0);
});

Deno.test("detectHardware on macOS: Metal, the Neural Engine, and the RAM budget", async () => {
  const outputs: Record<string, string> = { sysctl: SYSCTL_M2, vm_stat: VM_STAT, system_profiler: DISPLAYS_M2 };
  const info = await detectHardware({
    platform: "darwin",
    arch: "aarch64",
    run: (cmd) => Promise.resolve(outputs[cmd] ?? null),
    exists: () => Promise.resolve(false),
  });
  assert.deepEqual(info.acceleration, { cuda: false, rocm: false, vulkan: false, metal: true, directml: false });
  assert.deepEqual(info.recommended.llamaGpu, "metal");
  assert.deepEqual(info.npus[0].vendor, "apple");
  assert.deepEqual(info.recommended.threads, 8);
});
