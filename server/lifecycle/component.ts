/** What a component is to the lifecycle: its states and the interface it implements. @module */

/** What a component can be doing. */
export const COMPONENT_STATES = ["stopped", "starting", "ready", "degraded", "failed", "stopping"] as const;
/** A component state. */
export type ComponentState = typeof COMPONENT_STATES[number];

/** Something the server starts and stops. */
export interface Component {
  readonly name: string;
  /** A critical component that fails to start stops the server; others leave it degraded. */
  readonly critical: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * The component's own view of its health once started; a component that supervises something
   * (a child process, a model load) reports `starting`/`degraded` here.
   */
  health?(): ComponentHealth;
}

/** A component's health as reported. */
export interface ComponentHealth {
  state: ComponentState;
  detail?: string;
}
