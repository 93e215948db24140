import { assertEquals, assertRejects } from "./_assert.ts";
import { memoryClientSuite } from "./_client_suite.ts";
import type { MemoryClient } from "./client.ts";
import { serveDatabase } from "./grpc_server.ts";
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
    assertEquals((await local.getConversation(conversation.id)).title, "tcp");
    await remote.close();

    for (const token of [null, "wrong-token"]) {
      const stranger = await connectRemoteMemory({ address: server.address, token });
      const error = await assertRejects(() => stranger.getConversation(conversation.id), TabAgentError);
      assertEquals(error.code, "unauthorized");
      await stranger.close();
    }
    await assertRejects(
      () => serveDatabase({ memory: local, address: "0.0.0.0:0", token: TOKEN }),
      TabAgentError,
    );
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
    const error = await assertRejects(() => remote.ready(300), TabAgentError);
    assertEquals(error.code, "unavailable");
    await remote.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
