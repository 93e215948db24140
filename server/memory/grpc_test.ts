import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { memoryClientSuite } from "./testing/client_suite.ts";
import type { MemoryClient } from "./client.ts";
import { serveDatabase } from "./grpc_server.ts";
import { GRPC_MAX_MESSAGE_BYTES, SERVICE_NAME } from "./_proto.ts";
import { openLocalMemory } from "./local.ts";
import { connectRemoteMemory, RemoteMemory } from "./remote.ts";
import { TabAgentError } from "../errors/mod.ts";

const TOKEN = "test-token-0123456789abcdefghijklmnopqrstuvwxyz";

/** A RemoteMemory over a real Unix socket to a DatabaseService serving a LocalMemory in `dir`. */
async function openRemote(dir: string, address = `unix:${dir}.sock`): Promise<MemoryClient> {
  const local = await openLocalMemory({ dir });
  const server = await serveDatabase({ memory: local, address, token: TOKEN });
  const remote = await connectRemoteMemory({ address: server.address, token: TOKEN });
  const close = remote.close.bind(remote);
  remote.close = async () => {
    await close();
    await server.close();
    await local.close();
  };
  return remote;
}

memoryClientSuite("RemoteMemory (gRPC)", (dir) => openRemote(dir));

Deno.test("RemoteMemory (gRPC): works over loopback TCP and refuses calls without the token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-grpc-" });
  const local = await openLocalMemory({ dir: `${dir}/db` });
  const server = await serveDatabase({ memory: local, address: "127.0.0.1:0", token: TOKEN });
  try {
    const remote = await connectRemoteMemory({ address: server.address, token: TOKEN });
    const conversation = await remote.createConversation({ title: "tcp" });
    assert.deepEqual((await local.getConversation(conversation.id)).title, "tcp");
    await remote.close();

    for (const token of [null, "wrong-token"]) {
      const stranger = await connectRemoteMemory({ address: server.address, token });
      const error = await stranger.getConversation(conversation.id).then(() => assert.fail("refused"), (e) => e);
      assert.ok(error instanceof TabAgentError);
      assert.deepEqual(error.code, "unauthorized");
      await stranger.close();
    }
    await assert.rejects(serveDatabase({ memory: local, address: "0.0.0.0:0", token: TOKEN }), TabAgentError);
  } finally {
    await server.close();
    await local.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RemoteMemory (gRPC): an unreachable service is 'unavailable'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-grpc-" });
  try {
    const remote = new RemoteMemory({ address: `unix:${dir}/none.sock`, token: TOKEN });
    const error = await remote.ready(300).then(() => assert.fail("unreachable"), (e) => e);
    assert.ok(error instanceof TabAgentError);
    assert.deepEqual(error.code, "unavailable");
    await remote.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RemoteMemory (gRPC): a call without the token is refused before its message is decoded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-grpc-" });
  const local = await openLocalMemory({ dir: `${dir}/db`, searchWorkers: 0 });
  const server = await serveDatabase({ memory: local, address: `unix:${dir}/memory.sock`, token: TOKEN });
  const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  try {
    // A message over the size limit: a server that reads it before checking the token answers
    // RESOURCE_EXHAUSTED (and would decode up to 80 MiB for anyone who can reach the socket).
    const oversized = Buffer.alloc(GRPC_MAX_MESSAGE_BYTES + 1);
    for (const metadata of [new grpc.Metadata(), withToken("wrong-token")]) {
      const status = await new Promise<grpc.ServiceError | null>((resolve) => {
        client.makeUnaryRequest(
          `/${SERVICE_NAME}/ImportJsonl`,
          () => oversized,
          (reply: Buffer) => reply,
          undefined,
          metadata,
          (error) => resolve(error),
        );
      });
      assert.deepEqual(status?.code, grpc.status.UNAUTHENTICATED);
    }
  } finally {
    client.close();
    await server.close();
    await local.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RemoteMemory (gRPC): an export the client cancels while the server waits to drain ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-grpc-" });
  const local = await openLocalMemory({ dir: `${dir}/db`, searchWorkers: 0 });
  // Lines far larger than HTTP/2's flow-control window, so the server soon waits for 'drain'.
  const line = JSON.stringify({ record: "padding", text: "x".repeat(256 * 1024) });
  const ended = Promise.withResolvers<void>();
  const memory = Object.create(local, {
    exportJsonl: {
      value: async function* () {
        try {
          for (let i = 0; i < 1000; i++) yield line;
        } finally {
          ended.resolve();
        }
      },
    },
  }) as MemoryClient;
  const server = await serveDatabase({ memory, address: `unix:${dir}/memory.sock`, token: TOKEN });
  const remote = await connectRemoteMemory({ address: server.address, token: TOKEN });
  try {
    for await (const _ of remote.exportJsonl()) break; // one line read, then the stream is cancelled
    // Before the fix the server's export waited for a 'drain' that never comes; the guard names that hang.
    let guard: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<string>((resolve) => guard = setTimeout(() => resolve("hung"), 20_000));
    assert.deepEqual(await Promise.race([ended.promise.then(() => "ended"), hung]), "ended");
    clearTimeout(guard);
  } finally {
    await remote.close();
    await server.close();
    await local.close();
    await Deno.remove(dir, { recursive: true });
  }
});

function withToken(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

Deno.test("RemoteMemory (gRPC): an import goes as a client stream; pieces split inside lines; a bad line is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-grpc-" });
  const remote = await openRemote(`${dir}/db`);
  try {
    const created_at = "2026-01-01T00:00:00.000Z";
    const line = (i: number) =>
      JSON.stringify({
        record: "conversation",
        id: `conv-${i}`,
        title: `imported ${i} `.repeat(40), // about 600 bytes a line: 3 MiB cross the 1 MiB pieces mid-line
        metadata: null,
        created_at,
        updated_at: created_at,
      });
    const count = 5_000;
    const bytes = new TextEncoder().encode(Array.from({ length: count }, (_, i) => line(i)).join("\n"));
    const chunks = (data: Uint8Array) =>
      ReadableStream.from((function* () {
        for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
      })());
    const bad = new TextEncoder().encode(`${line(count)}\n{"record":"conversation"\n${line(count + 1)}`);
    const error = await remote.importJsonl(chunks(bad)).then(() => assert.fail("refused"), (e) => e);
    assert.ok(error instanceof TabAgentError);
    assert.equal(error.code, "validation_failed");
    assert.match(error.message, /line 2\b/);
    const result = await remote.importJsonl(chunks(bytes));
    assert.deepEqual(result, { imported: { conversation: count }, skipped: {} });
    assert.equal((await remote.stats()).conversations, count);
  } finally {
    await remote.close();
    await Deno.remove(dir, { recursive: true });
  }
});
