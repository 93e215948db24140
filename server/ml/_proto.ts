/**
 * `protos/ml_inference.proto` and the standard health proto at run time: grpc-js client constructors
 * typed by the generated types in `_generated/` (scripts/gen_ml_types.ts), plus the error mapping.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ERROR_CODES, type ErrorCode, TabAgentError } from "../errors/mod.ts";
import type { ProtoGrpcType as MlTypes } from "./_generated/ml_inference.ts";
import type { ProtoGrpcType as HealthTypes } from "./_generated/health.ts";

/** The folder holding the .proto files. */
export const PROTOS_DIR = decodeURIComponent(new URL("../../protos/", import.meta.url).pathname);
/** Largest gRPC message either side accepts (images, embedding batches). */
export const ML_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** The trailing metadata key that carries `{code, message}` of a failure. */
export const ERROR_METADATA_KEY = "tabagent-error-bin";

/** The loaded packages: `tabagent.ml.v1` and `grpc.health.v1`. */
export interface MlProto {
  ml: MlTypes["tabagent"]["ml"]["v1"];
  health: HealthTypes["grpc"]["health"]["v1"];
}

let cached: MlProto | undefined;

/** Loads both protos once. */
export function loadMlProto(): MlProto {
  if (cached) return cached;
  const definition = protoLoader.loadSync(["ml_inference.proto", "grpc/health/v1/health.proto"], {
    includeDirs: [PROTOS_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as MlTypes & HealthTypes;
  cached = { ml: loaded.tabagent.ml.v1, health: loaded.grpc.health.v1 };
  return cached;
}

/** The TabAgentError a failed ML call stands for; `worker` names it in messages. */
export function fromGrpcError(error: grpc.ServiceError, worker: string): TabAgentError {
  const carried = error.metadata?.get(ERROR_METADATA_KEY)?.[0];
  if (carried) {
    try {
      const parsed = JSON.parse(typeof carried === "string" ? carried : new TextDecoder().decode(carried)) as {
        code?: string;
        message?: string;
      };
      if (parsed.code === "unauthorized") {
        // The worker refused *this server's* token: a configuration problem, not the client's 401.
        return new TabAgentError("upstream_failed", `ML worker ${worker} refused the server's token`, { worker });
      }
      if (parsed.code && parsed.code in ERROR_CODES) {
        return new TabAgentError(parsed.code as ErrorCode, parsed.message ?? error.details, { worker });
      }
    } catch (cause) {
      return new TabAgentError("upstream_failed", `ML worker ${worker} sent an unreadable error`, {}, { cause });
    }
  }
  // The service puts its own failures (internal ones included) in the trailer; an INTERNAL or UNKNOWN
  // status without it is the transport's: the connection broke under the call (the worker died).
  const byStatus: Partial<Record<number, ErrorCode>> = {
    [grpc.status.UNAVAILABLE]: "unavailable",
    [grpc.status.INTERNAL]: "unavailable",
    [grpc.status.UNKNOWN]: "unavailable",
    [grpc.status.UNAUTHENTICATED]: "upstream_failed",
    [grpc.status.DEADLINE_EXCEEDED]: "timeout",
    [grpc.status.CANCELLED]: "cancelled",
    [grpc.status.RESOURCE_EXHAUSTED]: "payload_too_large",
    [grpc.status.INVALID_ARGUMENT]: "bad_request",
    [grpc.status.NOT_FOUND]: "not_found",
  };
  const code = byStatus[error.code] ?? "upstream_failed";
  const what = code === "unavailable"
    ? `ML worker ${worker} is unavailable (it stopped or is restarting); retry shortly`
    : code === "timeout"
    ? `ML worker ${worker} did not answer before the deadline`
    : `ML worker ${worker}: ${error.details || error.message}`;
  return new TabAgentError(code, what, { worker }, { cause: error });
}
