/**
 * The ONNX Runtime execution-provider catalog, and which providers this build and this machine can
 * actually use. The build tells what is compiled in (`listSupportedBackends()`); the hardware tells
 * whether the device is there.
 */
import type { HardwareInfo } from "../../hardware/mod.ts";

/** One execution provider as ONNX Runtime knows it. */
export interface ProviderEntry {
  /** The name onnxruntime-node takes in `executionProviders` (e.g. "cuda"). */
  id: string;
  /** ONNX Runtime's own name (e.g. "CUDAExecutionProvider"). */
  ortName: string;
  vendor: string;
  /** What it runs on. */
  device: "cpu" | "gpu" | "npu" | "remote";
  platforms: string[];
  /** True when the hardware it needs is present. */
  hardware: (hw: HardwareInfo) => boolean;
}

const gpu = (vendor: string) => (hw: HardwareInfo) => hw.gpus.some((g) => g.vendor === vendor);
const npu = (vendor: string) => (hw: HardwareInfo) => hw.npus.some((n) => n.vendor === vendor);
const always = () => true;
const ALL = ["linux", "darwin", "windows"];

/** Every execution provider ONNX Runtime ships or documents, best first within a device class. */
export const EXECUTION_PROVIDERS: readonly ProviderEntry[] = [
  {
    id: "tensorrt",
    ortName: "TensorrtExecutionProvider",
    vendor: "NVIDIA",
    device: "gpu",
    platforms: ["linux", "windows"],
    hardware: gpu("nvidia"),
  },
  {
    id: "nv_tensorrt_rtx",
    ortName: "NvTensorRTRTXExecutionProvider",
    vendor: "NVIDIA",
    device: "gpu",
    platforms: ["windows"],
    hardware: gpu("nvidia"),
  },
  {
    id: "cuda",
    ortName: "CUDAExecutionProvider",
    vendor: "NVIDIA",
    device: "gpu",
    platforms: ["linux", "windows"],
    hardware: gpu("nvidia"),
  },
  {
    id: "migraphx",
    ortName: "MIGraphXExecutionProvider",
    vendor: "AMD",
    device: "gpu",
    platforms: ["linux"],
    hardware: gpu("amd"),
  },
  {
    id: "rocm",
    ortName: "ROCMExecutionProvider",
    vendor: "AMD",
    device: "gpu",
    platforms: ["linux"],
    hardware: gpu("amd"),
  },
  {
    id: "dml",
    ortName: "DmlExecutionProvider",
    vendor: "Microsoft",
    device: "gpu",
    platforms: ["windows"],
    hardware: (hw) => hw.gpus.length > 0,
  },
  {
    id: "coreml",
    ortName: "CoreMLExecutionProvider",
    vendor: "Apple",
    device: "npu",
    platforms: ["darwin"],
    hardware: always,
  },
  {
    id: "webgpu",
    ortName: "WebGpuExecutionProvider",
    vendor: "W3C/Dawn",
    device: "gpu",
    platforms: ALL,
    hardware: (hw) => hw.gpus.length > 0,
  },
  {
    id: "openvino",
    ortName: "OpenVINOExecutionProvider",
    vendor: "Intel",
    device: "npu",
    platforms: ["linux", "windows"],
    hardware: (hw) => npu("intel")(hw) || gpu("intel")(hw) || /intel/i.test(hw.cpu.vendor),
  },
  {
    id: "vitisai",
    ortName: "VitisAIExecutionProvider",
    vendor: "AMD",
    device: "npu",
    platforms: ["linux", "windows"],
    hardware: npu("amd"),
  },
  {
    id: "qnn",
    ortName: "QNNExecutionProvider",
    vendor: "Qualcomm",
    device: "npu",
    platforms: ["windows", "linux"],
    hardware: (hw) => npu("qualcomm")(hw) || gpu("qualcomm")(hw),
  },
  {
    id: "snpe",
    ortName: "SNPEExecutionProvider",
    vendor: "Qualcomm",
    device: "npu",
    platforms: ["windows", "linux"],
    hardware: npu("qualcomm"),
  },
  {
    id: "nnapi",
    ortName: "NnapiExecutionProvider",
    vendor: "Google",
    device: "npu",
    platforms: ["android"],
    hardware: always,
  },
  {
    id: "cann",
    ortName: "CANNExecutionProvider",
    vendor: "Huawei",
    device: "npu",
    platforms: ["linux"],
    hardware: () => false,
  },
  {
    id: "rknpu",
    ortName: "RknpuExecutionProvider",
    vendor: "Rockchip",
    device: "npu",
    platforms: ["linux"],
    hardware: () => false,
  },
  {
    id: "vsinpu",
    ortName: "VSINPUExecutionProvider",
    vendor: "VeriSilicon",
    device: "npu",
    platforms: ["linux"],
    hardware: () => false,
  },
  {
    id: "armnn",
    ortName: "ArmNNExecutionProvider",
    vendor: "Arm",
    device: "cpu",
    platforms: ["linux"],
    hardware: (hw) => hw.arch === "aarch64",
  },
  {
    id: "acl",
    ortName: "ACLExecutionProvider",
    vendor: "Arm",
    device: "cpu",
    platforms: ["linux"],
    hardware: (hw) => hw.arch === "aarch64",
  },
  {
    id: "dnnl",
    ortName: "DnnlExecutionProvider",
    vendor: "Intel",
    device: "cpu",
    platforms: ["linux", "windows"],
    hardware: (hw) => hw.arch === "x86_64",
  },
  {
    id: "xnnpack",
    ortName: "XnnpackExecutionProvider",
    vendor: "Google",
    device: "cpu",
    platforms: ALL,
    hardware: always,
  },
  {
    id: "tvm",
    ortName: "TvmExecutionProvider",
    vendor: "Apache",
    device: "cpu",
    platforms: ["linux", "windows"],
    hardware: always,
  },
  {
    id: "azure",
    ortName: "AzureExecutionProvider",
    vendor: "Microsoft",
    device: "remote",
    platforms: ALL,
    hardware: always,
  },
  {
    id: "webnn",
    ortName: "WebNNExecutionProvider",
    vendor: "W3C",
    device: "npu",
    platforms: ["browser"],
    hardware: always,
  },
  {
    id: "webgl",
    ortName: "WebGLExecutionProvider",
    vendor: "W3C",
    device: "gpu",
    platforms: ["browser"],
    hardware: always,
  },
  {
    id: "wasm",
    ortName: "WasmExecutionProvider",
    vendor: "W3C",
    device: "cpu",
    platforms: ["browser"],
    hardware: always,
  },
  {
    id: "js",
    ortName: "JsExecutionProvider",
    vendor: "Microsoft",
    device: "gpu",
    platforms: ["browser"],
    hardware: always,
  },
  { id: "cpu", ortName: "CPUExecutionProvider", vendor: "Microsoft", device: "cpu", platforms: ALL, hardware: always },
];

/** One provider's availability here. */
export interface ProviderStatus {
  id: string;
  ortName: string;
  vendor: string;
  device: ProviderEntry["device"];
  /** Compiled into this onnxruntime-node build. */
  compiled: boolean;
  /** Its libraries are installed (bundled, or downloaded beside the binding). */
  installed: boolean;
  /** The device it needs is present on this machine. */
  hardwarePresent: boolean;
  usable: boolean;
  /** Why it is not usable, when it is not. */
  reason?: string;
}

/** What onnxruntime-node's `listSupportedBackends()` returns. */
export interface CompiledBackend {
  name: string;
  bundled: boolean;
}

/**
 * Availability of every catalog entry, given this build's backends, the hardware, and which extra
 * provider libraries exist (CUDA and TensorRT are compiled in but ship separately).
 */
export function providerStatuses(
  compiled: readonly CompiledBackend[],
  hardware: HardwareInfo,
  installedExtras: ReadonlySet<string> = new Set(),
): ProviderStatus[] {
  return EXECUTION_PROVIDERS.map((entry) => {
    const backend = compiled.find((b) => b.name === entry.id);
    const isCompiled = backend !== undefined;
    const installed = isCompiled && (backend.bundled || installedExtras.has(entry.id));
    const onPlatform = entry.platforms.includes(hardware.os);
    const hardwarePresent = onPlatform && entry.hardware(hardware);
    let reason: string | undefined;
    if (!isCompiled) reason = "not compiled into this onnxruntime-node build";
    else if (!installed) reason = "its provider libraries are not installed";
    else if (!onPlatform) reason = `not available on ${hardware.os}`;
    else if (!hardwarePresent) reason = `no ${entry.vendor} ${entry.device} found`;
    return {
      id: entry.id,
      ortName: entry.ortName,
      vendor: entry.vendor,
      device: entry.device,
      compiled: isCompiled,
      installed,
      hardwarePresent,
      usable: reason === undefined,
      ...(reason ? { reason } : {}),
    };
  });
}

/**
 * The providers to try for a model, best first, always ending with "cpu". `preferred` (from the
 * model's manifest or the request) goes first when usable.
 */
export function chooseProviders(statuses: readonly ProviderStatus[], preferred: readonly string[] = []): string[] {
  const usable = new Set(statuses.filter((s) => s.usable).map((s) => s.id));
  const order = [...preferred.filter((id) => usable.has(id))];
  for (const status of statuses) {
    // webgpu in Node is experimental and slower than CPU for small models: only when asked for.
    if (status.usable && status.id !== "cpu" && status.id !== "webgpu" && !order.includes(status.id)) {
      order.push(status.id);
    }
  }
  order.push("cpu");
  return [...new Set(order)];
}
