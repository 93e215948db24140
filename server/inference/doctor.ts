/** The inference checks `tabagent doctor` prints: llama.cpp loads, ONNX providers, models in the cache. */
import type { DoctorCheck, HardwareInfo } from "../hardware/mod.ts";
import { chooseLlamaBinding, createLlamaRuntime, llamaBinding, LlamaThreadGovernor } from "./llama/mod.ts";
import { chooseProviders, compiledBackends, installedProviderLibraries, providerStatuses } from "./onnx/mod.ts";
import { ModelCache } from "../models/mod.ts";

/**
 * Runs each check and reports it; a failing check never throws.
 *
 * @example
 * ```ts
 * const checks = await inferenceChecks({ modelCachePath, hardware: await detectHardware() });
 * ```
 */
export async function inferenceChecks(
  options: { modelCachePath: string; hardware: HardwareInfo; llamaAddon?: string; llamaThreads?: number },
): Promise<DoctorCheck[]> {
  const { hardware } = options;
  const checks: DoctorCheck[] = [];
  const attempt = async (name: string, fn: () => Promise<string>) => {
    try {
      checks.push({ name, ok: true, detail: await fn() });
    } catch (error) {
      checks.push({ name, ok: false, detail: error instanceof Error ? error.message : String(error) });
    }
  };
  // the server's own policy, as it would decide at a request arriving now
  const policy = new LlamaThreadGovernor(hardware.cpu, { fixed: options.llamaThreads }).current;
  await attempt("llama.cpp", async () => {
    const choice = await chooseLlamaBinding(options.llamaAddon);
    const llama = await createLlamaRuntime({
      threads: policy.threads,
      gpu: hardware.recommended.llamaGpu,
      addon: choice.addon,
    });
    try {
      const wanted = hardware.recommended.llamaGpu;
      const got = llama.gpu || "cpu";
      if (wanted && got !== wanted) throw new Error(`${wanted} backend did not load; running on ${got}`);
      const binding = llamaBinding(llama);
      if (choice.addon && binding === "prebuilt") {
        throw new Error(`the local build ${choice.addon} did not load; the prebuilt binding serves instead`);
      }
      return `${got} backend (${binding === "prebuilt" ? "prebuilt binding" : `local build ${binding}`}; ` +
        `${choice.reason}), ` +
        `${policy.threads} thread(s) for decode and prompt processing: ${policy.reason}` +
        (policy.source === "policy" ? "; the server decides again at each request as the load changes" : "");
    } finally {
      await llama.dispose();
    }
  });
  await attempt("onnxruntime", async () => {
    const statuses = providerStatuses(compiledBackends(), hardware, await installedProviderLibraries());
    return `providers: ${chooseProviders(statuses).join(", ")} (of ${
      statuses.filter((s) => s.compiled).length
    } compiled in)`;
  });
  await attempt("model cache", async () => {
    const models = await new ModelCache(options.modelCachePath).listLocatable();
    return `${models.length} model(s) in ${options.modelCachePath}${
      models.length ? `: ${models.map((m) => m.id).join(", ")}` : ""
    }`;
  });
  return checks;
}
