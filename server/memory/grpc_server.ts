/**
 * Serves a {@link MemoryClient} as the gRPC `DatabaseService` on loopback TCP or a Unix socket,
 * token-protected by the metadata `authorization: Bearer <token>`.
 */
import * as grpc from "@grpc/grpc-js";
import { tokensEqual } from "../auth/mod.ts";
import { TabAgentError, toTabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { MemoryClient } from "./client.ts";
import { GRPC_MAX_MESSAGE_BYTES, loadDatabaseProto, methodTypes, toGrpcError } from "./_proto.ts";
import type { EmbeddableKind, NewFeedback, PageOptions } from "./types.ts";

/** A running DatabaseService. */
export interface DatabaseServer {
  /** The address clients dial: `unix:/…/memory.sock` or `127.0.0.1:<port>`. */
  address: string;
  close(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
type Request = Record<string, any>;

function page(request: Request): PageOptions {
  const options: PageOptions = {};
  if (request.cursor !== undefined) options.cursor = request.cursor;
  if (request.limit !== undefined) options.limit = request.limit;
  return options;
}

function defined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Each unary RPC: what it asks of the memory, from the decoded request. */
function unaryHandlers(memory: MemoryClient): Record<string, (request: Request) => Promise<unknown>> {
  const empty = async (promise: Promise<unknown>) => (await promise, {});
  return {
    CreateConversation: (r) => memory.createConversation(r),
    GetConversation: (r) => memory.getConversation(r.id),
    ListConversations: (r) => memory.listConversations(page(r)),
    UpdateConversation: (r) =>
      memory.updateConversation(
        r.id,
        defined({ title: r.clear_title ? null : r.title, metadata: r.clear_metadata ? null : r.metadata }),
      ),
    DeleteConversation: (r) => empty(memory.deleteConversation(r.id)),
    AppendMessages: async (r) => ({ items: await memory.appendMessages(r.conversation_id, r.messages) }),
    GetMessage: (r) => memory.getMessage(r.id),
    ListMessages: (r) => memory.listMessages(r.parent_id, page(r)),
    SearchMessages: async (r) => ({
      hits: await memory.searchMessages(
        defined({ query: r.query, limit: r.limit, conversationId: r.conversation_id, match: r.match as never }),
      ),
    }),
    UpsertEntity: (r) => memory.upsertEntity(r as never),
    GetEntity: (r) => memory.getEntity(r.id),
    ListEntities: (r) => memory.listEntities(defined({ ...page(r), type: r.type })),
    AddRelation: (r) => memory.addRelation(r as never),
    ListRelations: (r) => memory.listRelations(r.parent_id, page(r)),
    AddFact: (r) => memory.addFact(r as never),
    GetFact: (r) => memory.getFact(r.id),
    ListFacts: (r) => memory.listFacts(defined({ ...page(r), entityId: r.parent_id })),
    DeleteFact: (r) => empty(memory.deleteFact(r.id)),
    SearchFacts: async (r) => ({ hits: await memory.searchFacts(defined({ query: r.query, limit: r.limit })) }),
    RecordToolResult: (r) => memory.recordToolResult(r as never),
    GetToolResult: (r) => memory.getToolResult(r.id),
    ListToolResults: (r) =>
      memory.listToolResults(defined({ ...page(r), conversationId: r.conversation_id, toolName: r.tool_name })),
    RecordEpisode: (r) => memory.recordEpisode(r as never),
    GetEpisode: (r) => memory.getEpisode(r.id),
    AddFeedback: (r) =>
      memory.addFeedback(r.episode_id, defined({ rating: r.rating, comment: r.comment }) as NewFeedback),
    ListEpisodes: (r) => memory.listEpisodes(page(r)),
    PutSummary: (r) => memory.putSummary(r as never),
    ListSummaries: (r) => memory.listSummaries(r.parent_id, page(r)),
    PutEmbedding: (r) => memory.putEmbedding(r as never),
    GetEmbedding: (r) => memory.getEmbedding(r.item_kind as EmbeddableKind, r.item_id, r.model),
    ListPendingEmbeddings: (r) => memory.listPendingEmbeddings(page(r)),
    Stats: () => memory.stats(),
    ImportJsonl: (r) => memory.importJsonl(r.jsonl),
    Backup: (r) => memory.backup(r.dir),
    Restore: (r) => memory.restore(r.dir),
    Flush: (_r) => empty(memory.flush()),
  };
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
  });
  const handlers = unaryHandlers(memory);
  const implementation: grpc.UntypedServiceImplementation = {};
  const types = methodTypes(proto.service);
  for (const [name, method] of Object.entries(proto.service)) {
    const { request: requestType, response: responseType } = types.get(name)!;
    if (method.responseStream) {
      implementation[name] = async (call: grpc.ServerWritableStream<Request, unknown>) => {
        try {
          if (!authorized(call.metadata, token)) throw UNAUTHORIZED;
          const request = proto.fromWire(requestType, call.request, "input");
          for await (
            const line of memory.exportJsonl(defined({ conversationId: request.conversation_id as string | undefined }))
          ) {
            if (call.cancelled) return;
            if (!call.write({ line })) await new Promise((resolve) => call.once("drain", resolve));
          }
          call.end();
        } catch (error) {
          call.destroy(Object.assign(new Error(), toGrpcError(toTabAgentError(error))));
        }
      };
      continue;
    }
    const handler = handlers[name];
    if (!handler) throw new Error(`DatabaseService.${name} has no handler`);
    implementation[name] = async (
      call: grpc.ServerUnaryCall<Request, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      try {
        if (!authorized(call.metadata, token)) throw UNAUTHORIZED;
        const result = await handler(proto.fromWire(requestType, call.request, "input"));
        callback(null, proto.toWire(responseType, result));
      } catch (error) {
        const typed = toTabAgentError(error);
        if (typed.code === "internal") log?.error("memory rpc failed", { rpc: name, error: typed.cause ?? typed });
        callback(toGrpcError(typed));
      }
    };
  }
  server.addService(proto.service, implementation);

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
