/**
 * One download per file across processes: an advisory exclusive lock (flock) on `<file>.lock`. The
 * kernel drops it when its holder dies, so a `kill -9` never leaves a file locked.
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";
import { sleep } from "./_sleep.ts";

/** How often a waiting process tries the lock again (ms). */
const LOCK_POLL_MS = 100;

/** A held lock; release it with `release()` or `await using`. */
export interface FileLock extends AsyncDisposable {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes the exclusive lock at `path`, waiting (and calling `onWait` once) while another process or
 * another download in this one holds it. Aborting `signal` stops the wait with `cancelled`.
 *
 * @example
 * ```ts
 * await using lock = await acquireFileLock("/models/org--name/model.gguf.lock");
 * ```
 */
export async function acquireFileLock(
  path: string,
  options: { signal?: AbortSignal; onWait?: () => void } = {},
): Promise<FileLock> {
  let waited = false;
  while (true) {
    if (options.signal?.aborted) {
      throw new TabAgentError("cancelled", "Cancelled while waiting for another download of the same file");
    }
    const file = await Deno.open(path, { read: true, write: true, create: true });
    let locked = false;
    try {
      locked = await file.tryLock(true);
      if (locked) {
        // The previous holder deletes the lock file before unlocking; if ours is no longer the file
        // at `path`, someone may already hold the new one: start over.
        const [mine, current] = await Promise.all([file.stat(), Deno.stat(path).catch(() => null)]);
        if (current !== null && current.ino === mine.ino && current.dev === mine.dev) {
          return makeLock(path, file);
        }
        await file.unlock();
        locked = false;
      }
    } catch (error) {
      file.close();
      throw error;
    }
    file.close();
    if (!locked && !waited) {
      waited = true;
      options.onWait?.();
    }
    try {
      await sleep(LOCK_POLL_MS, options.signal);
    } catch {
      throw new TabAgentError("cancelled", "Cancelled while waiting for another download of the same file");
    }
  }
}

function makeLock(path: string, file: Deno.FsFile): FileLock {
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    try {
      await Deno.remove(path);
    } catch (error) {
      // Gone already, or (Windows) still open elsewhere: the lock itself is what matters.
      if (!(error instanceof Deno.errors.NotFound) && Deno.build.os !== "windows") throw error;
    }
    await file.unlock();
    file.close();
  };
  return { path, release, [Symbol.asyncDispose]: release };
}
