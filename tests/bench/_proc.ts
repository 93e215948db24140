/**
 * A process's CPU time, read from /proc (Linux): how the benches tell when a server has finished
 * its background work and what its event loop cost. Read from `schedstat` (nanoseconds), so that a
 * window of a few milliseconds can be judged; where /proc is missing the readers return null.
 * @module
 */

/** The run time (ms) in a task's `schedstat`; throws NotFound when the task or /proc is missing. */
function schedstatMs(path: string): number {
  return Number(Deno.readTextFileSync(path).split(" ")[0]) / 1e6;
}

/** CPU time (ms) the main thread (the event loop) of `pid` has used so far, or null where /proc cannot tell. */
export function mainThreadCpuMs(pid: number): number | null {
  try {
    return schedstatMs(`/proc/${pid}/task/${pid}/schedstat`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** CPU time (ms) every thread of `pid` has used so far, or null where /proc cannot tell. */
export function processCpuMs(pid: number): number | null {
  try {
    let ms = 0;
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        ms += schedstatMs(`/proc/${pid}/task/${task.name}/schedstat`);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error; // the thread ended meanwhile
      }
    }
    return ms;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Waits until every one of `pids` uses under `underMs` of CPU over a `windowMs` window, for up to
 * `timeoutMs`. A process /proc cannot tell about counts as idle; returns false when it could tell
 * about none of them (the caller then waits its own way).
 */
export async function waitIdle(
  pids: number[],
  options: { windowMs: number; underMs: number; timeoutMs: number },
): Promise<boolean> {
  let before = pids.map(processCpuMs);
  if (before.every((ms) => ms === null)) return false;
  const deadline = performance.now() + options.timeoutMs;
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, options.windowMs));
    const now = pids.map(processCpuMs);
    if (now.every((ms, i) => ms === null || before[i] === null || ms - before[i]! < options.underMs)) return true;
    before = now;
  }
  return true;
}
