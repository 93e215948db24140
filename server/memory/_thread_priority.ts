/**
 * Lowers the scheduling priority of the calling worker thread, so background work (searches,
 * checkpoints) yields the CPU to the server's event loop when cores are scarce: on two cores, a
 * search worker at equal priority kept `/v1/health` waiting several milliseconds at the 99th
 * percentile. The step is relative to the main thread's own priority: a server started under
 * `nice -n 10` (as CI and shared machines run it) would otherwise leave its workers level with its
 * event loop. Linux only (a thread is addressed by its id there); elsewhere it does nothing.
 */
import { getPriority, setPriority } from "node:os";

/** How many nice steps the memory's background worker threads run below the main thread (19 is the floor). */
export const BACKGROUND_THREAD_NICE = 10;
/** The lowest priority Linux has. */
const LOWEST_NICE = 19;

/** The nice value background threads get when the main thread runs at `mainNice`. */
export function backgroundNice(mainNice: number): number {
  return Math.min(LOWEST_NICE, mainNice + BACKGROUND_THREAD_NICE);
}

/** Lowers this worker thread's priority {@link BACKGROUND_THREAD_NICE} steps below the main thread's; false where it cannot. */
export function lowerThreadPriority(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    // "<pid>/task/<tid>": on Linux, setpriority(PRIO_PROCESS, tid) changes that thread only.
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isSafeInteger(tid) || tid === Deno.pid) return false; // never renice the main thread
    // A thread already at or below that priority is left as it is.
    const nice = backgroundNice(getPriority(Deno.pid));
    if (getPriority(tid) < nice) setPriority(tid, nice);
    return true;
  } catch (error) {
    // No /proc (a sandbox) or no permission: background work simply keeps normal priority.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return false;
    if (error instanceof Error && /EACCES|EPERM|ESRCH/.test(error.message)) return false;
    throw error;
  }
}
