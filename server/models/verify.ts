/**
 * Checking downloaded model files against their manifest. A manifest's sha256 is trusted for a
 * file only while the file still has the size and mtime it had when that sha256 was computed; a
 * file changed on disk since (a bad sector, an editor, another tool) is re-hashed before it may be
 * skipped on a re-pull or served with the sha256 as its ETag. {@link verifyModel} re-hashes every
 * file, whatever its mtime says.
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";
import { hashFile } from "./_hash_follower.ts";
import type { ManifestFile, ModelCache } from "./cache.ts";
import type { ModelId } from "./repo_id.ts";

/**
 * Hex SHA-256 of the `size` bytes of the file at `path`, or null when the file changed size or was
 * removed while it was read (it cannot then match anything recorded). Large files are hashed by the
 * downloads' hash thread, not on the event loop: streamed through `node:crypto` here, a 256 MiB file
 * cost the event loop 330 ms of CPU and took 410 ms; on the hash thread it costs the event loop
 * nothing and takes 230 ms (measured on a 2-core EPYC), so verifying a model of several GB on a
 * running server no longer takes seconds of its event loop's CPU from the requests it serves.
 */
export async function sha256OfFile(path: string, size: number): Promise<string | null> {
  let sha256: string;
  try {
    ({ sha256 } = await hashFile(path, size));
  } catch (error) {
    // It shrank, or is gone (the hash thread passes on only the message).
    if (error instanceof Error && /short read|ENOENT/.test(error.message)) return null;
    throw error;
  }
  // Hashing stops at `size`: bytes appended meanwhile would go unseen.
  return (await Deno.stat(path)).size === size ? sha256 : null;
}

/** True while `info` has the size and mtime recorded with the manifest's sha256 (no need to re-hash). */
export function unchangedSinceHashed(entry: ManifestFile, info: Deno.FileInfo): boolean {
  return entry.size === info.size && entry.mtime_ms !== undefined && entry.mtime_ms === info.mtime?.getTime();
}

/**
 * The manifest's sha256 for `entry` if the file at `path` (described by `info`) still has those
 * bytes: trusted as recorded when size and mtime match, re-hashed otherwise. Returns the entry with
 * the current mtime when the bytes match, or null when they do not.
 */
export async function confirmFile(
  path: string,
  entry: ManifestFile,
  info: Deno.FileInfo,
): Promise<ManifestFile | null> {
  if (entry.size !== info.size) return null;
  if (unchangedSinceHashed(entry, info)) return entry;
  if (await sha256OfFile(path, info.size) !== entry.sha256) return null;
  return { ...entry, mtime_ms: info.mtime?.getTime() };
}

/** The sha256 a server may send as a file's ETag: only while the file is unchanged since it was hashed. */
export function trustedSha256(entry: ManifestFile | undefined, info: Deno.FileInfo): string | undefined {
  return entry && unchangedSinceHashed(entry, info) ? entry.sha256 : undefined;
}

/** What {@link verifyModel} found for one file. */
export interface FileVerification {
  path: string;
  size: number;
  state: "ok" | "damaged" | "missing";
  sha256: string;
  /** The sha256 of the bytes on disk, when they differ. */
  actual_sha256?: string;
  /** The size on disk, when it differs. */
  actual_size?: number;
}

/** What {@link verifyModel} found for one model. */
export interface ModelVerification {
  id: ModelId;
  ok: boolean;
  files: FileVerification[];
  /** Bytes read and hashed. */
  hashed_bytes: number;
}

/**
 * Re-hashes every file of model `id` against its manifest. Intact files get their mtime recorded
 * again; when any file is damaged or missing the manifest is marked incomplete, so the model no
 * longer counts as downloaded and the next pull fetches what is wrong. Throws `not_found` when
 * the model has no manifest to check against.
 *
 * @example
 * ```ts
 * const report = await verifyModel(new ModelCache(root), "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
 * if (!report.ok) console.log(report.files.filter((f) => f.state !== "ok"));
 * ```
 */
export async function verifyModel(cache: ModelCache, id: ModelId): Promise<ModelVerification> {
  const manifest = await cache.readManifest(id);
  if (!manifest) {
    throw new TabAgentError("not_found", `${id} has no manifest in the cache to verify against; pull it first`, {
      model: id,
    });
  }
  const files: FileVerification[] = [];
  const entries: ManifestFile[] = [];
  let hashed = 0;
  for (const entry of manifest.files) {
    const path = cache.filePath(id, entry.path);
    const info = await Deno.stat(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    });
    if (!info?.isFile) {
      files.push({ path: entry.path, size: entry.size, state: "missing", sha256: entry.sha256 });
      entries.push(entry);
      continue;
    }
    const actual = await sha256OfFile(path, info.size);
    hashed += info.size;
    if (actual === entry.sha256 && info.size === entry.size) {
      files.push({ path: entry.path, size: entry.size, state: "ok", sha256: entry.sha256 });
      entries.push({ ...entry, mtime_ms: info.mtime?.getTime() });
    } else {
      files.push({
        path: entry.path,
        size: entry.size,
        state: "damaged",
        sha256: entry.sha256,
        ...(actual === null ? {} : { actual_sha256: actual }),
        ...(info.size === entry.size ? {} : { actual_size: info.size }),
      });
      entries.push({ ...entry, mtime_ms: undefined });
    }
  }
  const ok = files.every((f) => f.state === "ok");
  await cache.writeManifest({ ...manifest, files: entries, complete: manifest.complete && ok });
  return { id, ok, files, hashed_bytes: hashed };
}
