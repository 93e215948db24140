/**
 * The memory as a lifecycle component: opens (and migrates) the seven stores at start, refusing a
 * damaged, foreign or too-new file by name; runs the outbox and search workers; serves the gRPC
 * DatabaseService; and closes everything in `stop()`.
 */
import { type Config, ensureWritableDir } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import { type Component, type ComponentHealth, InstanceLock } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { MemoryClient } from "./client.ts";
import { type DatabaseServer, serveDatabase } from "./grpc_server.ts";
import { type LocalMemory, type MemoryEmbedder, openLocalMemory } from "./local.ts";
import { connectRemoteMemory, RemoteMemory } from "./remote.ts";

/** The settings the memory component reads. */
export type MemoryConfig = Pick<Config, "dbPath" | "memoryBackend" | "memoryGrpcAddress">;

/** How a database folder that cannot be written is named in the error. */
const DB_DIR = { what: "database directory", flags: "--db-path or --data-dir" };

/**
 * Search workers: one per core beyond the event loop's, between one and four, so searches never
 * take the core the event loop needs on small machines.
 */
const SEARCH_WORKERS = Math.max(1, Math.min(4, navigator.hardwareConcurrency - 1));

/**
 * The `memory` component. `memory` is usable as soon as the component exists (routes and other
 * components take it at construction); calls made before `start()` fail with `unavailable`.
 *
 * @example
 * ```ts
 * const memory = lifecycle.add(new MemoryComponent({ config, token, log }));
 * routers.push(memoryRoutes({ memory: memory.memory }));
 * ```
 */
export class MemoryComponent implements Component {
  readonly name = "memory";
  readonly critical = true;
  #local: LocalMemory | null = null;
  #server: DatabaseServer | null = null;
  #client: MemoryClient | null = null;
  readonly #options: { config: MemoryConfig; token: string | null; log: Logger; embed?: MemoryEmbedder };

  /** The client the rest of the server uses (local or gRPC, per `memoryBackend`). */
  readonly memory: MemoryClient;

  /** `embed` embeds memories (messages, facts, …) in the background and hybrid queries' text. */
  constructor(options: { config: MemoryConfig; token: string | null; log: Logger; embed?: MemoryEmbedder }) {
    this.#options = options;
    this.memory = new Proxy({} as MemoryClient, {
      get: (_target, property) => {
        const client = this.#client;
        if (!client) {
          return () => Promise.reject(new TabAgentError("unavailable", "Memory is not started yet"));
        }
        const value = (client as unknown as Record<PropertyKey, unknown>)[property];
        return typeof value === "function" ? value.bind(client) : value;
      },
    });
  }

  /** The DatabaseService address, once started. */
  get grpcAddress(): string | undefined {
    return this.#server?.address;
  }

  async start(): Promise<void> {
    const { config, token, log } = this.#options;
    await ensureWritableDir(config.dbPath, DB_DIR);
    this.#local = await openLocalMemory({
      dir: config.dbPath,
      searchWorkers: SEARCH_WORKERS,
      log,
      embed: this.#options.embed,
    });
    try {
      this.#server = await serveDatabase({ memory: this.#local, address: config.memoryGrpcAddress, token, log });
      this.#client = config.memoryBackend === "grpc"
        ? await connectRemoteMemory({ address: this.#server.address, token })
        : this.#local;
    } catch (error) {
      await this.stop();
      throw error;
    }
    log.info("memory ready", {
      db_path: config.dbPath,
      backend: config.memoryBackend,
      grpc_address: this.#server.address,
    });
  }

  async stop(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client && client !== this.#local) await client.close();
    await this.#server?.close();
    this.#server = null;
    await this.#local?.close();
    this.#local = null;
  }

  health(): ComponentHealth {
    if (!this.#client) return { state: "starting" };
    // The stores' own state: a restore that could not reopen them leaves memory failed, not "ready".
    return this.#local?.health ?? { state: "ready" };
  }
}

/** `close()` on the returned client also runs `release` (after the client is closed). */
function releasingOnClose(memory: MemoryClient, release: () => Promise<void>): MemoryClient {
  return new Proxy(memory, {
    get: (target, property) => {
      if (property === "close") {
        return async () => {
          try {
            await target.close();
          } finally {
            await release();
          }
        };
      }
      const value = (target as unknown as Record<PropertyKey, unknown>)[property];
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * A client for one-off commands (`tabagent backup`/`restore`): the running server's DatabaseService
 * when one answers at `memoryGrpcAddress` (so a live server is never bypassed), else the files
 * themselves, but only while holding the data dir's `server.lock`. A server that holds it and did
 * not answer (Windows and long socket paths use a TCP port the command cannot know; gRPC may be
 * slow) makes the command refuse: acting on a live server's files would swap them under it. The
 * lock is held until `close()`, so a server cannot start on the files meanwhile either.
 */
export async function openMemoryForCommand(
  config: MemoryConfig & Pick<Config, "dataDir">,
  token: string | null,
): Promise<{ memory: MemoryClient; via: "server" | "files" }> {
  if (config.memoryGrpcAddress.startsWith("unix:") || !config.memoryGrpcAddress.endsWith(":0")) {
    const remote = new RemoteMemory({ address: config.memoryGrpcAddress, token });
    try {
      await remote.ready(1_000);
      return { memory: remote, via: "server" };
    } catch (error) {
      if (!(error instanceof TabAgentError && error.code === "unavailable")) throw error;
      await remote.close();
    }
  }
  await ensureWritableDir(config.dataDir, { what: "data dir", flags: "--data-dir" });
  const lock = new InstanceLock(config.dataDir);
  try {
    await lock.start();
  } catch (error) {
    if (!(error instanceof TabAgentError && error.code === "conflict")) throw error;
    throw new TabAgentError(
      "conflict",
      `A TabAgent server is running on ${config.dataDir} (it holds server.lock) but its memory service did ` +
        `not answer at ${config.memoryGrpcAddress}; this command never touches a running server's files. ` +
        "Retry, pass the server's --memory-grpc-address, use POST /v1/memory/backup or /restore, or stop the server",
      { path: `${config.dataDir}/server.lock` },
      { cause: error },
    );
  }
  try {
    await ensureWritableDir(config.dbPath, DB_DIR);
    const memory = await openLocalMemory({ dir: config.dbPath, searchWorkers: 0, outbox: false, checkpoints: false });
    return { memory: releasingOnClose(memory, () => lock.stop()), via: "files" };
  } catch (error) {
    await lock.stop();
    throw error;
  }
}
