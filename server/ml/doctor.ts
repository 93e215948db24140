/** The ML checks `tabagent doctor` prints: the service starts and serves, and a running server's ML state. */
import type { DoctorCheck } from "../hardware/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MlService } from "./service.ts";

/**
 * Starts one worker (as the server would), reports its start time and versions, then asks a
 * running server (if any) for its `ml` component state. A failing check never throws.
 *
 * @example
 * ```ts
 * const checks = await mlChecks({ python, packageDir, dataDir, modelCachePath, serverUrl: "http://127.0.0.1:8765" });
 * ```
 */
export async function mlChecks(options: {
  python: string;
  packageDir: string;
  dataDir: string;
  modelCachePath: string;
  serverUrl: string;
}): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-doctor-ml-" });
  const ml = new MlService({
    workers: 1,
    remote: [],
    python: options.python,
    packageDir: options.packageDir,
    dataDir,
    modelCachePath: options.modelCachePath,
    token: null,
    log: createLogger({ level: "error", sink: () => {} }),
  });
  try {
    const began = performance.now();
    await ml.start();
    const worker = ml.workers[0];
    if (worker.state !== "ready" || !worker.client) {
      checks.push({ name: "ml service", ok: false, detail: worker.status().lastError ?? worker.state });
    } else {
      const status = await worker.client.status();
      checks.push({
        name: "ml service",
        ok: true,
        detail: `SERVING in ${Math.round(performance.now() - began)} ms; python ${status.python}, grpcio ${
          status.versions.grpcio ?? "?"
        } (${options.python})`,
      });
    }
  } catch (error) {
    checks.push({ name: "ml service", ok: false, detail: error instanceof Error ? error.message : String(error) });
  } finally {
    await ml.stop(2_000);
    await Deno.remove(dataDir, { recursive: true });
  }
  try {
    const res = await fetch(`${options.serverUrl}/v1/health`, { signal: AbortSignal.timeout(2_000) });
    const body = await res.json() as { components?: { name: string; state: string; detail?: string }[] };
    const ml = body.components?.find((c) => c.name === "ml");
    checks.push({
      name: "ml (running)",
      ok: !ml || ml.state === "ready",
      detail: ml ? `${ml.state}: ${ml.detail ?? ""}` : `the server at ${options.serverUrl} runs without ML`,
    });
  } catch (error) {
    // Refused or timed out: no server runs there, which is not a failure of this machine.
    const why = error instanceof Error ? error.name : String(error);
    checks.push({ name: "ml (running)", ok: true, detail: `no server answers at ${options.serverUrl} (${why})` });
  }
  return checks;
}
