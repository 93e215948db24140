/** ONNX Runtime sessions: creation with provider fallback, IO description, and runs. */
import * as ort from "onnxruntime-node";
import { TabAgentError } from "../../errors/mod.ts";
import type { Logger } from "../../log/mod.ts";

/** One input or output of a model. */
export interface TensorSpec {
  name: string;
  type: string;
  /** Dimensions; strings are symbolic (e.g. "batch"). */
  shape: (number | string)[];
}

/** A model's inputs and outputs. */
export interface ModelIo {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** A created session and the provider that accepted it. */
export interface OnnxSession {
  session: ort.InferenceSession;
  provider: string;
  io: ModelIo;
}

function specs(metadata: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] {
  return metadata.map((m) =>
    m.isTensor
      ? { name: m.name, type: String(m.type), shape: [...m.shape].map((d) => (typeof d === "number" ? d : String(d))) }
      : { name: m.name, type: "non-tensor", shape: [] }
  );
}

/**
 * Creates a session trying `providers` in order (each alone, then CPU), so a provider that is
 * listed but fails at run time (missing driver, unsupported op) falls back instead of failing.
 *
 * @example
 * ```ts
 * const { session, provider } = await createSession("model.onnx", { providers: ["cuda", "cpu"], threads: 2 });
 * ```
 */
export async function createSession(
  path: string,
  options: { providers: string[]; threads: number; log?: Logger },
): Promise<OnnxSession> {
  const tried: string[] = [];
  let lastError: unknown;
  for (const provider of options.providers.includes("cpu") ? options.providers : [...options.providers, "cpu"]) {
    try {
      const session = await ort.InferenceSession.create(path, {
        executionProviders: [provider],
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
      });
      if (tried.length) options.log?.warn("onnx provider fell back", { path, tried, provider });
      return {
        session,
        provider,
        io: { inputs: specs(session.inputMetadata), outputs: specs(session.outputMetadata) },
      };
    } catch (error) {
      tried.push(provider);
      lastError = error;
      options.log?.debug("onnx provider refused the model", { path, provider, error });
    }
  }
  throw new TabAgentError("unavailable", `ONNX Runtime could not load ${path}`, { tried }, { cause: lastError });
}

/** Builds an int64 tensor of shape [rows, cols] from equal-length rows. */
export function int64Tensor(rows: number[][]): ort.Tensor {
  const cols = rows[0]?.length ?? 0;
  const data = new BigInt64Array(rows.length * cols);
  rows.forEach((row, r) => row.forEach((value, c) => (data[r * cols + c] = BigInt(value))));
  return new ort.Tensor("int64", data, [rows.length, cols]);
}

/** The providers compiled into this onnxruntime-node build. */
export function compiledBackends(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

/**
 * Extra provider libraries found beside the binding (CUDA/TensorRT ship separately from the npm
 * package: `onnxruntime_providers_cuda` etc.).
 */
export async function installedProviderLibraries(): Promise<Set<string>> {
  const found = new Set<string>();
  const bindingDir = new URL(
    `../../../node_modules/onnxruntime-node/bin/napi-v6/${Deno.build.os === "windows" ? "win32" : Deno.build.os}/${
      Deno.build.arch === "aarch64" ? "arm64" : "x64"
    }/`,
    import.meta.url,
  );
  try {
    for await (const entry of Deno.readDir(bindingDir)) {
      const match = entry.name.match(/onnxruntime_providers_(cuda|tensorrt|rocm|migraphx|openvino|dnnl)/);
      if (match) found.add(match[1]);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found;
}

export { ort };
