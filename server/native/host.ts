import { z } from "zod";
import { ERROR_CODES, TabAgentError, toTabAgentError, validationError } from "../errors/mod.ts";
import type { Component } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import { encodeReply, readFrames } from "./framing.ts";

const id = z.union([z.string().max(128), z.number().int()]);

/** The methods the relay forwards. */
export const RELAY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/** A request from the extension. */
export const NativeRequestSchema = z.discriminatedUnion("type", [
  z.object({ id: id.optional(), type: z.literal("ping") }),
  z.object({ id: id.optional(), type: z.literal("server_info") }),
  z.object({ id: id.optional(), type: z.literal("hello"), auto_start: z.boolean().optional() }),
  z.object({
    id,
    type: z.literal("request"),
    method: z.enum(RELAY_METHODS),
    // Only the server's own paths: no scheme, no authority (`//host`), no backslashes.
    path: z.string().min(1).max(8192).regex(/^\/(?!\/)[^\\\s]*$/, "must be an absolute path such as /v1/models"),
    headers: z.record(z.string().max(256), z.string().max(8192)).optional(),
    body: z.string().optional(),
  }),
  z.object({ id: id.optional(), type: z.literal("cancel"), target: id }),
]);
/** A parsed native request. */
export type NativeRequest = z.infer<typeof NativeRequestSchema>;

/** What the host tells the extension about the HTTP server. */
export interface ServerInfo {
  url: string;
  token: string | null;
  version: string;
}

/** Replies with a known body up to this size go out as one frame instead of head, data and end. */
const SINGLE_FRAME_BYTES = 256 * 1024;

/** Headers the relay never forwards: the host sets auth itself, and hop-by-hop ones mean nothing here. */
const DROPPED_HEADERS = new Set(["authorization", "host", "origin", "connection", "content-length", "cookie"]);

/** How the host finds, starts and reaches the server. */
export interface NativeHostOptions {
  input: ReadableStream<Uint8Array>;
  output: WritableStream<Uint8Array>;
  log: Logger;
  onEnd?: () => void;
  /** The running server, or null when none answers. */
  locate: () => Promise<ServerInfo | null>;
  /** Starts a server detached from the host; absent where the host cannot. */
  startServer?: () => Promise<{ exited: Promise<unknown> }>;
  /** The exact command a person runs to start the server. */
  startCommand: string;
  /** How long `hello` waits for a server it started (ms). */
  startTimeoutMs?: number;
  /** How often it looks while waiting (ms). */
  pollMs?: number;
}

/**
 * The native-messaging host (mode `native`): answers the extension's frames on stdin/stdout.
 * `hello` finds the running server (starting one when asked) and hands over its URL and token,
 * which a web page cannot learn; `request` relays HTTP to the server for an extension whose fetch
 * cannot reach loopback, streaming the body back as frames. Requests run concurrently; frames of
 * one request keep their order. Nothing but frames is ever written to `output`.
 */
export class NativeHost implements Component {
  readonly name = "native";
  readonly critical = true;
  #done?: Promise<void>;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;
  #inFlight = new Map<string, AbortController>();
  #tasks = new Set<Promise<void>>();
  #starting: Promise<{ exited: Promise<unknown> }> | null = null;

  constructor(private readonly options: NativeHostOptions) {}

  start(): Promise<void> {
    this.#done = this.#serve().finally(() => this.options.onEnd?.());
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await this.options.input.cancel().catch(() => {/* already closed by Chrome */});
    await this.#done;
  }

  async #send(message: { id?: string | number } & Record<string, unknown>): Promise<void> {
    for (const frame of encodeReply(message)) await this.#writer!.write(frame);
  }

  #errorReply(requestId: string | number | undefined, error: unknown) {
    const typed = toTabAgentError(error);
    if (typed.code === "internal") this.options.log.error("native request failed", { error });
    const command = typeof typed.extensions.command === "string" ? typed.extensions.command : undefined;
    return {
      id: requestId,
      ok: false,
      error: {
        code: typed.code,
        title: ERROR_CODES[typed.code].title,
        detail: typed.message,
        ...(command ? { command } : {}),
      },
    };
  }

  async #hello(requestId: string | number | undefined, autoStart: boolean): Promise<Record<string, unknown>> {
    let info = await this.options.locate();
    this.#relayTarget = info;
    let started = false;
    if (!info && autoStart && this.options.startServer) {
      await this.#send({ id: requestId, ok: true, progress: { state: "starting", detail: "Starting the server…" } });
      this.#starting ??= this.options.startServer();
      const { exited } = await this.#starting;
      let gone = false;
      const ended = () => {
        gone = true;
        this.#starting = null;
      };
      exited.then(ended, ended);
      const deadline = Date.now() + (this.options.startTimeoutMs ?? 60_000);
      // Until it answers, it exits (a port in use, a bad setting), or the deadline passes.
      while (!info && !gone && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, this.options.pollMs ?? 250));
        info = await this.options.locate();
      }
      started = info !== null;
      this.#relayTarget = info;
    }
    if (!info) {
      throw new TabAgentError(
        "unavailable",
        autoStart && this.options.startServer
          ? `The TabAgent server did not start; run '${this.options.startCommand}' in a terminal to see why`
          : `No TabAgent server is running; start it with '${this.options.startCommand}'`,
        { command: this.options.startCommand },
      );
    }
    return { id: requestId, ok: true, result: { ...info, started } };
  }

  /** The server relayed to: located once, again after `hello` or when it stops answering. */
  #relayTarget: ServerInfo | null = null;

  async #relay(request: Extract<NativeRequest, { type: "request" }>, retry = true): Promise<void> {
    const info = this.#relayTarget ??= await this.options.locate();
    if (!info) {
      throw new TabAgentError(
        "unavailable",
        `No TabAgent server is running; start it with '${this.options.startCommand}'`,
        {
          command: this.options.startCommand,
        },
      );
    }
    const url = new URL(request.path, info.url);
    if (url.origin !== new URL(info.url).origin) {
      throw new TabAgentError("bad_request", "The relay only reaches the server");
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (!DROPPED_HEADERS.has(name.toLowerCase())) headers.set(name, value);
    }
    if (info.token) headers.set("authorization", `Bearer ${info.token}`);
    const key = String(request.id);
    const controller = new AbortController();
    this.#inFlight.set(key, controller);
    try {
      let response: Response;
      try {
        response = await fetch(url, {
          method: request.method,
          headers,
          body: request.body !== undefined && request.method !== "GET" && request.method !== "HEAD"
            ? request.body
            : undefined,
          signal: controller.signal,
        });
      } catch (error) {
        // The server we knew is gone (restarted on another port?): look again, once.
        this.#relayTarget = null;
        if (retry && !controller.signal.aborted) {
          this.#inFlight.delete(key);
          return await this.#relay(request, false);
        }
        throw new TabAgentError("unavailable", `The TabAgent server did not answer: ${(error as Error).message}`, {
          command: this.options.startCommand,
        });
      }
      const responseHeaders: Record<string, string> = {};
      response.headers.forEach((value, name) => (responseHeaders[name] = value));
      const head = { status: response.status, headers: responseHeaders };
      const length = Number(response.headers.get("content-length") ?? NaN);
      if (length <= SINGLE_FRAME_BYTES && !responseHeaders["content-type"]?.startsWith("text/event-stream")) {
        // A small, complete body: head, body and end in one frame (one pipe write, one message in Chrome).
        return await this.#send({ id: request.id, ok: true, response: head, data: await response.text(), end: true });
      }
      await this.#send({ id: request.id, ok: true, response: head });
      if (response.body) {
        const text = response.body.pipeThrough(new TextDecoderStream());
        for await (const data of text) {
          if (data) await this.#send({ id: request.id, data });
        }
      }
      await this.#send({ id: request.id, end: true });
    } finally {
      this.#inFlight.delete(key);
    }
  }

  async #handle(value: unknown): Promise<void> {
    const requestId = typeof value === "object" && value !== null ? (value as { id?: unknown }).id : undefined;
    const replyId = typeof requestId === "string" || typeof requestId === "number" ? requestId : undefined;
    try {
      const parsed = NativeRequestSchema.safeParse(value);
      if (!parsed.success) throw validationError("native message", parsed.error.issues);
      const request = parsed.data;
      switch (request.type) {
        case "ping":
          return await this.#send({ id: request.id, ok: true, result: { pong: true } });
        case "server_info": {
          const info = await this.options.locate();
          if (!info) {
            throw new TabAgentError(
              "unavailable",
              `No TabAgent server is running; start it with '${this.options.startCommand}'`,
              {
                command: this.options.startCommand,
              },
            );
          }
          return await this.#send({ id: request.id, ok: true, result: info });
        }
        case "hello":
          return await this.#send(await this.#hello(request.id, request.auto_start ?? true));
        case "cancel":
          this.#inFlight.get(String(request.target))?.abort();
          return await this.#send({ id: request.id, ok: true, result: { cancelled: true } });
        case "request":
          return await this.#relay(request);
      }
    } catch (error) {
      await this.#send(this.#errorReply(replyId, error));
    }
  }

  async #serve(): Promise<void> {
    this.#writer = this.options.output.getWriter();
    try {
      for await (const frame of readFrames(this.options.input)) {
        if (!frame.ok) {
          await this.#send(this.#errorReply(undefined, frame.error));
          if (frame.fatal) break;
          continue;
        }
        const task = this.#handle(frame.value).catch((error) => {
          this.options.log.error("native reply failed", { error });
        });
        this.#tasks.add(task);
        task.finally(() => this.#tasks.delete(task));
      }
    } catch (error) {
      if (!(error instanceof TabAgentError)) this.options.log.error("native stream failed", { error });
    } finally {
      for (const controller of this.#inFlight.values()) controller.abort();
      await Promise.allSettled([...this.#tasks]);
      this.#writer.releaseLock();
    }
  }
}
