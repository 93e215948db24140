/**
 * Lowers the scheduling priority of the calling worker thread, so background work (searches,
 * checkpoints) yields the CPU to the server's event loop when cores are scarce: on two cores, a
 * search worker at equal priority kept `/v1/health` waiting several milliseconds at the 99th
 * percentile. Linux only (a thread is addressed by its id there); elsewhere it does nothing.
 */
import { getPriority, setPriority } from "node:os";

/** Nice value of the memory's background worker threads (0 is normal, 19 the lowest). */
export const BACKGROUND_THREAD_NICE = 10;

/** Lowers this worker thread's priority to at most {@link BACKGROUND_THREAD_NICE}; false where it cannot. */
export function lowerThreadPriority(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    // "<pid>/task/<tid>": on Linux, setpriority(PRIO_PROCESS, tid) changes that thread only.
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isSafeInteger(tid) || tid === Deno.pid) return false; // never renice the main thread
    // A thread already at or below that priority (the whole process runs niced) is left as it is.
    if (getPriority(tid) < BACKGROUND_THREAD_NICE) setPriority(tid, BACKGROUND_THREAD_NICE);
    return true;
  } catch (error) {
    // No /proc (a sandbox) or no permission: background work simply keeps normal priority.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return false;
    if (error instanceof Error && /EACCES|EPERM|ESRCH/.test(error.message)) return false;
    throw error;
  }
}
