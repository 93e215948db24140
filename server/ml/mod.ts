/**
 * The Python ML service, supervised: `protos/ml_inference.proto` over gRPC to one or more workers
 * (`python -m tabagent_ml`, spawned and restarted by {@link LocalWorker}; or remote ones), with
 * deadlines, cancellation, least-loaded dispatch, and the state for health and doctor.
 *
 * The vision entry points for other modules (the WebRTC helper) are {@link MlService.detect} and
 * {@link MlService.detectStream}.
 *
 * @example
 * ```ts
 * const ml = new MlService({ workers: 1, remote: [], python, packageDir, dataDir, modelCachePath, token, log });
 * await ml.start();
 * const faces = await ml.detect({ image: png }, "faces");
 * await ml.stop();
 * ```
 * @module
 */
export { type CallOptions, ML_CHANNEL_OPTIONS, ML_DEADLINES_MS, MlClient, type MlClientOptions } from "./client.ts";
export {
  type Detection,
  type DetectResult,
  type EmbedResult,
  type FrameStream,
  type GenerateEvent,
  type TensorValue,
  VISION_TASKS,
  type VisionImage,
  type VisionTask,
} from "./types.ts";
export {
  localWorkerAddress,
  ML_BUILTIN_EMBEDDING,
  ML_DISPATCH,
  ML_WAIT_FOR_WORKER_MS,
  type MlDispatch,
  MlService,
  type MlServiceOptions,
} from "./service.ts";
export {
  BREAKER_COOLDOWN_MS,
  BREAKER_CRASHES,
  type MlWorker,
  restartDelay,
  type WorkerState,
  type WorkerStatus,
} from "./_worker_base.ts";
export { LocalWorker, type LocalWorkerOptions } from "./worker.ts";
export { RemoteWorker, type RemoteWorkerOptions } from "./remote_worker.ts";
export { mlChecks } from "./doctor.ts";
