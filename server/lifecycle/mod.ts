/**
 * Component lifecycle: components start in the order they were added and stop in reverse, each
 * reporting its state (`starting`, `ready`, `degraded`, `failed`, …) for `/v1/health` and metrics.
 *
 * @example
 * ```ts
 * const lifecycle = new Lifecycle(log);
 * lifecycle.add({ name: "memory", critical: true, start: async () => {}, stop: async () => {} });
 * await lifecycle.startAll();
 * await lifecycle.stopAll(10_000);
 * ```
 * @module
 */
import type { Logger } from "../log/mod.ts";

export { type Component, COMPONENT_STATES, type ComponentHealth, type ComponentState } from "./component.ts";
import type { Component, ComponentHealth, ComponentState } from "./component.ts";

/** A component's reported status. */
export interface ComponentStatus extends ComponentHealth {
  name: string;
  critical: boolean;
  since: string;
}

/** The server's overall state, derived from its components. */
export type OverallState = "starting" | "ready" | "degraded" | "failed" | "stopping";

interface Entry {
  component: Component;
  state: ComponentState;
  detail?: string;
  since: string;
}

/** Starts components in order, stops them in reverse, and reports their states. */
export class Lifecycle {
  #entries: Entry[] = [];
  #log: Logger;
  #stopping = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Registers a component; start order is registration order. */
  add<C extends Component>(component: C): C {
    if (this.#entries.some((entry) => entry.component.name === component.name)) {
      throw new Error(`component '${component.name}' registered twice`);
    }
    this.#entries.push({ component, state: "stopped", since: new Date().toISOString() });
    return component;
  }

  /** Names of the registered components, in start order. */
  get names(): string[] {
    return this.#entries.map((entry) => entry.component.name);
  }

  #set(entry: Entry, state: ComponentState, detail?: string): void {
    entry.state = state;
    entry.detail = detail;
    entry.since = new Date().toISOString();
  }

  /**
   * Starts every component in order. A critical failure stops what was started and rethrows; a
   * non-critical one is recorded as `failed` and the rest go on.
   */
  async startAll(): Promise<void> {
    for (const entry of this.#entries) {
      const { component } = entry;
      this.#set(entry, "starting");
      const began = performance.now();
      try {
        await component.start();
        this.#set(entry, "ready");
        this.#log.info("component started", {
          name: component.name,
          ms: Math.round(performance.now() - began),
        });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.#set(entry, "failed", message);
        if (component.critical) {
          this.#log.error("critical component failed to start", { name: component.name, error });
          await this.stopAll(5_000);
          throw error;
        }
        this.#log.warn("component failed to start; continuing degraded", { name: component.name, error });
      }
    }
  }

  /** Stops started components in reverse order, each within what is left of `graceMs`. */
  async stopAll(graceMs: number): Promise<void> {
    this.#stopping = true;
    const deadline = performance.now() + graceMs;
    for (const entry of [...this.#entries].reverse()) {
      if (entry.state === "stopped" || entry.state === "failed") continue;
      this.#set(entry, "stopping");
      const left = Math.max(0, deadline - performance.now());
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          entry.component.stop(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not stop within ${Math.round(left)} ms`)), left);
          }),
        ]);
        this.#set(entry, "stopped");
      } catch (error) {
        this.#set(entry, "failed", error instanceof Error ? error.message : String(error));
        this.#log.error("component failed to stop", { name: entry.component.name, error });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Current status of every component, asking started ones for their own view. */
  statuses(): ComponentStatus[] {
    return this.#entries.map((entry) => {
      let { state, detail } = entry;
      if (state === "ready" && entry.component.health) {
        const own = entry.component.health();
        state = own.state;
        detail = own.detail;
      }
      return { name: entry.component.name, critical: entry.component.critical, state, detail, since: entry.since };
    });
  }

  /** The overall state: the worst of the components, with non-critical failures only degrading. */
  overall(statuses: ComponentStatus[] = this.statuses()): OverallState {
    if (this.#stopping) return "stopping";
    if (statuses.some((s) => s.critical && s.state === "failed")) return "failed";
    if (statuses.some((s) => s.state === "starting" || s.state === "stopped")) return "starting";
    if (statuses.some((s) => s.state !== "ready")) return "degraded";
    return "ready";
  }
}

export { InstanceLock } from "./instance_lock.ts";
