import { z } from "zod";
import { ERROR_CODES, TabAgentError, toTabAgentError, validationError } from "../errors/mod.ts";
import type { Component } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import { encodeFrame, readFrames } from "./framing.ts";

/** A request from the extension. */
export const NativeRequestSchema = z.object({
  id: z.union([z.string().max(128), z.number().int()]).optional(),
  type: z.enum(["ping", "server_info"]),
});
/** A parsed native request. */
export type NativeRequest = z.infer<typeof NativeRequestSchema>;

/** What the host tells the extension about the HTTP server. */
export interface ServerInfo {
  url: string;
  token: string | null;
  version: string;
}

/**
 * The native-messaging host (mode `native`): answers the extension's frames on stdin/stdout.
 * Its main job is to hand the extension the server's URL and API token, which a web page cannot
 * learn. When Chrome closes stdin the host stops, and `onEnd` lets the process exit.
 */
export class NativeHost implements Component {
  readonly name = "native";
  readonly critical = true;
  #done?: Promise<void>;

  constructor(
    private readonly options: {
      input: ReadableStream<Uint8Array>;
      output: WritableStream<Uint8Array>;
      serverInfo: () => Promise<ServerInfo>;
      log: Logger;
      onEnd?: () => void;
    },
  ) {}

  start(): Promise<void> {
    this.#done = this.#serve().finally(() => this.options.onEnd?.());
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await this.options.input.cancel().catch(() => {/* already closed by Chrome */});
    await this.#done;
  }

  async #handle(value: unknown): Promise<unknown> {
    const parsed = NativeRequestSchema.safeParse(value);
    if (!parsed.success) throw validationError("native message", parsed.error.issues);
    const request = parsed.data;
    switch (request.type) {
      case "ping":
        return { id: request.id, ok: true, result: { pong: true } };
      case "server_info":
        return { id: request.id, ok: true, result: await this.options.serverInfo() };
    }
  }

  async #serve(): Promise<void> {
    const writer = this.options.output.getWriter();
    try {
      for await (const frame of readFrames(this.options.input)) {
        let reply: unknown;
        try {
          if (!frame.ok) throw frame.error;
          reply = await this.#handle(frame.value);
        } catch (error) {
          const typed = toTabAgentError(error);
          const id = frame.ok && typeof frame.value === "object" && frame.value !== null
            ? (frame.value as { id?: unknown }).id
            : undefined;
          reply = {
            id: typeof id === "string" || typeof id === "number" ? id : undefined,
            ok: false,
            error: { code: typed.code, title: ERROR_CODES[typed.code].title, detail: typed.message },
          };
          if (typed.code === "internal") this.options.log.error("native request failed", { error });
        }
        await writer.write(encodeFrame(reply));
      }
    } catch (error) {
      if (!(error instanceof TabAgentError)) this.options.log.error("native stream failed", { error });
    } finally {
      writer.releaseLock();
    }
  }
}
