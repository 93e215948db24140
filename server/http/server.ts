import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Component } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { HttpEnv } from "./router.ts";

/** The HTTP listener as a lifecycle component. */
export class HttpServer implements Component {
  readonly name = "http";
  readonly critical = true;
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #abort = new AbortController();

  constructor(
    private readonly options: { app: OpenAPIHono<HttpEnv>; host: string; port: number; log: Logger },
  ) {}

  /** Aborted when the server begins to stop: long-lived responses (SSE) end on it. */
  get shutdownSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** The bound address, once started (port 0 picks a free one). */
  get url(): string {
    if (!this.#server) throw new Error("http server not started");
    const { hostname, port } = this.#server.addr;
    return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  }

  async start(): Promise<void> {
    const { app, host, port, log } = this.options;
    const listening = Promise.withResolvers<void>();
    try {
      this.#server = Deno.serve({
        hostname: host,
        port,
        onListen: () => listening.resolve(),
        onError: (error) => {
          log.error("unhandled http error", { error });
          return new Response("internal error", { status: 500 });
        },
      }, app.fetch);
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) {
        throw new Error(`Port ${port} on ${host} is already in use; pick another with --port`, { cause: error });
      }
      throw error;
    }
    await listening.promise;
    log.info("listening", { url: this.url });
  }

  async stop(): Promise<void> {
    this.#abort.abort(new DOMException("server stopping", "AbortError"));
    await this.#server?.shutdown();
  }
}
