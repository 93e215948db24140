/**
 * ML workers: a {@link LocalWorker} is a supervised child process (`python -m tabagent_ml`), a
 * {@link RemoteWorker} a service someone else runs (`--ml-worker host:port`). Both expose a
 * {@link MlClient} while ready, and their state for health, doctor and dispatch.
 *
 * Supervision: ready once grpc.health.v1 answers SERVING; after a crash, restart with exponential
 * backoff and full jitter; after {@link BREAKER_CRASHES} crashes within {@link BREAKER_WINDOW_MS}
 * the breaker opens (state `broken`) and one retry is made after {@link BREAKER_COOLDOWN_MS}.
 * Stop: SIGTERM, then SIGKILL after the grace. No orphans: the child's stdin is a pipe the server
 * holds (`--lifeline stdin`); when the server dies, even by SIGKILL, the pipe closes and Python exits.
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { MlClient } from "./client.ts";
import {
  BREAKER_COOLDOWN_MS,
  BREAKER_CRASHES,
  BREAKER_WINDOW_MS,
  type MlWorker,
  PROBE_FAILURES,
  PROBE_INTERVAL_MS,
  restartDelay,
  START_TIMEOUT_MS,
  WorkerBase,
  type WorkerStatus,
} from "./_worker_base.ts";

/** Sends `signal` to `child` unless it has already exited. */
function signalChild(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // "child process has already terminated"
  }
}

/** Options for {@link LocalWorker}. */
export interface LocalWorkerOptions {
  name: string;
  /** The Python interpreter (the venv's). */
  python: string;
  /** The folder holding the `tabagent_ml` package (python-ml/). */
  packageDir: string;
  /** `unix:/…/ml-0.sock` or `127.0.0.1:0`. */
  address: string;
  token: string | null;
  modelCachePath: string;
  fetchCachePath: string;
  log: Logger;
  /** Python log level. */
  logLevel?: string;
  /** torch threads per worker (0: torch's default). */
  threads?: number;
  /** Extra environment (tests). */
  env?: Record<string, string>;
}

/** A supervised child process. */
export class LocalWorker extends WorkerBase implements MlWorker {
  readonly sharesDisk = true;
  #options: LocalWorkerOptions;
  #child: Deno.ChildProcess | undefined;
  #lifeline: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #address: string;
  #stopping = false;
  #crashes: number[] = [];
  #consecutive = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #exited: Promise<Deno.CommandStatus> | undefined;
  #readyAt = 0;

  constructor(options: LocalWorkerOptions) {
    super(options.name, options.log);
    this.#options = options;
    this.#address = options.address;
  }

  /** The worker's pid while it runs. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  status(): WorkerStatus {
    return this.statusOf({ kind: "local", address: this.#address, pid: this.pid });
  }

  /** Spawns the process; resolves when it is SERVING or has failed for now (it keeps retrying). */
  async start(): Promise<void> {
    this.#stopping = false;
    await this.#spawn();
  }

  async #spawn(): Promise<void> {
    if (this.#stopping) return;
    this.setState(this._restarts === 0 && this._state !== "restarting" ? "starting" : "restarting");
    const o = this.#options;
    const listening = Promise.withResolvers<string>();
    let child: Deno.ChildProcess;
    try {
      child = this.#command().spawn();
    } catch (error) {
      const message = error instanceof Deno.errors.NotFound
        ? `the Python interpreter ${o.python} does not exist: run 'deno task setup' (or set TABAGENT_ML_PYTHON)`
        : `cannot start ${o.python}: ${error instanceof Error ? error.message : String(error)}`;
      this.#crashed(message);
      return;
    }
    this.#child = child;
    this.#lifeline = child.stdin.getWriter();
    const exited = child.status;
    this.#exited = exited;
    this.#pipeLogs(child, listening.resolve);
    exited.then((status) => this.#onExit(child, status));
    await this.#connect(child, listening.promise, exited);
  }

  /** `python -m tabagent_ml` with this worker's address, caches, token and threads. */
  #command(): Deno.Command {
    const o = this.#options;
    return new Deno.Command(o.python, {
      args: [
        "-m",
        "tabagent_ml",
        "--address",
        o.address,
        "--lifeline",
        "stdin",
        "--parent-pid",
        String(Deno.pid),
        "--model-cache",
        o.modelCachePath,
        "--fetch-cache",
        o.fetchCachePath,
        "--log-level",
        o.logLevel ?? "info",
      ],
      cwd: o.packageDir,
      env: {
        ...(o.token !== null ? { TABAGENT_ML_TOKEN: o.token } : {}),
        ...(o.threads ? { TABAGENT_ML_THREADS: String(o.threads), OMP_NUM_THREADS: String(o.threads) } : {}),
        PYTHONUNBUFFERED: "1",
        PYTHONPATH: o.packageDir,
        ...o.env,
      },
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    });
  }

  /** Waits for `child` to listen and answer SERVING, then makes it the ready client; kills it if it cannot. */
  async #connect(child: Deno.ChildProcess, listening: Promise<string>, exited: Promise<Deno.CommandStatus>) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const address = await Promise.race([
        listening,
        exited.then((s) => {
          throw new Error(`exited with code ${s.code}${s.signal ? ` (${s.signal})` : ""} before listening`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not listening after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
        }),
      ]);
      this.#address = address;
      const client = new MlClient({ address, token: this.#options.token, name: this.name });
      const status = await client.health({ deadlineMs: 10_000 });
      if (status !== "SERVING") throw new Error(`health says ${status}`);
      if (this.#child !== child) {
        client.close();
        return;
      }
      this._client?.close();
      this._client = client;
      this.#readyAt = performance.now();
      this.setState("ready");
      this.#startProbe(child);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.warn("ml worker failed to start", { worker: this.name, error: message });
      this._lastError = message;
      if (this.#child === child) {
        signalChild(child, "SIGKILL");
      }
    } finally {
      clearTimeout(timer);
    }
  }

  #pipeLogs(child: Deno.ChildProcess, onListening: (address: string) => void): void {
    const log = this.log;
    const name = this.name;
    (async () => {
      let rest = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const lines = rest.split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (!line.trim()) continue;
          let record: Record<string, unknown> | undefined;
          if (line.startsWith("{")) {
            try {
              record = JSON.parse(line);
            } catch (error) {
              if (!(error instanceof SyntaxError)) throw error;
              record = undefined; // a stray line that happens to start with "{": logged as text below
            }
          }
          if (!record || typeof record.msg !== "string") {
            log.warn("python output", { worker: name, pid: child.pid, line: line.slice(0, 2000) });
            continue;
          }
          const { level, msg, ts: _ts, ...fields } = record;
          if (msg === "listening" && typeof fields.address === "string") onListening(fields.address);
          const at = level === "debug" || level === "warn" || level === "error" ? level : "info";
          log[at](msg, { worker: name, pid: child.pid, ...fields });
        }
      }
    })().catch((error) => log.debug("python log pipe closed", { worker: name, error }));
  }

  #startProbe(child: Deno.ChildProcess): void {
    clearInterval(this.#probeTimer);
    let failures = 0;
    this.#probeTimer = setInterval(async () => {
      if (this.#child !== child || this._state !== "ready") return;
      try {
        await this._client!.health({ deadlineMs: 2_000 });
        failures = 0;
      } catch (error) {
        failures++;
        this.log.warn("ml worker health probe failed", { worker: this.name, failures, error });
        if (failures >= PROBE_FAILURES && this.#child === child) {
          this.log.error("ml worker hangs; killing it", { worker: this.name, pid: child.pid });
          signalChild(child, "SIGKILL");
        }
      }
    }, PROBE_INTERVAL_MS);
    Deno.unrefTimer(this.#probeTimer as unknown as number);
  }

  #onExit(child: Deno.ChildProcess, status: Deno.CommandStatus): void {
    if (this.#child !== child) return;
    clearInterval(this.#probeTimer);
    // The pipe is already broken when the child died; closing our end just releases it.
    this.#lifeline?.close().catch((error) => this.log.debug("lifeline closed", { worker: this.name, error }));
    this.#lifeline = undefined;
    this.#child = undefined;
    const client = this._client;
    this._client = undefined;
    client?.close();
    if (this.#stopping) {
      this.setState("stopped");
      return;
    }
    const how = status.signal ? `killed by ${status.signal}` : `exited with code ${status.code}`;
    this.#crashed(`the worker ${how}`);
  }

  #crashed(reason: string): void {
    const now = performance.now();
    // A worker that served for a while before dying starts the backoff afresh.
    if (this.#readyAt && now - this.#readyAt > BREAKER_WINDOW_MS) this.#consecutive = 0;
    this.#readyAt = 0;
    this.#consecutive++;
    this._restarts++;
    this.#crashes = [...this.#crashes.filter((t) => now - t < BREAKER_WINDOW_MS), now];
    this.log.error("ml worker crashed", { worker: this.name, reason, restarts: this._restarts });
    let delay: number;
    if (this.#crashes.length >= BREAKER_CRASHES) {
      this.setState("broken", `${reason}; breaker open after ${this.#crashes.length} crashes in a minute`);
      this.#crashes = [];
      delay = BREAKER_COOLDOWN_MS;
    } else {
      this.setState("restarting", reason);
      delay = restartDelay(this.#consecutive);
    }
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => this.#spawn(), delay);
    Deno.unrefTimer(this.#restartTimer as unknown as number);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#probeTimer);
    const child = this.#child;
    if (!child) {
      this.setState("stopped");
      return;
    }
    // Close our channel first: the worker then never has to send a GOAWAY on an open connection.
    this._client?.close();
    this._client = undefined;
    signalChild(child, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn("ml worker ignored SIGTERM; killing it", { worker: this.name, pid: child.pid });
        signalChild(child, "SIGKILL");
        resolve();
      }, graceMs);
    });
    await Promise.race([this.#exited, killed]);
    await this.#exited;
    clearTimeout(timer);
    this.setState("stopped");
  }

  /** Sends a signal to the process (tests and the benchmark use it to simulate crashes and hangs). */
  signal(signal: Deno.Signal): void {
    if (this.#child) signalChild(this.#child, signal);
  }
}
