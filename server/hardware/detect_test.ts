import assert from "node:assert/strict";
import { detectHardware, recommendThreads } from "./detect.ts";
import { formatDoctorReport } from "./doctor.ts";

Deno.test("detectHardware on this machine finds the CPU and memory and recommends at least one thread", async () => {
  const info = await detectHardware();
  assert.ok(info.cpu.logicalCores >= 1);
  assert.ok(info.memory.totalBytes > 0);
  assert.ok(info.recommended.threads >= 1 && info.recommended.threads <= info.cpu.logicalCores);
  assert.ok(info.recommended.memoryBudgetBytes > 0);
  const report = formatDoctorReport(info, [{ name: "llama.cpp", ok: true, detail: "cpu backend" }]);
  assert.ok(report.includes("CPU"));
  assert.ok(report.includes("✓ llama.cpp"));
});

Deno.test("recommendThreads leaves a core free on small machines and uses physical cores on big ones", () => {
  const cpu = (physicalCores: number, logicalCores: number) => ({
    model: "",
    vendor: "",
    physicalCores,
    logicalCores,
    features: [],
  });
  assert.deepEqual(recommendThreads(cpu(2, 2)), 1);
  assert.deepEqual(recommendThreads(cpu(4, 8)), 3);
  assert.deepEqual(recommendThreads(cpu(16, 32)), 16);
});

Deno.test("detectHardware on Linux reports an NVIDIA GPU from nvidia-smi and turns on CUDA", async () => {
  const info = await detectHardware({
    platform: "linux",
    run: (cmd) => Promise.resolve(cmd === "nvidia-smi" ? "NVIDIA L4, 23034, 22000, 550.90.07" : null),
    sysRoot: "/nonexistent-sysfs",
    exists: () => Promise.resolve(false),
  });
  assert.deepEqual(info.gpus[0].name, "NVIDIA L4");
  assert.deepEqual(info.acceleration.cuda, true);
  assert.deepEqual(info.recommended.llamaGpu, "cuda");
  assert.deepEqual(info.recommended.memoryBudgetBytes, Math.floor(23034 * 1024 * 1024 * 0.9));
});
