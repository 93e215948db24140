/**
 * Starts the real server as a child process on a free loopback port, for end-to-end tests and
 * benchmarks. It reads the `ready` log line (every component started) to learn the URL, and the token from the data dir.
 *
 * @example
 * ```ts
 * await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
 * const res = await fetch(`${server.url}/v1/health`);
 * ```
 * @module
 */

import { SERVER_V8_FLAGS } from "../server/config/mod.ts";

const MAIN = new URL("../server/main.ts", import.meta.url);
const CONFIG = new URL("../deno.json", import.meta.url);

/** A running server process. */
export interface TestServer extends AsyncDisposable {
  url: string;
  token: string;
  dataDir: string;
  process: Deno.ChildProcess;
  /** Every stderr line so far (JSON logs). */
  logs: string[];
  /** Resolves with the first log record (already logged or still to come) that `matches`; rejects if the server exits first. */
  logged(matches: (record: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** `Authorization` header for the token. */
  auth: { authorization: string };
  /** Sends `signal` and waits for exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Options for {@link startServer}. */
export interface StartServerOptions {
  /** Extra `serve` arguments (`--port 0` and `--data-dir` are added unless given). The log level must stay
   * `info` or lower: the `ready` line is how the URL is learned. */
  args?: string[];
  /** Data dir to use; a fresh temp dir by default (removed on dispose). */
  dataDir?: string;
  env?: Record<string, string>;
  /** How long to wait for `ready` (ms). */
  timeoutMs?: number;
}

/** Spawns `server/main.ts serve` and waits until it listens. */
export async function startServer(options: StartServerOptions = {}): Promise<TestServer> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "tabagent-test-" });
  const args = [...(options.args ?? [])];
  if (!args.includes("--port")) args.push("--port", "0");
  if (!args.includes("--data-dir")) args.push("--data-dir", dataDir);
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--v8-flags=${Deno.env.get("TABAGENT_TEST_V8_FLAGS") ?? SERVER_V8_FLAGS}`,
      "--config",
      CONFIG.pathname,
      MAIN.pathname,
      "serve",
      ...args,
    ],
    env: { TABAGENT_LOG_LEVEL: "info", ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  const records: Record<string, unknown>[] = [];
  const waiters = new Set<
    { matches: (record: Record<string, unknown>) => boolean; resolve: (r: Record<string, unknown>) => void }
  >();
  const listening = Promise.withResolvers<string>();
  const exited = process.status;
  (async () => {
    const decoder = new TextDecoderStream();
    let rest = "";
    for await (const chunk of process.stderr.pipeThrough(decoder)) {
      rest += chunk;
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        logs.push(line);
        if (Deno.env.get("TABAGENT_TEST_LOGS")) console.error(line);
        try {
          const record = JSON.parse(line);
          // `ready` comes after every component started; `listening` only after HTTP did, so a
          // request sent on `listening` could meet a component still starting (503 from health).
          if (record.msg === "ready" && typeof record.url === "string") listening.resolve(record.url);
          records.push(record);
          for (const waiter of waiters) {
            if (waiter.matches(record)) {
              waiters.delete(waiter);
              waiter.resolve(record);
            }
          }
        } catch {
          // not a JSON log line (e.g. a crash trace): kept in `logs` for the failure message
        }
      }
    }
  })();
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await Promise.race([
    listening.promise,
    exited.then((s) => {
      throw new Error(`server exited with ${s.code} before listening:\n${logs.join("\n")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`server not listening after ${timeoutMs} ms:\n${logs.join("\n")}`)),
        timeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  let token = "";
  try {
    token = (await Deno.readTextFile(`${dataDir}/api_token`)).trim();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // --no-auth: no token file
  }
  let stopped: Promise<number> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        process.kill(signal);
      } catch (error) {
        if (!(error instanceof TypeError)) throw error; // already exited
      }
      return (await exited).code;
    })();
    return stopped;
  };
  const logged = (matches: (record: Record<string, unknown>) => boolean) => {
    const found = records.find(matches);
    if (found) return Promise.resolve(found);
    const waiter = { matches, ...Promise.withResolvers<Record<string, unknown>>() };
    waiters.add(waiter);
    exited.then(() =>
      waiter.reject(new Error(`the server exited before logging what was awaited:\n${logs.join("\n")}`))
    );
    return waiter.promise;
  };
  return {
    url,
    token,
    dataDir,
    process,
    logs,
    logged,
    auth: { authorization: `Bearer ${token}` },
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
      if (ownDataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs `tabagent <args>` (not a server) to completion: exit code and both outputs as text. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG.pathname, MAIN.pathname, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}
