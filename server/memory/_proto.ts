/**
 * `protos/database.proto` at run time: the grpc-js service definition (via proto-loader) and
 * converters between the wire messages and the MemoryClient's objects. The converters are driven
 * by the .proto itself: `optional` fields map to null when unset, `*_json` fields carry JSON values
 * under the name without the suffix, and unset plain scalars take their proto3 default.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ERROR_CODES, type ErrorCode, TabAgentError, validationError } from "../errors/mod.ts";

/** Where the service is declared. */
export const PROTO_URL = new URL("../../protos/database.proto", import.meta.url);
/** The fully qualified service name. */
export const SERVICE_NAME = "tabagent.memory.v1.DatabaseService";
/** Largest gRPC message either side accepts: room for the import limit. */
export const GRPC_MAX_MESSAGE_BYTES = 80 * 1024 * 1024;

interface Field {
  name: string;
  /** The domain key: the name without `_json` for JSON fields. */
  key: string;
  type: string;
  optional: boolean;
  repeated: boolean;
  map: boolean;
  json: boolean;
}

const SCALAR_DEFAULTS: Record<string, unknown> = {
  string: "",
  bool: false,
  int32: 0,
  int64: 0,
  sint32: 0,
  uint32: 0,
  double: 0,
  float: 0,
};

/** Field lists by message name, parsed from the .proto text (flat messages only, as ours are). */
function parseShapes(text: string): Map<string, Field[]> {
  const shapes = new Map<string, Field[]>();
  const clean = text.replace(/\/\/.*$/gm, "");
  for (const match of clean.matchAll(/message\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields: Field[] = [];
    for (
      const line of match[2].matchAll(/(optional\s+|repeated\s+)?(map<\s*\w+\s*,\s*\w+\s*>|\w+)\s+(\w+)\s*=\s*\d+\s*;/g)
    ) {
      const [, label, type, name] = line;
      const json = name.endsWith("_json");
      fields.push({
        name,
        key: json ? name.slice(0, -5) : name,
        type,
        optional: label?.trim() === "optional",
        repeated: label?.trim() === "repeated",
        map: type.startsWith("map<"),
        json,
      });
    }
    shapes.set(match[1], fields);
  }
  return shapes;
}

/** The loaded service and the converters for its messages. */
export interface DatabaseProto {
  service: grpc.ServiceDefinition;
  /** The grpc-js client constructor. */
  Client: grpc.ServiceClientConstructor;
  /** A domain object → the wire message `type`. */
  toWire(type: string, value: unknown): Record<string, unknown>;
  /**
   * A wire message → a domain object. `input` mode (requests arriving at the server) leaves unset
   * optional fields out, so the input schemas see them as absent; output mode makes them null.
   */
  fromWire(type: string, value: Record<string, unknown>, mode: "input" | "output"): Record<string, unknown>;
}

let cached: DatabaseProto | undefined;

/** Loads `protos/database.proto` once. */
export function loadDatabaseProto(): DatabaseProto {
  if (cached) return cached;
  const path = decodeURIComponent(PROTO_URL.pathname);
  const definition = protoLoader.loadSync(path, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: false,
  });
  const shapes = parseShapes(Deno.readTextFileSync(path));
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    tabagent: { memory: { v1: { DatabaseService: grpc.ServiceClientConstructor } } };
  };
  const Client = loaded.tabagent.memory.v1.DatabaseService;

  const shape = (type: string) => {
    const fields = shapes.get(type);
    if (!fields) throw new Error(`no message ${type} in database.proto`);
    return fields;
  };

  const toWire = (type: string, value: unknown): Record<string, unknown> => {
    const source = (value ?? {}) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const field of shape(type)) {
      const item = source[field.key];
      if (item === undefined || item === null) continue;
      if (field.json) out[field.name] = JSON.stringify(item);
      else if (field.map || SCALAR_DEFAULTS[field.type] !== undefined) out[field.name] = item;
      else if (field.repeated) out[field.name] = (item as unknown[]).map((entry) => toWire(field.type, entry));
      else out[field.name] = toWire(field.type, item);
    }
    return out;
  };

  const fromWire = (type: string, value: Record<string, unknown>, mode: "input" | "output") => {
    const out: Record<string, unknown> = {};
    for (const field of shape(type)) {
      const item = value?.[field.name];
      if (item === undefined || item === null) {
        if (field.optional) {
          if (mode === "output") out[field.key] = null;
        } else if (field.repeated) out[field.key] = [];
        else if (field.map) out[field.key] = {};
        else if (SCALAR_DEFAULTS[field.type] !== undefined) out[field.key] = SCALAR_DEFAULTS[field.type];
        continue;
      }
      if (field.json) {
        try {
          out[field.key] = JSON.parse(item as string);
        } catch {
          throw validationError(type, [{ path: [field.name], message: "is not valid JSON" }]);
        }
      } else if (field.map) out[field.key] = { ...(item as Record<string, unknown>) };
      else if (SCALAR_DEFAULTS[field.type] !== undefined) {
        out[field.key] = field.repeated ? [...(item as unknown[])] : item;
      } else if (field.repeated) {
        out[field.key] = (item as Record<string, unknown>[]).map((entry) => fromWire(field.type, entry, mode));
      } else out[field.key] = fromWire(field.type, item as Record<string, unknown>, mode);
    }
    return out;
  };

  cached = { service: Client.service, Client, toWire, fromWire };
  return cached;
}

/** The trailing metadata key that carries the TabAgentError as JSON. */
export const ERROR_METADATA_KEY = "tabagent-error-bin";

/** A gRPC error for `error`, carrying the code, message and extensions. */
export function toGrpcError(error: TabAgentError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(
    ERROR_METADATA_KEY,
    Buffer.from(JSON.stringify({ code: error.code, message: error.message, extensions: error.extensions })),
  );
  return { code: error.grpcStatus, details: error.message, metadata };
}

/** The TabAgentError a gRPC failure stands for. */
export function fromGrpcError(error: grpc.ServiceError): TabAgentError {
  const carried = error.metadata?.get(ERROR_METADATA_KEY)?.[0];
  if (carried) {
    const { code, message, extensions } = JSON.parse(new TextDecoder().decode(carried as Uint8Array));
    // The code comes off the wire: only our own codes (never an inherited name like "constructor").
    if (typeof code === "string" && Object.hasOwn(ERROR_CODES, code)) {
      return new TabAgentError(code as ErrorCode, String(message), extensions);
    }
  }
  const byStatus: Partial<Record<number, TabAgentError["code"]>> = {
    [grpc.status.UNAVAILABLE]: "unavailable",
    [grpc.status.UNAUTHENTICATED]: "unauthorized",
    [grpc.status.DEADLINE_EXCEEDED]: "timeout",
    [grpc.status.CANCELLED]: "cancelled",
    [grpc.status.RESOURCE_EXHAUSTED]: "payload_too_large",
  };
  return new TabAgentError(
    byStatus[error.code] ?? "internal",
    `Memory service: ${error.details || error.message}`,
    {},
    {
      cause: error,
    },
  );
}

/** The request and response message names of each RPC, by method name. */
export function methodTypes(service: grpc.ServiceDefinition): Map<string, { request: string; response: string }> {
  return new Map(
    Object.entries(service).map(([name, method]) => {
      const typed = method as unknown as {
        requestType: { type: { name: string } };
        responseType: { type: { name: string } };
      };
      return [name, { request: typed.requestType.type.name, response: typed.responseType.type.name }];
    }),
  );
}
