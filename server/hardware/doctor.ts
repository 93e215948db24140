/** `tabagent doctor`: a human-readable report of the hardware and of checks other modules ran. */
import type { HardwareInfo } from "./types.ts";

/** One line of the doctor's verdict. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
}

function gib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? "shared" : `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/**
 * Formats the report: hardware first, then each check with ✓ or ✗.
 *
 * @example
 * ```ts
 * console.log(formatDoctorReport(await detectHardware(), [{ name: "llama.cpp", ok: true, detail: "cpu" }]));
 * ```
 */
export function formatDoctorReport(info: HardwareInfo, checks: DoctorCheck[]): string {
  const lines = [
    `OS            ${info.os} ${info.arch}`,
    `CPU           ${info.cpu.model} (${info.cpu.physicalCores} cores, ${info.cpu.logicalCores} threads)`,
    `CPU features  ${info.cpu.features.join(" ") || "none detected"}`,
    `Memory        ${gib(info.memory.availableBytes)} available of ${gib(info.memory.totalBytes)}`,
  ];
  if (info.gpus.length === 0) lines.push("GPU           none");
  for (const gpu of info.gpus) {
    lines.push(
      `GPU           ${gpu.name} [${gpu.vendor}] ${gib(gpu.vramBytes)} VRAM${gpu.driver ? `, ${gpu.driver}` : ""}`,
    );
  }
  if (info.npus.length === 0) lines.push("NPU           none");
  for (const npu of info.npus) lines.push(`NPU           ${npu.name}${npu.driver ? ` (${npu.driver})` : ""}`);
  const accel = Object.entries(info.acceleration).filter(([, on]) => on).map(([name]) => name);
  lines.push(`Acceleration  ${accel.join(", ") || "CPU only"}`);
  lines.push(
    `Recommended   ${info.recommended.threads} thread(s), ${gib(info.recommended.memoryBudgetBytes)} for models, ` +
      `llama.cpp backend ${info.recommended.llamaGpu || "cpu"}`,
  );
  for (const note of info.notes) lines.push(`note          ${note}`);
  if (checks.length) lines.push("");
  for (const check of checks) lines.push(`${check.ok ? "✓" : "✗"} ${check.name.padEnd(18)} ${check.detail}`);
  return lines.join("\n");
}
