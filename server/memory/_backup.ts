/**
 * Backup files and restore swaps. A backup is one `VACUUM INTO` copy per store (taken in a worker
 * while writes wait, so the seven copies are one consistent cut) plus `manifest.json` with each
 * file's size, SHA-256 and schema version, written last. A restore verifies all of that, copies
 * the files into a staging folder beside the live ones, and swaps them in under a journal, so an
 * interrupted swap is finished at the next start instead of leaving a mix. Staged files and their
 * folder are fsynced before the journal is written, and the journal is removed only after the
 * renames are synced, so "done" is never claimed for data still in the page cache. The replaced
 * files are kept as a generation under `.previous/<time>/`, the last {@link PREVIOUS_GENERATIONS}.
 * Every folder is 0700 and every file 0600, whatever the umask.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { TabAgentError } from "../errors/mod.ts";
import { VERSION } from "../version.ts";
import { applicationId, latestVersion, openStoreReadOnly, STORE_NAMES, storeFile, type StoreName } from "./stores.ts";
import type { BackupManifest } from "./types.ts";
import { makePrivateSync, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, syncPath } from "./_private.ts";
import { isAbsolutePath, pathExists, removeIfPresent } from "../fs/mod.ts";

/** A dangling link counts as there: it would block a rename onto its name. */
const pathOrLinkExists = (path: string) => pathExists(path, { followLinks: false });

/** The manifest's file name inside a backup folder. */
export const MANIFEST_FILE = "manifest.json";
const JOURNAL_FILE = "restore.journal";
const STAGING_DIR = ".restore-staging";
const PREVIOUS_DIR = ".previous";
/** Replaced generations of the live files kept under `.previous/` (oldest removed first). */
export const PREVIOUS_GENERATIONS = 3;

const journalSchema = z.object({
  staging: z.literal(STAGING_DIR),
  at: z.number(),
  previous: z.string().regex(/^[0-9TZ-]+$/).optional(),
});

const manifestSchema = z.object({
  format: z.literal("tabagent-memory-backup"),
  format_version: z.literal(1),
  created_at: z.string(),
  app_version: z.string(),
  files: z.array(z.object({
    store: z.enum(STORE_NAMES),
    file: z.string().regex(/^[a-z_]+\.db$/),
    bytes: z.number().int().min(0),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    schema_version: z.number().int().min(0),
  })),
});

/** Hex SHA-256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Refuses a backup folder that is not absolute on this OS: a relative one would be read or written
 * wherever the server was started.
 */
function assertAbsoluteDir(dir: string): void {
  if (isAbsolutePath(dir)) return;
  throw new TabAgentError("validation_failed", `Invalid backup dir: '${dir}' must be an absolute path`, {
    errors: [{ field: "dir", message: "must be an absolute path" }],
  });
}

/** Checks that `dir` is an absolute path to an empty or missing folder, and creates it. */
export async function prepareBackupDir(dir: string): Promise<void> {
  assertAbsoluteDir(dir);
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new TabAgentError("conflict", `The backup dir ${dir} is not empty; choose a new folder`, { path: dir });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      if (error instanceof TabAgentError) throw error;
      throw new TabAgentError("bad_request", `The backup dir ${dir} cannot be used: ${(error as Error).message}`, {
        path: dir,
      });
    }
  }
  try {
    await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    makePrivateSync(dir, "dir"); // an existing empty folder keeps its mode otherwise
  } catch (error) {
    throw new TabAgentError("bad_request", `The backup dir ${dir} cannot be created: ${(error as Error).message}`, {
      path: dir,
    }, { cause: error });
  }
}

/** Copies every store from `sourceDir` into `dir` with `VACUUM INTO`, in a worker. */
export async function snapshotStores(sourceDir: string, dir: string): Promise<void> {
  const worker = new Worker(new URL("./_backup_worker.ts", import.meta.url), { type: "module" });
  try {
    const done = Promise.withResolvers<void>();
    worker.onmessage = (event: MessageEvent<{ error?: string }>) => {
      if (event.data.error) done.reject(new TabAgentError("internal", `Backup failed: ${event.data.error}`));
      else done.resolve();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      done.reject(new TabAgentError("internal", `Backup worker failed: ${event.message}`));
    };
    worker.postMessage({ sourceDir, dir, files: STORE_NAMES.map(storeFile) });
    await done.promise;
  } finally {
    worker.terminate();
  }
  // VACUUM INTO creates its file under the umask: a backup holds every conversation.
  for (const store of STORE_NAMES) {
    makePrivateSync(`${dir}/${storeFile(store)}`, "file");
    await syncPath(`${dir}/${storeFile(store)}`);
  }
}

/** Writes the manifest for the copies in `dir` (last, atomically: a backup without one is incomplete). */
export async function writeManifest(dir: string, versions: Record<StoreName, number>): Promise<BackupManifest> {
  const files: BackupManifest["files"] = [];
  for (const store of STORE_NAMES) {
    const path = `${dir}/${storeFile(store)}`;
    files.push({
      store,
      file: storeFile(store),
      bytes: (await Deno.stat(path)).size,
      sha256: await sha256File(path),
      schema_version: versions[store],
    });
  }
  const manifest: BackupManifest = {
    format: "tabagent-memory-backup",
    format_version: 1,
    created_at: new Date().toISOString(),
    app_version: VERSION,
    files,
  };
  const temp = `${dir}/${MANIFEST_FILE}.partial`;
  await Deno.writeTextFile(temp, JSON.stringify(manifest, null, 2) + "\n", { mode: PRIVATE_FILE_MODE });
  await syncPath(temp);
  await Deno.rename(temp, `${dir}/${MANIFEST_FILE}`);
  await syncPath(dir);
  return manifest;
}

function damaged(dir: string, why: string, code: "bad_request" | "checksum_mismatch" = "bad_request") {
  return new TabAgentError(code, `The backup in ${dir} cannot be restored: ${why}. The live data was not changed.`, {
    path: dir,
  });
}

/**
 * Verifies the backup in `dir`: manifest, every file's size and SHA-256, and that each opens as the
 * right TabAgent store, passes `quick_check` and has a schema this code can read.
 */
export async function verifyBackup(dir: string): Promise<BackupManifest> {
  assertAbsoluteDir(dir);
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      // No manifest: nothing there is a backup (a 404, as for any resource that does not exist).
      throw new TabAgentError(
        "not_found",
        `No backup in ${dir}: ${MANIFEST_FILE} is missing. The live data was not changed.`,
        {
          path: dir,
        },
      );
    }
    throw damaged(dir, `${MANIFEST_FILE} cannot be read (${(error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw damaged(dir, `${MANIFEST_FILE} is not JSON`); // the parser's message adds nothing for the user
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw damaged(dir, `${MANIFEST_FILE} is malformed at '${issue.path.join(".")}': ${issue.message}`);
  }
  const manifest = result.data as BackupManifest;
  for (const store of STORE_NAMES) {
    const entry = manifest.files.find((file) => file.store === store);
    if (!entry || entry.file !== storeFile(store)) throw damaged(dir, `the manifest lists no ${storeFile(store)}`);
    const path = `${dir}/${entry.file}`;
    let size: number;
    try {
      size = (await Deno.stat(path)).size;
    } catch {
      throw damaged(dir, `${entry.file} is missing`); // any stat failure means the file is not usable here
    }
    if (size !== entry.bytes) {
      throw damaged(dir, `${entry.file} has ${size} bytes, the manifest says ${entry.bytes}`, "checksum_mismatch");
    }
    if (await sha256File(path) !== entry.sha256) {
      throw damaged(dir, `${entry.file} does not match its SHA-256 in the manifest`, "checksum_mismatch");
    }
    if (entry.schema_version > latestVersion(store)) {
      throw damaged(dir, `${entry.file} has schema version ${entry.schema_version}, newer than this TabAgent reads`);
    }
    let db;
    try {
      db = openStoreReadOnly(path);
      const appId = (db.prepare("PRAGMA application_id").get() as { application_id: number }).application_id;
      if (appId !== applicationId(store)) throw new Error(`it is not a TabAgent '${store}' store`);
      const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
      if (version !== entry.schema_version) throw new Error(`its schema version is ${version}`);
      const check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
      if (check[0]?.quick_check !== "ok") throw new Error(`it fails its integrity check`);
    } catch (error) {
      throw damaged(dir, `${entry.file}: ${error instanceof Error ? error.message : error}`);
    } finally {
      db?.close();
    }
  }
  return manifest;
}

/** Copies a verified backup into the staging folder beside the live stores and checks the copies. */
export async function stageBackup(dir: string, dbDir: string, manifest: BackupManifest): Promise<void> {
  const staging = `${dbDir}/${STAGING_DIR}`;
  await Deno.remove(staging, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(staging, { recursive: true, mode: PRIVATE_DIR_MODE });
  makePrivateSync(staging, "dir");
  for (const entry of manifest.files) {
    const target = `${staging}/${entry.file}`;
    await Deno.copyFile(`${dir}/${entry.file}`, target);
    makePrivateSync(target, "file"); // copyFile keeps the backup's mode, whatever it was
    await syncPath(target);
    if (await sha256File(target) !== entry.sha256) {
      throw damaged(dir, `copying ${entry.file} into ${staging} produced a different file`, "checksum_mismatch");
    }
  }
  await syncPath(staging);
}

/** Removes a staging folder left by a restore that failed before its swap; the live files are untouched. */
export async function discardStaged(dbDir: string): Promise<void> {
  await Deno.remove(`${dbDir}/${STAGING_DIR}`, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/**
 * Swaps the staged files in for the live ones. The stores must be closed. The journal makes the
 * swap restartable: {@link recoverRestore} finishes it after a crash.
 */
export async function swapInStaged(dbDir: string): Promise<void> {
  const journal = `${dbDir}/${JOURNAL_FILE}`;
  const at = Date.now();
  const entry = { staging: STAGING_DIR, at, previous: generationName(at) };
  const file = await Deno.open(journal, { write: true, create: true, truncate: true, mode: PRIVATE_FILE_MODE });
  try {
    await file.write(new TextEncoder().encode(JSON.stringify(entry) + "\n"));
    await file.sync();
  } finally {
    file.close();
  }
  await syncPath(dbDir); // the journal's own directory entry
  await finishSwap(dbDir, entry.previous);
}

/** `.previous/<name>` for a swap at `at` (ms): sortable, and a valid folder name everywhere. */
function generationName(at: number): string {
  return new Date(at).toISOString().replaceAll(":", "-").replace(".", "-");
}

async function pruneGenerations(previous: string): Promise<void> {
  const generations: string[] = [];
  for await (const entry of Deno.readDir(previous)) {
    if (entry.isDirectory && /^[0-9TZ-]+$/.test(entry.name)) generations.push(entry.name);
  }
  generations.sort();
  for (const name of generations.slice(0, Math.max(0, generations.length - PREVIOUS_GENERATIONS))) {
    await Deno.remove(`${previous}/${name}`, { recursive: true });
  }
}

async function finishSwap(dbDir: string, generation: string): Promise<void> {
  const staging = `${dbDir}/${STAGING_DIR}`;
  const previous = `${dbDir}/${PREVIOUS_DIR}/${generation}`;
  await Deno.mkdir(previous, { recursive: true, mode: PRIVATE_DIR_MODE });
  makePrivateSync(`${dbDir}/${PREVIOUS_DIR}`, "dir");
  for (const store of STORE_NAMES) {
    const name = storeFile(store);
    if (!await pathOrLinkExists(`${staging}/${name}`)) continue; // already swapped in before an interruption
    const live = `${dbDir}/${name}`;
    // A WAL left beside a new file would be replayed into it: the closed stores have none, but be sure.
    await removeIfPresent(`${live}-wal`);
    await removeIfPresent(`${live}-shm`);
    if (await pathOrLinkExists(live)) await Deno.rename(live, `${previous}/${name}`);
    await Deno.rename(`${staging}/${name}`, live);
  }
  // The renames must be on disk before the journal that would redo them is gone.
  await syncPath(dbDir);
  await syncPath(previous);
  await Deno.remove(`${dbDir}/${JOURNAL_FILE}`);
  await syncPath(dbDir);
  await Deno.remove(staging, { recursive: true });
  await pruneGenerations(`${dbDir}/${PREVIOUS_DIR}`);
}

/** Finishes a restore that was interrupted after its journal was written; true when there was one. */
export async function recoverRestore(dbDir: string): Promise<boolean> {
  if (!await pathOrLinkExists(`${dbDir}/${JOURNAL_FILE}`)) {
    // Staged files without a journal are an unfinished copy: the live stores were never touched.
    await Deno.remove(`${dbDir}/${STAGING_DIR}`, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    return false;
  }
  let generation: string;
  try {
    const journal = journalSchema.parse(JSON.parse(await Deno.readTextFile(`${dbDir}/${JOURNAL_FILE}`)));
    generation = journal.previous ?? generationName(journal.at);
  } catch (error) {
    // A journal torn before its fsync finished: the swap had not begun, so keep what is staged
    // out of the way and finish it under a fresh generation name (the renames are idempotent).
    if (error instanceof Deno.errors.NotFound) throw error;
    generation = generationName(Date.now());
  }
  await finishSwap(dbDir, generation);
  return true;
}
