/** {@link RemoteWorker}: an ML worker someone else runs (`--ml-worker host:port`), probed and reconnected. */
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { MlClient } from "./client.ts";
import {
  BREAKER_CRASHES,
  type MlWorker,
  PROBE_INTERVAL_MS,
  restartDelay,
  WorkerBase,
  type WorkerStatus,
} from "./_worker_base.ts";

/** Options for {@link RemoteWorker}. */
export interface RemoteWorkerOptions {
  name: string;
  /** host:port */
  address: string;
  token: string | null;
  /** TLS off loopback; `ca` trusts a private CA (PEM), `serverName` is the name its certificate carries. */
  tls?: { ca?: Uint8Array; serverName?: string };
  log: Logger;
}

/** A worker someone else runs; probed, reconnected, never spawned. */
export class RemoteWorker extends WorkerBase implements MlWorker {
  readonly sharesDisk = false;
  #options: RemoteWorkerOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #failures = 0;

  constructor(options: RemoteWorkerOptions) {
    super(options.name, options.log);
    this.#options = options;
  }

  status(): WorkerStatus {
    return this.statusOf({ kind: "remote", address: this.#options.address, pid: null });
  }

  async start(): Promise<void> {
    this.#stopping = false;
    this.setState("starting");
    const o = this.#options;
    this._client = new MlClient({ address: o.address, token: o.token, tls: o.tls, name: this.name });
    await this.#probe();
  }

  async #probe(): Promise<void> {
    if (this.#stopping) return;
    try {
      const status = await this._client!.health({ deadlineMs: 3_000 });
      if (status !== "SERVING") throw new TabAgentError("unavailable", `health says ${status}`);
      this.#failures = 0;
      this.setState("ready");
    } catch (error) {
      this.#failures++;
      if (this._state === "ready") this._restarts++;
      const message = error instanceof Error ? error.message : String(error);
      this.setState(this.#failures >= BREAKER_CRASHES ? "broken" : "restarting", message);
    }
    const delay = this._state === "ready" ? PROBE_INTERVAL_MS : restartDelay(this.#failures);
    this.#timer = setTimeout(() => this.#probe(), delay);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  stop(_graceMs: number): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    this._client?.close();
    this.setState("stopped");
    return Promise.resolve();
  }
}
