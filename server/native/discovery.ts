/**
 * Where a running server listens, for the native host to find: `<dataDir>/server.json` (0600)
 * holding the URL (any port, `::1` too), pid, version and start time. Written once the HTTP server
 * listens, removed on a clean stop, and treated as stale when its pid is gone.
 */
import { z } from "zod";
import type { Component } from "../lifecycle/mod.ts";

/** The discovery file's name in the data dir. */
export const SERVER_RECORD_FILE = "server.json";

/** What the discovery file holds. */
export const ServerRecordSchema = z.object({
  url: z.string().url(),
  pid: z.number().int().positive(),
  version: z.string(),
  mode: z.string(),
  started_at: z.string(),
});
/** A server's record. */
export type ServerRecord = z.infer<typeof ServerRecordSchema>;

/** True while a process with `pid` exists (on Linux by /proc; elsewhere by signalling it nothing harmful). */
export function pidAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  if (Deno.build.os === "linux") {
    try {
      Deno.statSync(`/proc/${pid}`);
      return true;
    } catch {
      return false;
    }
  }
  try {
    // SIGCONT does nothing to a running process; it throws when there is no such process.
    Deno.kill(pid, Deno.build.os === "windows" ? "SIGINT" : "SIGCONT");
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound) && !(error instanceof TypeError);
  }
}

/** Reads the record; null when absent, unreadable, or left behind by a process that is gone. */
export async function readServerRecord(dataDir: string): Promise<ServerRecord | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dataDir}/${SERVER_RECORD_FILE}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null; // a torn or foreign file is as good as none; the next server rewrites it
  }
  const parsed = ServerRecordSchema.safeParse(json);
  if (!parsed.success || !pidAlive(parsed.data.pid)) return null;
  return parsed.data;
}

/** The URL a client on this machine uses for a server listening at `url` (a wildcard bind becomes loopback). */
export function clientUrl(url: string): string {
  return url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:");
}

/** The component that writes the record after the HTTP server starts and removes it on stop. */
export class ServerRecordComponent implements Component {
  readonly name = "server-record";
  readonly critical = false;
  #path: string;

  constructor(
    private readonly options: { dataDir: string; url: () => string | undefined; version: string; mode: string },
  ) {
    this.#path = `${options.dataDir}/${SERVER_RECORD_FILE}`;
  }

  async start(): Promise<void> {
    const url = this.options.url();
    if (!url) return;
    const record: ServerRecord = {
      url: clientUrl(url),
      pid: Deno.pid,
      version: this.options.version,
      mode: this.options.mode,
      started_at: new Date().toISOString(),
    };
    const temp = `${this.#path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(temp, JSON.stringify(record) + "\n", { mode: 0o600 });
    await Deno.rename(temp, this.#path);
  }

  async stop(): Promise<void> {
    // Only our own record: a second server may have replaced it.
    const current = await Deno.readTextFile(this.#path).catch(() => "");
    try {
      if (JSON.parse(current || "{}").pid !== Deno.pid) return;
    } catch {
      return;
    }
    await Deno.remove(this.#path).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

/**
 * The server this data dir's record names, if it answers `/v1/health` within `timeoutMs`. A record
 * whose server does not answer (hung, or a reused pid) counts as none.
 */
export async function locateServer(
  dataDir: string,
  options: { timeoutMs?: number } = {},
): Promise<ServerRecord | null> {
  const record = await readServerRecord(dataDir);
  if (!record) return null;
  try {
    const response = await fetch(`${record.url}/v1/health`, {
      signal: AbortSignal.timeout(options.timeoutMs ?? 3000),
    });
    await response.body?.cancel();
    return response.status < 500 || response.status === 503 ? record : null;
  } catch {
    return null; // not answering: treated as not running
  }
}

/**
 * Starts `command` detached from this process (its own session where `setsid` exists, so Chrome
 * closing the host does not take the server down), appending its output to `logPath`. Resolves
 * once it is spawned; `exited` settles if the server stops (e.g. it could not bind its port).
 */
export async function spawnDetached(command: string[], logPath: string): Promise<{ exited: Promise<unknown> }> {
  if (Deno.build.os === "windows") {
    const child = new Deno.Command(command[0], {
      args: command.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    return { exited: child.status };
  }
  const setsid = await Deno.stat("/usr/bin/setsid").then(() => ["/usr/bin/setsid"], () => [] as string[]);
  const script = 'log="$1"; shift; exec "$@" </dev/null >>"$log" 2>&1';
  const argv = [...setsid, "/bin/sh", "-c", script, "sh", logPath, ...command];
  const child = new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  child.unref();
  return { exited: child.status };
}
