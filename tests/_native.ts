/**
 * Drives the real native-messaging host process over pipes, as Chrome does: `tabagent
 * <origin> --data-dir D` with 4-byte little-endian length-prefixed JSON on stdin/stdout.
 *
 * @example
 * ```ts
 * await using host = spawnHost({ dataDir });
 * const reply = await host.call({ type: "ping" });
 * ```
 * @module
 */
import { SERVER_V8_FLAGS } from "../server/config/mod.ts";

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** A running host process. */
export interface HostProcess extends AsyncDisposable {
  process: Deno.ChildProcess;
  /** Writes raw bytes to the host's stdin. */
  writeRaw(bytes: Uint8Array): Promise<void>;
  /** Writes one frame. */
  send(message: unknown): Promise<void>;
  /** The next frame the host wrote (parsed). */
  next(): Promise<Record<string, unknown>>;
  /** Sends a request with a fresh id and collects its frames until the last one. */
  call(message: Record<string, unknown>): Promise<Record<string, unknown>[]>;
  /** Every stdout byte so far, for checking nothing but frames was written. */
  stdoutBytes(): number;
  /** Bytes of stdout that parsed as frames. */
  framedBytes(): number;
  /** Closes stdin and waits for the exit code. */
  close(): Promise<number>;
  stderr(): string;
}

/**
 * The server's discovery record (`server.json`), waited for: the server writes it just after it
 * logs `listening`, which is when `startServer` returns.
 */
export async function waitForServerRecord(dataDir: string): Promise<{ url: string; pid: number }> {
  // Watching before the first read: a record written in between is still an event.
  using watcher = Deno.watchFs(dataDir, { recursive: false });
  const changes = watcher[Symbol.asyncIterator]();
  for (;;) {
    try {
      return JSON.parse(await Deno.readTextFile(`${dataDir}/server.json`));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound || error instanceof SyntaxError)) throw error;
    }
    if ((await changes.next()).done) throw new Error(`stopped watching ${dataDir} before server.json appeared`);
  }
}

/** Frame encoding, as Chrome writes it. */
export function frame(message: unknown): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength, true);
  out.set(body, 4);
  return out;
}

/** Starts the host for `dataDir` the way Chrome's launcher does. */
export function spawnHost(options: { dataDir: string; env?: Record<string, string> }): HostProcess {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--v8-flags=${SERVER_V8_FLAGS}`,
      "--config",
      CONFIG,
      MAIN,
      "chrome-extension://elgmcgkdbcjcidkoghpbchchoenbofnl/",
      "--data-dir",
      options.dataDir,
    ],
    env: { TABAGENT_LOG_LEVEL: "warn", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = process.stdin.getWriter();
  const frames: Record<string, unknown>[] = [];
  const waiters: ((frame: Record<string, unknown>) => void)[] = [];
  let total = 0;
  let framed = 0;
  let stderrText = "";
  let nextId = 1;
  (async () => {
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) stderrText += chunk;
  })();
  const reading = (async () => {
    let buffer = new Uint8Array(0);
    for await (const chunk of process.stdout) {
      total += chunk.byteLength;
      const joined = new Uint8Array(buffer.byteLength + chunk.byteLength);
      joined.set(buffer);
      joined.set(chunk, buffer.byteLength);
      buffer = joined;
      while (buffer.byteLength >= 4) {
        const length = new DataView(buffer.buffer, buffer.byteOffset, 4).getUint32(0, true);
        if (buffer.byteLength < 4 + length) break;
        const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(4, 4 + length)));
        framed += 4 + length;
        buffer = buffer.slice(4 + length);
        const waiter = waiters.shift();
        if (waiter) waiter(parsed);
        else frames.push(parsed);
      }
    }
  })();
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      const ready = frames.shift();
      if (ready) resolve(ready);
      else waiters.push(resolve);
    });
  const host: HostProcess = {
    process,
    writeRaw: (bytes) => writer.write(bytes),
    send: (message) => writer.write(frame(message)),
    next,
    async call(message) {
      const id = `t${nextId++}`;
      await writer.write(frame({ ...message, id }));
      const out: Record<string, unknown>[] = [];
      while (true) {
        const reply = await next();
        if (reply.id !== id) throw new Error(`unexpected frame ${JSON.stringify(reply).slice(0, 200)}`);
        out.push(reply);
        if (reply.end === true || reply.ok === false || (reply.ok === true && !reply.progress && !reply.response)) {
          return out;
        }
      }
    },
    stdoutBytes: () => total,
    framedBytes: () => framed,
    async close() {
      await writer.close().catch(() => {});
      const status = await process.status;
      await reading;
      return status.code;
    },
    stderr: () => stderrText,
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      try {
        process.kill("SIGTERM");
      } catch { /* exited */ }
      await process.status;
    },
  };
  return host;
}
