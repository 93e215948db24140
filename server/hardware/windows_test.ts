import assert from "node:assert/strict";
import { detectHardware } from "./detect.ts";
import { parseWindowsCim } from "./windows.ts";

// Captured from the WINDOWS_CIM_SCRIPT on a Core Ultra laptop with an RTX 4070 (ConvertTo-Json output).
const CIM = JSON.stringify({
  cpu: [{
    Name: "Intel(R) Core(TM) Ultra 7 155H",
    Manufacturer: "GenuineIntel",
    NumberOfCores: 16,
    NumberOfLogicalProcessors: 22,
  }],
  os: { TotalVisibleMemorySize: 33_244_000, FreePhysicalMemory: 20_000_000 },
  gpu: [
    {
      Name: "Intel(R) Arc(TM) Graphics",
      AdapterCompatibility: "Intel Corporation",
      AdapterRAM: 134217728,
      DriverVersion: "31.0.101.5186",
    },
    {
      Name: "NVIDIA GeForce RTX 4070 Laptop GPU",
      AdapterCompatibility: "NVIDIA",
      AdapterRAM: 4293918720,
      DriverVersion: "31.0.15.5222",
    },
    { Name: "Microsoft Basic Display Adapter", AdapterCompatibility: "(Standard display types)", AdapterRAM: null },
  ],
  npu: { Name: "Intel(R) AI Boost", Manufacturer: "Intel Corporation", Service: "npu" },
});

Deno.test("parseWindowsCim reads CPU, memory, GPUs and the NPU", () => {
  const parsed = parseWindowsCim(CIM);
  assert.deepEqual(parsed.cpu.physicalCores, 16);
  assert.deepEqual(parsed.cpu.logicalCores, 22);
  assert.deepEqual(parsed.memory.totalBytes, 33_244_000 * 1024);
  assert.deepEqual(parsed.gpus.map((g) => g.vendor), ["intel", "nvidia"]);
  assert.deepEqual(parsed.npus, [{ vendor: "intel", name: "Intel(R) AI Boost", driver: "npu", source: "cim" }]);
});

Deno.test("detectHardware on Windows prefers nvidia-smi's VRAM and offers CUDA and DirectML", async () => {
  const info = await detectHardware({
    platform: "windows",
    arch: "x86_64",
    run: (cmd) =>
      Promise.resolve(
        cmd === "powershell"
          ? CIM
          : cmd === "nvidia-smi"
          ? "NVIDIA GeForce RTX 4070 Laptop GPU, 8188, 7800, 552.22"
          : null,
      ),
    exists: () => Promise.resolve(true),
  });
  const nvidia = info.gpus.filter((g) => g.vendor === "nvidia");
  assert.deepEqual(nvidia.length, 1);
  assert.deepEqual(nvidia[0].vramBytes, 8188 * 1024 * 1024);
  assert.deepEqual(info.acceleration.cuda, true);
  assert.deepEqual(info.acceleration.directml, true);
  assert.deepEqual(info.recommended.llamaGpu, "cuda");
  assert.deepEqual(info.recommended.memoryBudgetBytes > 8188 * 1024 * 1024 * 0.8, true);
});
