/**
 * {@link MlClient}: one gRPC channel to one ML worker, with a deadline on every call and
 * cancellation that reaches Python (an aborted `signal` cancels the call; the service checks for it
 * between batches and tokens and stops).
 *
 * @example
 * ```ts
 * const client = new MlClient({ address: "unix:/tmp/ml.sock", token, name: "ml-0" });
 * const { vectors } = await client.embed({ model: "sentence-transformers/all-MiniLM-L6-v2", inputs: ["hi"] });
 * client.close();
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { TabAgentError } from "../errors/mod.ts";
import { fromGrpcError, loadMlProto, ML_MAX_MESSAGE_BYTES } from "./_proto.ts";
import type {
  Detection,
  DetectResult,
  EmbedResult,
  FrameStream,
  GenerateEvent,
  TensorValue,
  VisionImage,
  VisionTask,
} from "./types.ts";
import type { ModelManagementClient } from "./_generated/tabagent/ml/v1/ModelManagement.ts";
import type { TransformersClient } from "./_generated/tabagent/ml/v1/Transformers.ts";
import type { MediaPipeClient } from "./_generated/tabagent/ml/v1/MediaPipe.ts";
import type { LiteRTClient } from "./_generated/tabagent/ml/v1/LiteRT.ts";
import type { HealthClient } from "./_generated/grpc/health/v1/Health.ts";
import type { DetectReply__Output } from "./_generated/tabagent/ml/v1/DetectReply.ts";
import type { Frame } from "./_generated/tabagent/ml/v1/Frame.ts";
import type { GenerateRequest } from "./_generated/tabagent/ml/v1/GenerateRequest.ts";
import type { LoadModelRequest } from "./_generated/tabagent/ml/v1/LoadModelRequest.ts";
import type { ModelInfo__Output } from "./_generated/tabagent/ml/v1/ModelInfo.ts";
import type { ServiceStatus__Output } from "./_generated/tabagent/ml/v1/ServiceStatus.ts";
import type { Tensor, Tensor__Output } from "./_generated/tabagent/ml/v1/Tensor.ts";

/** Deadlines (ms) by kind of call, unless the caller gives its own. */
export const ML_DEADLINES_MS = {
  ping: 5_000,
  health: 2_000,
  manage: 120_000,
  embed: 60_000,
  detect: 30_000,
  generate: 600_000,
  run: 30_000,
} as const;

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call (and the work in Python) when aborted. */
  signal?: AbortSignal;
  /** Overrides the default deadline of this kind of call. */
  deadlineMs?: number;
}

/** Options for {@link MlClient}. */
export interface MlClientOptions {
  /** `unix:/path.sock` or `host:port`. */
  address: string;
  /** Sent as `authorization: Bearer <token>`; null for a worker started without one. */
  token: string | null;
  /**
   * Use TLS (remote workers). `ca`: a PEM bundle to trust instead of the system roots; `serverName`:
   * the name the certificate must carry when the address is an IP (TLS clients send no IP as SNI).
   */
  tls?: { ca?: Uint8Array; serverName?: string };
  /** Names the worker in errors and logs. */
  name?: string;
}

const TASK_ENUM = { faces: "VISION_TASK_FACES", pose: "VISION_TASK_POSE", hands: "VISION_TASK_HANDS" } as const;
const TASK_NAME: Record<string, VisionTask> = {
  VISION_TASK_FACES: "faces",
  VISION_TASK_POSE: "pose",
  VISION_TASK_HANDS: "hands",
};
const DTYPE_ENUM = {
  float32: "DTYPE_FLOAT32",
  int32: "DTYPE_INT32",
  uint8: "DTYPE_UINT8",
  int8: "DTYPE_INT8",
  int64: "DTYPE_INT64",
} as const;

function toDetection(d: DetectReply__Output["detections"][number]): Detection {
  const out: Detection = {
    task: TASK_NAME[d.task as string] ?? "faces",
    score: d.score,
    box: { x: d.box?.x ?? 0, y: d.box?.y ?? 0, width: d.box?.width ?? 0, height: d.box?.height ?? 0 },
    landmarks: d.landmarks.map((l) => ({ x: l.x, y: l.y, z: l.z, visibility: l.visibility })),
  };
  if (d.label) out.label = d.label;
  return out;
}

function toResult(reply: DetectReply__Output): DetectResult {
  return {
    frameId: Number(reply.frame_id),
    detections: reply.detections.map(toDetection),
    width: reply.width,
    height: reply.height,
    timings: { decode_ms: reply.decode_ms, inference_ms: reply.inference_ms },
  };
}

/** The channel options every ML channel uses; tuned for many tiny unary calls on one connection. */
export const ML_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": ML_MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": ML_MAX_MESSAGE_BYTES,
  // Retries would replay a call into a restarted worker; the caller decides instead.
  "grpc.enable_retries": 0,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 2_000,
  "grpc.use_local_subchannel_pool": 1,
};

/** One gRPC channel to one worker, shared by the four services' stubs. */
export class MlClient {
  readonly address: string;
  readonly name: string;
  #channel: grpc.Channel;
  #metadata = new grpc.Metadata();
  #manage: ModelManagementClient;
  #text: TransformersClient;
  #vision: MediaPipeClient;
  #litert: LiteRTClient;
  #health: HealthClient;

  constructor(options: MlClientOptions) {
    this.address = options.address;
    this.name = options.name ?? options.address;
    const proto = loadMlProto();
    const credentials = options.tls
      ? grpc.credentials.createSsl(options.tls.ca ? Buffer.from(options.tls.ca) : null)
      : grpc.credentials.createInsecure();
    const serverName = options.tls?.serverName;
    this.#channel = new grpc.Channel(
      options.address,
      credentials,
      serverName
        ? { ...ML_CHANNEL_OPTIONS, "grpc.ssl_target_name_override": serverName, "grpc.default_authority": serverName }
        : ML_CHANNEL_OPTIONS,
    );
    const shared = { channelOverride: this.#channel };
    this.#manage = new proto.ml.ModelManagement(options.address, credentials, shared);
    this.#text = new proto.ml.Transformers(options.address, credentials, shared);
    this.#vision = new proto.ml.MediaPipe(options.address, credentials, shared);
    this.#litert = new proto.ml.LiteRT(options.address, credentials, shared);
    this.#health = new proto.health.Health(options.address, credentials, shared);
    if (options.token !== null) this.#metadata.set("authorization", `Bearer ${options.token}`);
  }

  /**
   * Runs one unary call with its deadline and cancellation, straight on the channel: no interceptor
   * chain, no event emitter, no captured caller stack per call (what `Client.makeUnaryRequest` adds),
   * which is most of grpc-js's per-call cost on tiny messages.
   */
  #unary<Req, Res>(
    stub: grpc.Client,
    method: string,
    request: Req,
    deadlineMs: number,
    options: CallOptions,
  ): Promise<Res> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    const definition = (stub.constructor as unknown as { service: grpc.ServiceDefinition }).service[method];
    const call = this.#channel.createCall(
      definition.path,
      Date.now() + (options.deadlineMs ?? deadlineMs),
      null,
      null,
      null,
    );
    return new Promise<Res>((resolve, reject) => {
      let reply: Res | undefined;
      const onAbort = () => call.cancelWithStatus(grpc.status.CANCELLED, "Cancelled by the caller");
      call.start(this.#metadata.clone(), {
        onReceiveMetadata() {},
        onReceiveMessage(message: Uint8Array) {
          reply = definition.responseDeserialize(message as Buffer) as Res;
        },
        onReceiveStatus: (status: grpc.StatusObject) => {
          signal?.removeEventListener("abort", onAbort);
          if (status.code === grpc.status.OK && reply !== undefined) resolve(reply);
          else if (signal?.aborted) reject(cancelledError(signal));
          else {
            const error = Object.assign(new Error(status.details), {
              code: status.code === grpc.status.OK ? grpc.status.UNIMPLEMENTED : status.code,
              details: status.details,
              metadata: status.metadata,
            });
            reject(fromGrpcError(error as grpc.ServiceError, this.name));
          }
        },
      });
      call.sendMessageWithContext({}, definition.requestSerialize(request));
      call.halfClose();
      call.startRead();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * A round trip that touches no model. Hot path of the benchmark: no per-call closures beyond the
   * promise, the metadata object reused.
   */
  ping(payload: Uint8Array = EMPTY, options: CallOptions = {}): Promise<{ pid: number }> {
    return this.#unary(this.#manage as unknown as grpc.Client, "Ping", { payload }, ML_DEADLINES_MS.ping, options);
  }

  /** grpc.health.v1 Check: the serving status (e.g. "SERVING"). */
  async health(options: CallOptions & { service?: string } = {}): Promise<string> {
    const reply = await this.#unary<unknown, { status: string }>(
      this.#health as unknown as grpc.Client,
      "Check",
      { service: options.service ?? "" },
      ML_DEADLINES_MS.health,
      options,
    );
    return reply.status;
  }

  /** Resolves once the channel is connected, or fails with `unavailable` after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#manage.waitForReady(Date.now() + timeoutMs, (error) => {
        if (error) reject(new TabAgentError("unavailable", `ML worker ${this.name} unreachable: ${error.message}`));
        else resolve();
      });
    });
  }

  /** Loads a model ahead of its first call. */
  loadModel(request: LoadModelRequest, options: CallOptions = {}): Promise<ModelInfo__Output> {
    return this.#unary(this.#manage as unknown as grpc.Client, "LoadModel", request, ML_DEADLINES_MS.manage, options);
  }

  /** Unloads a model; true when it was loaded. */
  async unloadModel(model: string, options: CallOptions = {}): Promise<boolean> {
    const reply = await this.#unary<unknown, { unloaded: boolean }>(
      this.#manage as unknown as grpc.Client,
      "UnloadModel",
      { model },
      ML_DEADLINES_MS.manage,
      options,
    );
    return reply.unloaded;
  }

  /** Loaded models and the built-in ones. */
  async listModels(options: CallOptions = {}): Promise<ModelInfo__Output[]> {
    const reply = await this.#unary<unknown, { models: ModelInfo__Output[] }>(
      this.#manage as unknown as grpc.Client,
      "ListModels",
      {},
      ML_DEADLINES_MS.ping,
      options,
    );
    return reply.models;
  }

  /** The worker's pid, uptime, load and versions. */
  status(options: CallOptions = {}): Promise<ServiceStatus__Output> {
    return this.#unary(this.#manage as unknown as grpc.Client, "Status", {}, ML_DEADLINES_MS.ping, options);
  }

  /** Embeds `inputs` with a sentence-transformers model. */
  async embed(
    request: { model: string; inputs: string[]; normalize?: boolean },
    options: CallOptions = {},
  ): Promise<EmbedResult> {
    const reply = await this.#unary<
      unknown,
      { count: number; dimensions: number; vectors: Uint8Array; prompt_tokens: number; compute_ms: number }
    >(
      this.#text as unknown as grpc.Client,
      "Embed",
      { model: request.model, inputs: request.inputs, normalize: request.normalize ?? true },
      ML_DEADLINES_MS.embed,
      options,
    );
    const { count, dimensions } = reply;
    if (reply.vectors.byteLength !== count * dimensions * 4) {
      throw new TabAgentError("upstream_failed", `ML worker ${this.name} sent a malformed embedding matrix`);
    }
    // One copy into an aligned buffer, then views per row.
    const all = new Float32Array(count * dimensions);
    new Uint8Array(all.buffer).set(reply.vectors);
    const vectors = Array.from({ length: count }, (_, i) => all.subarray(i * dimensions, (i + 1) * dimensions));
    return { vectors, dimensions, promptTokens: reply.prompt_tokens, computeMs: reply.compute_ms };
  }

  /** Streams generated text; cancelling `signal` stops generation in Python. */
  async *generate(request: GenerateRequest, options: CallOptions = {}): AsyncGenerator<GenerateEvent> {
    const { signal } = options;
    if (signal?.aborted) throw cancelledError(signal);
    const call = this.#text.Generate(request, this.#metadata, {
      deadline: Date.now() + (options.deadlineMs ?? ML_DEADLINES_MS.generate),
    });
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const chunk of call) {
        if (chunk.done) {
          yield {
            type: "done",
            finishReason: chunk.finish_reason || "stop",
            promptTokens: chunk.prompt_tokens,
            completionTokens: chunk.completion_tokens,
          };
        } else if (chunk.text) yield { type: "text", text: chunk.text };
      }
    } catch (error) {
      if (signal?.aborted) throw cancelledError(signal);
      throw fromGrpcError(error as grpc.ServiceError, this.name);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  /** Classifies each input; the top `topK` labels with scores. */
  async classify(
    request: { model: string; inputs: string[]; topK?: number },
    options: CallOptions = {},
  ): Promise<{ label: string; score: number }[][]> {
    const reply = await this.#unary<unknown, { results: { labels: { label: string; score: number }[] }[] }>(
      this.#text as unknown as grpc.Client,
      "Classify",
      { model: request.model, inputs: request.inputs, top_k: request.topK ?? 0 },
      ML_DEADLINES_MS.embed,
      options,
    );
    return reply.results.map((r) => r.labels.map((l) => ({ label: l.label, score: l.score })));
  }

  /** Detects faces, bodies or hands in one image. */
  async detect(
    request: VisionImage & { tasks: VisionTask[]; minConfidence?: number },
    options: CallOptions = {},
  ): Promise<DetectResult> {
    const reply = await this.#unary<unknown, DetectReply__Output>(
      this.#vision as unknown as grpc.Client,
      "Detect",
      {
        image: request.image,
        tasks: request.tasks.map((t) => TASK_ENUM[t]),
        width: request.width ?? 0,
        height: request.height ?? 0,
        min_confidence: request.minConfidence ?? 0,
      },
      ML_DEADLINES_MS.detect,
      options,
    );
    return toResult(reply);
  }

  /** Opens a bidirectional frame stream; MediaPipe tracks across its frames. */
  detectStream(options: CallOptions = {}): FrameStream {
    const call = this.#vision.DetectStream(this.#metadata, {
      deadline: Date.now() + (options.deadlineMs ?? 24 * 3600_000),
    });
    const { signal } = options;
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    const name = this.name;
    return {
      send(frame) {
        const wire: Frame = {
          id: frame.id,
          image: frame.image,
          tasks: (frame.tasks ?? ["faces"]).map((t) => TASK_ENUM[t]),
          width: frame.width ?? 0,
          height: frame.height ?? 0,
          min_confidence: frame.minConfidence ?? 0,
        };
        return call.write(wire);
      },
      end() {
        call.end();
      },
      cancel() {
        call.cancel();
      },
      async *[Symbol.asyncIterator]() {
        try {
          for await (const reply of call) yield toResult(reply as DetectReply__Output);
        } catch (error) {
          if (signal?.aborted) throw cancelledError(signal);
          throw fromGrpcError(error as grpc.ServiceError, name);
        } finally {
          signal?.removeEventListener("abort", onAbort);
        }
      },
    };
  }

  /** Runs a .tflite model (a path on the worker, or a built-in name) on tensors. */
  async runTflite(
    request: { model: string; inputs: TensorValue[] },
    options: CallOptions = {},
  ): Promise<{ outputs: TensorValue[]; inferenceMs: number }> {
    const reply = await this.#unary<unknown, { outputs: Tensor__Output[]; inference_ms: number }>(
      this.#litert as unknown as grpc.Client,
      "Run",
      {
        model: request.model,
        inputs: request.inputs.map((t): Tensor => ({
          name: t.name ?? "",
          dtype: DTYPE_ENUM[t.dtype],
          shape: t.shape,
          data: t.data,
        })),
      },
      ML_DEADLINES_MS.run,
      options,
    );
    const names = Object.fromEntries(Object.entries(DTYPE_ENUM).map(([k, v]) => [v, k]));
    return {
      inferenceMs: reply.inference_ms,
      outputs: reply.outputs.map((t) => ({
        name: t.name,
        dtype: names[t.dtype as string] as TensorValue["dtype"],
        shape: t.shape.map(Number),
        data: new Uint8Array(t.data),
      })),
    };
  }

  /** Closes the channel; calls in flight fail with `cancelled`/`unavailable`. */
  close(): void {
    this.#channel.close();
  }
}

const EMPTY = new Uint8Array(0);

function cancelledError(signal: AbortSignal): TabAgentError {
  const reason = signal.reason;
  if (reason instanceof TabAgentError) return reason;
  return new TabAgentError("cancelled", "The request was cancelled; the ML work was stopped");
}
