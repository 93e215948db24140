/**
 * Owner-only permissions for everything that holds memory data: 0700 folders, 0600 files, set
 * explicitly rather than left to the umask (a 022 umask makes SQLite files and `VACUUM INTO`
 * copies world-readable, and an existing `--db-path` keeps whatever mode it had). Windows has no
 * such modes; there the user's profile folder is what keeps others out.
 */

/** Mode for folders holding memory data. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode for files holding memory data. */
export const PRIVATE_FILE_MODE = 0o600;

const posix = Deno.build.os !== "windows";

/** Sets `path` to 0700 (folder) or 0600 (file); a file that does not exist is skipped. */
export function makePrivateSync(path: string, kind: "dir" | "file"): void {
  if (!posix) return;
  try {
    Deno.chmodSync(path, kind === "dir" ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Sets a store file and its `-wal`/`-shm` companions to 0600. */
export function makeStoreFilesPrivateSync(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) makePrivateSync(`${path}${suffix}`, "file");
}

/** Flushes a file or folder to disk (a folder: its entries, so renames and new files survive power loss). */
export async function syncPath(path: string): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    // Windows cannot open a folder as a file; NTFS journals its metadata itself.
    if (!posix) return;
    throw error;
  }
  try {
    await file.sync();
  } finally {
    file.close();
  }
}
