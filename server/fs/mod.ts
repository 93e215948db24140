/**
 * File-system questions that many modules ask, answered one way: "it is not there" is an answer,
 * any other failure (permissions, I/O) is an error the caller sees.
 *
 * @example
 * ```ts
 * if (!(await pathExists(`${dir}/server.lock`))) await removeIfPresent(`${dir}/stale.tmp`);
 * ```
 * @module
 */

/** `Deno.stat` (or `Deno.lstat` with `followLinks: false`), or `null` when nothing is at `path`. */
export async function statIfExists(
  path: string,
  options: { followLinks?: boolean } = {},
): Promise<Deno.FileInfo | null> {
  try {
    return await (options.followLinks === false ? Deno.lstat(path) : Deno.stat(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Whether anything is at `path`. With `followLinks: false` a dangling symlink counts as there. */
export async function pathExists(path: string, options: { followLinks?: boolean } = {}): Promise<boolean> {
  return (await statIfExists(path, options)) !== null;
}

/** {@link pathExists} for the few callers that cannot await (opening stores synchronously). */
export function pathExistsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Removes `path` (with `recursive`, a folder and its contents); nothing there is fine. */
export async function removeIfPresent(path: string, options: { recursive?: boolean } = {}): Promise<void> {
  try {
    await Deno.remove(path, options);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * An absolute path on this machine's OS, as a pattern (so an OpenAPI document can state it): `/…`
 * on POSIX; a drive (`C:\…`) or a UNC share (`\\host\…`) on Windows. A drive-letter path on
 * Linux is relative (`A:\x` is a folder named so in the current directory), so it is not one here.
 */
export const ABSOLUTE_PATH_PATTERN = Deno.build.os === "windows" ? /^(?:[A-Za-z]:[\\/]|[\\/]{2})/ : /^\//;

/** Whether `path` is absolute on this machine's OS ({@link ABSOLUTE_PATH_PATTERN}). */
export function isAbsolutePath(path: string): boolean {
  return ABSOLUTE_PATH_PATTERN.test(path);
}
