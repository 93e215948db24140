/**
 * {@link RemoteMemory}: the {@link MemoryClient} that talks to a `DatabaseService` over gRPC, so
 * memory can live in another process. Errors come back as the same TabAgentErrors the server threw.
 */
import * as grpc from "@grpc/grpc-js";
import type { z } from "zod";
import { TabAgentError } from "../errors/mod.ts";
import {
  MEMORY_METHODS,
  type MemoryCalls,
  type MemoryClient,
  methodEntries,
  type MethodSpec,
  resultFromReply,
  type Wire,
} from "./client.ts";
import { type ImportSource, importText } from "./_import.ts";
import type { ImportResult } from "./types.ts";
import { fromGrpcError, GRPC_MAX_MESSAGE_BYTES, loadDatabaseProto, methodTypes } from "./_proto.ts";

/** Time one call may take before it fails with `timeout` (ms); backups and restores get longer. */
const CALL_DEADLINE_MS = 60_000;
const LONG_CALL_DEADLINE_MS = 30 * 60_000;

/** Options for {@link connectRemoteMemory}. */
export interface RemoteMemoryOptions {
  /** `unix:/path/memory.sock` or `127.0.0.1:<port>`. */
  address: string;
  /** The server's API token; null when it runs with --no-auth. */
  token: string | null;
}

/** Connects to the DatabaseService at `options.address` and waits until the channel is ready. */
export async function connectRemoteMemory(options: RemoteMemoryOptions): Promise<RemoteMemory> {
  const memory = new RemoteMemory(options);
  await memory.ready();
  return memory;
}

/** Every call of the method table, generated in the constructor (`importJsonl` is a method below). */
export interface RemoteMemory extends Omit<MemoryCalls, "importJsonl"> {}

/**
 * The gRPC {@link MemoryClient}: each call of `MEMORY_METHODS` (client.ts) becomes its RPC.
 *
 * @example
 * ```ts
 * const memory = await connectRemoteMemory({ address: "unix:/tmp/memory.sock", token });
 * const c = await memory.createConversation({ title: "remote" });
 * await memory.close();
 * ```
 */
export class RemoteMemory implements MemoryClient {
  #client: grpc.Client;
  #proto = loadDatabaseProto();
  #metadata = new grpc.Metadata();
  #methods: Map<string, { request: string; response: string }>;

  constructor(options: RemoteMemoryOptions) {
    this.#client = new this.#proto.Client(options.address, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
    });
    if (options.token !== null) this.#metadata.set("authorization", `Bearer ${options.token}`);
    this.#methods = methodTypes(this.#proto.service);
    for (const [name, spec] of methodEntries()) {
      if (name === "importJsonl") continue;
      const call = (...args: unknown[]) => this.#call(spec, args);
      Object.defineProperty(this, name, { value: call, writable: true, configurable: true });
    }
  }

  /** Resolves once connected; fails with `unavailable` after `timeoutMs`. */
  ready(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (error) => {
        if (error) reject(new TabAgentError("unavailable", `Memory service unreachable: ${error.message}`));
        else resolve();
      });
    });
  }

  async #call(spec: MethodSpec<unknown[], z.ZodType>, args: unknown[]): Promise<unknown> {
    const method = this.#methods.get(spec.rpc)!;
    const wire = this.#proto.toWire(method.request, spec.request(...args));
    const deadline = Date.now() + (spec.long ? LONG_CALL_DEADLINE_MS : CALL_DEADLINE_MS);
    const reply = await new Promise<Wire>((resolve, reject) => {
      this.#rpc(spec.rpc)(wire, this.#metadata, { deadline }, (error: grpc.ServiceError | null, reply: Wire) => {
        if (error) reject(fromGrpcError(error));
        else resolve(this.#proto.fromWire(method.response, reply, "output"));
      });
    });
    return resultFromReply(spec, reply);
  }

  /** The grpc-js client's generated method for `rpc` (its methods are not typed: proto-loader loads them). */
  #rpc(rpc: string): (...args: unknown[]) => grpc.ClientReadableStream<Wire> {
    const fn =
      (this.#client as unknown as Record<string, (...args: unknown[]) => grpc.ClientReadableStream<Wire>>)[rpc];
    return fn.bind(this.#client);
  }

  /** The unary ImportJsonl RPC carries the whole text: a stream is read first, within the import limit. */
  async importJsonl(source: ImportSource): Promise<ImportResult> {
    const text = typeof source === "string" ? source : await importText(source);
    return await this.#call(MEMORY_METHODS.importJsonl as MethodSpec<unknown[], z.ZodType>, [text]) as ImportResult;
  }

  async *exportJsonl(options: { conversationId?: string } = {}): AsyncIterable<string> {
    const wire = this.#proto.toWire("ExportRequest", { conversation_id: options.conversationId });
    const stream = this.#rpc("ExportJsonl")(wire, this.#metadata);
    try {
      for await (const message of stream) yield (message as { line: string }).line;
    } catch (error) {
      throw fromGrpcError(error as grpc.ServiceError);
    } finally {
      stream.cancel();
    }
  }

  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
  }
}
