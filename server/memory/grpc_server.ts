/**
 * Serves a {@link MemoryClient} as the gRPC `DatabaseService` on loopback TCP or a Unix socket,
 * token-protected by the metadata `authorization: Bearer <token>`.
 */
import * as grpc from "@grpc/grpc-js";
import { tokensEqual } from "../auth/mod.ts";
import { TabAgentError, toTabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { defined, type MemoryClient, methodEntries, replyFromResult, type Wire } from "./client.ts";
import { GRPC_MAX_MESSAGE_BYTES, loadDatabaseProto, methodTypes, toGrpcError } from "./_proto.ts";

/** A running DatabaseService. */
export interface DatabaseServer {
  /** The address clients dial: `unix:/…/memory.sock` or `127.0.0.1:<port>`. */
  address: string;
  close(): Promise<void>;
}

/** Each unary RPC of the method table: the decoded request → the reply message. */
function unaryHandlers(memory: MemoryClient): Map<string, (request: Wire) => Promise<unknown>> {
  const handlers = new Map<string, (request: Wire) => Promise<unknown>>();
  for (const [name, spec] of methodEntries()) {
    const call = memory[name] as (...args: unknown[]) => Promise<unknown>;
    handlers.set(spec.rpc, async (request) => replyFromResult(spec, await call.apply(memory, spec.args(request))));
  }
  return handlers;
}

/** Resolves when `call` can take more data, or when the client went away (then nobody drains it). */
function writable(call: grpc.ServerWritableStream<Wire, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
    call.on("close", done);
    if (call.cancelled || call.destroyed) done();
  });
}

/** Streams the export, line by line, and stops when the client cancels (even while waiting to drain). */
async function exportLines(memory: MemoryClient, call: grpc.ServerWritableStream<Wire, unknown>, request: Wire) {
  const lines = memory.exportJsonl(defined({ conversationId: request.conversation_id as string | undefined }));
  for await (const line of lines) {
    if (call.cancelled) return;
    if (!call.write({ line })) await writable(call);
    if (call.cancelled) return;
  }
  call.end();
}

/** Imports the client's stream of text pieces as it arrives (the memory reads it line by line). */
function importStream(memory: MemoryClient, call: grpc.ServerReadableStream<Wire, unknown>) {
  const encoder = new TextEncoder();
  const pieces = (async function* () {
    for await (const message of call) yield encoder.encode((message as { jsonl?: string }).jsonl ?? "");
  })();
  return memory.importJsonl(ReadableStream.from(pieces));
}

function authorized(metadata: grpc.Metadata, token: string | null): boolean {
  if (token === null) return true;
  const header = metadata.get("authorization")[0];
  if (typeof header !== "string") return false;
  const match = /^Bearer\s+(.+)$/i.exec(header);
  return match !== null && tokensEqual(match[1].trim(), token);
}

const UNAUTHORIZED = new TabAgentError(
  "unauthorized",
  "The memory service needs 'authorization: Bearer <token>' metadata with this server's API token",
);

/**
 * Refuses a call without the token as soon as its metadata arrives: the request message (up to
 * {@link GRPC_MAX_MESSAGE_BYTES}) is then never read, let alone decoded.
 */
function requireToken(token: string | null): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, proceed) => {
            if (authorized(metadata, token)) proceed(metadata);
            else call.sendStatus(toGrpcError(UNAUTHORIZED) as grpc.StatusObject);
          },
        }),
    });
}

/** Every DatabaseService method over `memory`: the method table's unary calls, the export and import streams. */
function serviceImplementation(
  memory: MemoryClient,
  proto: ReturnType<typeof loadDatabaseProto>,
  log: Logger | undefined,
): grpc.UntypedServiceImplementation {
  /** Runs `work` and answers `callback` with its result on the wire, or with the gRPC status of its error. */
  const answer = async (
    name: string,
    responseType: string,
    callback: grpc.sendUnaryData<unknown>,
    work: () => Promise<unknown>,
  ) => {
    try {
      callback(null, proto.toWire(responseType, await work()));
    } catch (error) {
      const typed = toTabAgentError(error);
      if (typed.code === "internal") log?.error("memory rpc failed", { rpc: name, error: typed.cause ?? typed });
      callback(toGrpcError(typed));
    }
  };
  const handlers = unaryHandlers(memory);
  const implementation: grpc.UntypedServiceImplementation = {};
  const types = methodTypes(proto.service);
  for (const [name, method] of Object.entries(proto.service)) {
    const { request: requestType, response: responseType } = types.get(name)!;
    if (method.requestStream) {
      implementation[name] = (
        call: grpc.ServerReadableStream<Wire, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => answer(name, responseType, callback, () => importStream(memory, call));
    } else if (method.responseStream) {
      implementation[name] = async (call: grpc.ServerWritableStream<Wire, unknown>) => {
        try {
          await exportLines(memory, call, proto.fromWire(requestType, call.request, "input"));
        } catch (error) {
          call.destroy(Object.assign(new Error(), toGrpcError(toTabAgentError(error))));
        }
      };
    } else {
      const handler = handlers.get(name);
      if (!handler) throw new Error(`DatabaseService.${name} has no entry in MEMORY_METHODS`);
      implementation[name] = (call: grpc.ServerUnaryCall<Wire, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        answer(name, responseType, callback, () => handler(proto.fromWire(requestType, call.request, "input")));
    }
  }
  return implementation;
}

/**
 * Serves `memory` at `address` (`unix:/path.sock`, or `host:port` with port 0 for any free one).
 * Only loopback hosts are accepted for TCP: the service is for this machine.
 */
export async function serveDatabase(
  options: { memory: MemoryClient; address: string; token: string | null; log?: Logger },
): Promise<DatabaseServer> {
  const { memory, token, log } = options;
  const proto = loadDatabaseProto();
  const server = new grpc.Server({
    "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
    interceptors: [requireToken(token)],
  });
  server.addService(proto.service, serviceImplementation(memory, proto, log));

  const address = options.address;
  if (!address.startsWith("unix:")) {
    const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");
    if (!["127.0.0.1", "localhost", "::1"].includes(host)) {
      throw new TabAgentError("config_invalid", `The memory gRPC address ${address} is not loopback or unix:`);
    }
  } else {
    // A socket file left by a crashed run would make bind fail: it holds no data, so remove it.
    await Deno.remove(address.slice("unix:".length)).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) {
        reject(
          new TabAgentError("config_invalid", `The memory gRPC service cannot listen on ${address}: ${error.message}`, {
            address,
          }, { cause: error }),
        );
      } else resolve(port);
    });
  });
  if (address.startsWith("unix:")) await Deno.chmod(address.slice("unix:".length), 0o600);
  const bound = address.startsWith("unix:") ? address : `${address.slice(0, address.lastIndexOf(":"))}:${port}`;
  return {
    address: bound,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
