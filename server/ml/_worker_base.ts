/**
 * What every ML worker shares: its states and status, the restart backoff and breaker constants,
 * and the state machine with change notifications that dispatch and health read.
 * @module
 */
import type { Logger } from "../log/mod.ts";
import type { MlClient } from "./client.ts";

/** First restart delay (ms); doubles per consecutive crash, up to {@link RESTART_MAX_MS}. */
export const RESTART_BASE_MS = 100;
/** Longest restart delay (ms). */
export const RESTART_MAX_MS = 10_000;
/** Crashes within {@link BREAKER_WINDOW_MS} that open the breaker. */
export const BREAKER_CRASHES = 5;
/** The window in which crashes count towards the breaker (ms). */
export const BREAKER_WINDOW_MS = 60_000;
/** How long an open breaker waits before one more try (ms). */
export const BREAKER_COOLDOWN_MS = 60_000;
/** How long a spawned worker may take to answer SERVING (ms). */
export const START_TIMEOUT_MS = 60_000;
/** How often a ready worker is probed, and how many failed probes in a row mean it hangs. */
export const PROBE_INTERVAL_MS = 5_000;
export const PROBE_FAILURES = 3;

/** A worker's state. */
export type WorkerState = "starting" | "ready" | "restarting" | "broken" | "stopped";

/** What health, doctor and `/v1/ml` show about a worker. */
export interface WorkerStatus {
  name: string;
  kind: "local" | "remote";
  address: string;
  state: WorkerState;
  pid: number | null;
  restarts: number;
  inFlight: number;
  lastError: string | null;
  since: string;
}

/** The interface dispatch sees. */
export interface MlWorker {
  readonly name: string;
  readonly state: WorkerState;
  /** Calls dispatched to it and not finished. */
  inFlight: number;
  /** True when the worker shares this machine's disk (models load by path). */
  readonly sharesDisk: boolean;
  /** The client while ready. */
  readonly client: MlClient | undefined;
  status(): WorkerStatus;
  start(): Promise<void>;
  stop(graceMs: number): Promise<void>;
  /** Resolves on the next state change (or after `timeoutMs`). */
  changed(timeoutMs: number): Promise<void>;
}

/** Exponential backoff with full jitter: a random delay in [d/2, d], d = base·2^(n-1) capped. */
export function restartDelay(consecutiveCrashes: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, consecutiveCrashes - 1));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/** State, status and change notifications; {@link LocalWorker} and {@link RemoteWorker} extend it. */
export abstract class WorkerBase {
  readonly name: string;
  inFlight = 0;
  protected _state: WorkerState = "stopped";
  protected _client: MlClient | undefined;
  protected _since = new Date().toISOString();
  protected _lastError: string | null = null;
  protected _restarts = 0;
  protected log: Logger;
  #waiters: (() => void)[] = [];

  constructor(name: string, log: Logger) {
    this.name = name;
    this.log = log;
  }

  get state(): WorkerState {
    return this._state;
  }

  get client(): MlClient | undefined {
    return this._state === "ready" ? this._client : undefined;
  }

  /** This worker's state for health, doctor and dispatch; `where` says how it is reached. */
  protected statusOf(where: { kind: WorkerStatus["kind"]; address: string; pid: number | null }): WorkerStatus {
    return {
      name: this.name,
      ...where,
      state: this._state,
      restarts: this._restarts,
      inFlight: this.inFlight,
      lastError: this._lastError,
      since: this._since,
    };
  }

  protected setState(state: WorkerState, error?: string): void {
    if (error !== undefined) this._lastError = error;
    if (state === this._state) return;
    this._state = state;
    this._since = new Date().toISOString();
    this.log.info("ml worker state", { worker: this.name, state, ...(error ? { error } : {}) });
    for (const wake of this.#waiters.splice(0)) wake();
  }

  changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve();
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(wake);
    });
  }
}
