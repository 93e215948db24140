/**
 * The scheduler every model call goes through: priority queues (interactive before background,
 * with starvation protection), per-model concurrency (a context's sequences), deadlines and
 * cancellation by `AbortSignal`. The memory budget belongs to the orchestrator.
 *
 * @example
 * ```ts
 * import { Scheduler } from "./mod.ts";
 * const scheduler = new Scheduler();
 * await scheduler.run({ model: "m", priority: "background" }, async ({ signal }) => {});
 * ```
 * @module
 */
export {
  BACKGROUND_STARVATION_MS,
  type JobLease,
  type JobOptions,
  MAX_QUEUED_JOBS,
  type Priority,
  Scheduler,
  type SchedulerStats,
} from "./scheduler.ts";
