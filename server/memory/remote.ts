/**
 * {@link RemoteMemory}: the {@link MemoryClient} that talks to a `DatabaseService` over gRPC, so
 * memory can live in another process. Errors come back as the same TabAgentErrors the server threw.
 */
import * as grpc from "@grpc/grpc-js";
import type { z } from "zod";
import { TabAgentError } from "../errors/mod.ts";
import {
  type MemoryCalls,
  type MemoryClient,
  methodEntries,
  type MethodSpec,
  resultFromReply,
  type Wire,
} from "./client.ts";
import type { ImportSource } from "./_import.ts";
import type { ImportResult } from "./types.ts";
import { fromGrpcError, GRPC_MAX_MESSAGE_BYTES, loadDatabaseProto, methodTypes } from "./_proto.ts";

/** Largest piece of an import's text in one `ImportJsonl` message (characters). */
const IMPORT_PIECE_CHARS = 1 << 20;

/** `source` in pieces of at most {@link IMPORT_PIECE_CHARS} characters, as it is read. */
async function* importPieces(source: ImportSource): AsyncGenerator<string> {
  if (typeof source === "string") {
    for (let i = 0; i < source.length; i += IMPORT_PIECE_CHARS) yield source.slice(i, i + IMPORT_PIECE_CHARS);
    return;
  }
  const decoder = new TextDecoder();
  for await (const chunk of source) {
    const text = decoder.decode(chunk, { stream: true });
    for (let i = 0; i < text.length; i += IMPORT_PIECE_CHARS) yield text.slice(i, i + IMPORT_PIECE_CHARS);
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}

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

/** Every call of the method table, generated in the constructor. */
export interface RemoteMemory extends MemoryCalls {}

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

  /** Sends the import as a client stream of pieces of at most {@link IMPORT_PIECE_CHARS}, as they are read. */
  async importJsonl(source: ImportSource): Promise<ImportResult> {
    const reply = Promise.withResolvers<Wire>();
    const deadline = Date.now() + LONG_CALL_DEADLINE_MS;
    const call = (this.#client as unknown as {
      ImportJsonl: (
        metadata: grpc.Metadata,
        options: grpc.CallOptions,
        callback: (error: grpc.ServiceError | null, reply: Wire) => void,
      ) => grpc.ClientWritableStream<Wire>;
    }).ImportJsonl(this.#metadata, { deadline }, (error, message) => {
      if (error) reply.reject(fromGrpcError(error));
      else reply.resolve(message);
    });
    try {
      for await (const piece of importPieces(source)) {
        if (!call.write({ jsonl: piece })) await new Promise((resolve) => call.once("drain", resolve));
      }
      call.end();
    } catch (error) {
      call.cancel();
      reply.promise.catch(() => {/* the local error below is the one to report */});
      throw error;
    }
    return this.#proto.fromWire(
      this.#methods.get("ImportJsonl")!.response,
      await reply.promise,
      "output",
    ) as ImportResult;
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
